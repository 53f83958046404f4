-- The PostgreSQL schema: the same tables, columns and checks as the SQLite
-- store after its migrations 0001 to 0005, so that both answer alike.
-- Times are milliseconds since the Unix epoch (BIGINT), flags are BOOLEAN,
-- JSON values are stored as text exactly as the SQLite store keeps them.

CREATE TABLE orders (
    number TEXT PRIMARY KEY NOT NULL,
    business_code TEXT NOT NULL,
    customer_number TEXT NOT NULL,
    website TEXT NOT NULL,
    status TEXT NOT NULL,
    order_date TEXT NOT NULL,
    currency TEXT NOT NULL,
    erp_order_number TEXT,
    approval_state TEXT,
    tracking TEXT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX orders_customer ON orders (customer_number);

CREATE TABLE order_lines (
    order_number TEXT NOT NULL REFERENCES orders (number) ON DELETE CASCADE,
    line_number BIGINT NOT NULL,
    sku TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    amount_minor BIGINT NOT NULL,
    tax_minor BIGINT NOT NULL,
    parent_line BIGINT,
    kind TEXT NOT NULL CHECK (kind IN ('product', 'discount')),
    applies_to TEXT NOT NULL DEFAULT '[]',
    state TEXT NOT NULL CHECK (state IN ('active', 'cancelled')),
    erp_line_ref TEXT,
    PRIMARY KEY (order_number, line_number)
);

CREATE TABLE payments (
    order_number TEXT NOT NULL REFERENCES orders (number) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    id TEXT NOT NULL,
    method TEXT NOT NULL,
    authorized_minor BIGINT NOT NULL,
    deposited_minor BIGINT NOT NULL,
    voided_minor BIGINT NOT NULL,
    refunded_minor BIGINT NOT NULL,
    PRIMARY KEY (order_number, position)
);

CREATE TABLE allocations (
    order_number TEXT NOT NULL REFERENCES orders (number) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    line_number BIGINT NOT NULL,
    warehouse TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('existing', 'expected')),
    state TEXT NOT NULL CHECK (state IN ('allocated', 'released')),
    PRIMARY KEY (order_number, position)
);

CREATE TABLE settings (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    cancellable_statuses TEXT NOT NULL,
    cancelled_status TEXT NOT NULL
);
INSERT INTO settings (id, cancellable_statuses, cancelled_status)
VALUES (1, '["Submitted"]', 'Cancelled');

CREATE TABLE status_mappings (
    position BIGINT PRIMARY KEY NOT NULL,
    erp_code TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    allow_cancellation BOOLEAN NOT NULL
);

CREATE TABLE websites (
    name TEXT PRIMARY KEY NOT NULL,
    allow_cancellation_request BOOLEAN NOT NULL
);

CREATE TABLE connections (
    name TEXT PRIMARY KEY NOT NULL,
    base_url TEXT NOT NULL,
    allowed_hosts TEXT NOT NULL,
    settings TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    allow_private_network BOOLEAN NOT NULL DEFAULT FALSE,
    ca_certificates TEXT
);

CREATE TABLE connection_secrets (
    connection TEXT NOT NULL REFERENCES connections (name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    nonce BYTEA NOT NULL CHECK (length(nonce) = 24),
    ciphertext BYTEA NOT NULL,
    PRIMARY KEY (connection, name)
);

-- The fingerprint of the key that sealed the secrets: every replica must
-- be given the same key, and one given another refuses to start.
CREATE TABLE secrets_key (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    fingerprint TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE job_definitions (
    name TEXT PRIMARY KEY NOT NULL,
    job_type TEXT NOT NULL,
    connection TEXT NOT NULL,
    preprocessor TEXT,
    integration_processor TEXT NOT NULL,
    post_processor TEXT,
    parameters TEXT NOT NULL,
    max_attempts BIGINT NOT NULL,
    initial_backoff_ms BIGINT NOT NULL,
    max_backoff_ms BIGINT NOT NULL,
    enabled BOOLEAN NOT NULL,
    updated_at BIGINT NOT NULL,
    applies_to TEXT NOT NULL DEFAULT 'any' CHECK (applies_to IN ('any', 'full', 'partial'))
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    token_prefix TEXT,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'service', 'customer')),
    customer_number TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- written at most once a minute per key, not on every request
    last_used_at BIGINT,
    expires_at BIGINT
);

CREATE TABLE audit_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL CHECK (actor IN ('admin-token', 'api-key', 'command-line', 'plugins-folder')),
    key_id TEXT,
    key_name TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status BIGINT NOT NULL,
    summary TEXT NOT NULL,
    request_id TEXT
);

CREATE TABLE cancellations (
    id TEXT PRIMARY KEY NOT NULL,
    order_number TEXT NOT NULL REFERENCES orders (number),
    customer_number TEXT NOT NULL,
    record TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX cancellations_order ON cancellations (order_number, created_at);

CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in-progress', 'done')),
    cancellation_id TEXT REFERENCES cancellations (id),
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY NOT NULL,
    definition TEXT NOT NULL,
    order_number TEXT NOT NULL,
    cancellation_id TEXT REFERENCES cancellations (id),
    request_id TEXT NOT NULL,
    parameters TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'retrying', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    -- attempts made before the last manual retry; the retry policy counts
    -- from here, so a retried job gets a full round of attempts again
    attempt_base BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    initial_backoff_ms BIGINT NOT NULL,
    max_backoff_ms BIGINT NOT NULL,
    run_at BIGINT NOT NULL,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    erp_reference TEXT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX jobs_due ON jobs (state, run_at);
CREATE INDEX jobs_order ON jobs (order_number);
CREATE INDEX jobs_cancellation ON jobs (cancellation_id);

CREATE TABLE job_attempts (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    number BIGINT NOT NULL,
    worker TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    outcome TEXT,
    message TEXT,
    erp_reference TEXT,
    plugin_version TEXT,
    log TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (job_id, number)
);
