-- The plugin registry on PostgreSQL, shared by every replica (a store on
-- SQLite keeps it in the data directory instead): each accepted version
-- with its bytes and metadata, the active version of each plugin, and the
-- registry's audit log. Times the registry reports to the second or finer
-- (`uploaded_at`, `at`) are RFC 3339 text, exactly as the registry keeps
-- them, so every replica lists the same values.

CREATE TABLE plugin_versions (
    name TEXT NOT NULL,
    -- `sha256:<64 hex>` of `bytes`.
    version TEXT NOT NULL,
    -- Upload order within the plugin, from 1.
    sequence BIGINT NOT NULL CHECK (sequence > 0),
    bytes BYTEA NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at TEXT NOT NULL,
    world TEXT NOT NULL,
    wit TEXT NOT NULL,
    sdk TEXT,
    size BIGINT NOT NULL,
    compile_millis BIGINT NOT NULL,
    signed_by TEXT,
    signature TEXT,
    -- A JSON array of strings.
    warnings TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (name, version),
    UNIQUE (name, sequence)
);

CREATE TABLE plugin_active (
    name TEXT PRIMARY KEY NOT NULL,
    version TEXT NOT NULL,
    changed_at BIGINT NOT NULL,
    FOREIGN KEY (name, version) REFERENCES plugin_versions (name, version)
);

CREATE TABLE plugin_audit (
    id BIGSERIAL PRIMARY KEY,
    at TEXT NOT NULL,
    plugin TEXT NOT NULL,
    action TEXT NOT NULL,
    from_version TEXT,
    to_version TEXT NOT NULL,
    by_whom TEXT NOT NULL,
    reason TEXT
);
