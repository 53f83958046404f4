-- rescind's schema. Times are Unix milliseconds (INTEGER); dates are ISO
-- `YYYY-MM-DD` text; amounts are integers in minor units; lists and maps
-- that are only ever read whole are JSON text.

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
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX orders_customer ON orders (customer_number);

CREATE TABLE order_lines (
    order_number TEXT NOT NULL REFERENCES orders (number) ON DELETE CASCADE,
    line_number INTEGER NOT NULL,
    sku TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    amount_minor INTEGER NOT NULL,
    tax_minor INTEGER NOT NULL,
    parent_line INTEGER,
    kind TEXT NOT NULL CHECK (kind IN ('product', 'discount')),
    applies_to TEXT NOT NULL DEFAULT '[]',
    state TEXT NOT NULL CHECK (state IN ('active', 'cancelled')),
    erp_line_ref TEXT,
    PRIMARY KEY (order_number, line_number)
) STRICT;

CREATE TABLE payments (
    order_number TEXT NOT NULL REFERENCES orders (number) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    id TEXT NOT NULL,
    method TEXT NOT NULL,
    authorized_minor INTEGER NOT NULL,
    deposited_minor INTEGER NOT NULL,
    voided_minor INTEGER NOT NULL,
    refunded_minor INTEGER NOT NULL,
    PRIMARY KEY (order_number, position)
) STRICT;

CREATE TABLE allocations (
    order_number TEXT NOT NULL REFERENCES orders (number) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    line_number INTEGER NOT NULL,
    warehouse TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('existing', 'expected')),
    state TEXT NOT NULL CHECK (state IN ('allocated', 'released')),
    PRIMARY KEY (order_number, position)
) STRICT;

-- One row: the cancellable statuses and the cancelled status.
CREATE TABLE settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    cancellable_statuses TEXT NOT NULL,
    cancelled_status TEXT NOT NULL
) STRICT;
INSERT INTO settings (id, cancellable_statuses, cancelled_status)
VALUES (1, '["Submitted"]', 'Cancelled');

CREATE TABLE status_mappings (
    position INTEGER PRIMARY KEY NOT NULL,
    erp_code TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    allow_cancellation INTEGER NOT NULL
) STRICT;

CREATE TABLE websites (
    name TEXT PRIMARY KEY NOT NULL,
    allow_cancellation_request INTEGER NOT NULL
) STRICT;

-- Secrets are kept so that plugins can use them; the API never returns them.
CREATE TABLE connections (
    name TEXT PRIMARY KEY NOT NULL,
    base_url TEXT NOT NULL,
    allowed_hosts TEXT NOT NULL,
    settings TEXT NOT NULL,
    secrets TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE job_definitions (
    name TEXT PRIMARY KEY NOT NULL,
    job_type TEXT NOT NULL,
    connection TEXT NOT NULL,
    preprocessor TEXT,
    integration_processor TEXT NOT NULL,
    post_processor TEXT,
    parameters TEXT NOT NULL,
    max_attempts INTEGER NOT NULL,
    initial_backoff_ms INTEGER NOT NULL,
    max_backoff_ms INTEGER NOT NULL,
    enabled INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- Only a SHA-256 of each token is stored.
CREATE TABLE api_keys (
    token_sha256 TEXT PRIMARY KEY NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'service', 'customer')),
    customer_number TEXT,
    created_at INTEGER NOT NULL
) STRICT;

-- A committed cancellation; `record` is everything the answer and the
-- integration processor need, frozen at commit time.
CREATE TABLE cancellations (
    id TEXT PRIMARY KEY NOT NULL,
    order_number TEXT NOT NULL REFERENCES orders (number),
    customer_number TEXT NOT NULL,
    record TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX cancellations_order ON cancellations (order_number, created_at);

-- Idempotency-Key bookkeeping, per caller. `state` is 'in-progress' while
-- the first request runs (until `expires_at`), then 'done'.
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in-progress', 'done')),
    cancellation_id TEXT REFERENCES cancellations (id),
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT;

-- The outbox: one row per job, written in the cancellation's transaction.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY NOT NULL,
    definition TEXT NOT NULL,
    order_number TEXT NOT NULL,
    cancellation_id TEXT REFERENCES cancellations (id),
    request_id TEXT NOT NULL,
    parameters TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'retrying', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    -- attempts made before the last manual retry; the retry policy counts
    -- from here, so a retried job gets a full round of attempts again
    attempt_base INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    initial_backoff_ms INTEGER NOT NULL,
    max_backoff_ms INTEGER NOT NULL,
    run_at INTEGER NOT NULL,
    lease_owner TEXT,
    lease_expires_at INTEGER,
    erp_reference TEXT,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX jobs_due ON jobs (state, run_at);
CREATE INDEX jobs_order ON jobs (order_number);
CREATE INDEX jobs_cancellation ON jobs (cancellation_id);

CREATE TABLE job_attempts (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    worker TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    outcome TEXT,
    message TEXT,
    erp_reference TEXT,
    plugin_version TEXT,
    log TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (job_id, number)
) STRICT;
