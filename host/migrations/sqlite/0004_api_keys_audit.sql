-- Named, expiring, revocable API keys and the audit log of admin writes
-- (issue 14).
--
-- A key gets an id (what the API lists and revokes by), a name, who created
-- it, a short prefix of its token (so that an operator can recognise one;
-- the token itself is never stored), when it was last used and when it
-- expires. Keys made before names existed keep working under a name that
-- says so; their token prefix is unknown.
CREATE TABLE api_keys_named (
    id TEXT PRIMARY KEY NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    token_prefix TEXT,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'service', 'customer')),
    customer_number TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- written at most once a minute per key, not on every request
    last_used_at INTEGER,
    expires_at INTEGER
) STRICT;
INSERT INTO api_keys_named (id, token_sha256, token_prefix, name, role, customer_number,
                            created_by, created_at, last_used_at, expires_at)
SELECT lower(hex(randomblob(16))), token_sha256, NULL, 'unnamed (created before key names)',
       role, customer_number, 'unknown', created_at, NULL, NULL
FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE api_keys_named RENAME TO api_keys;

-- Every admin write: who (the admin token, an API key by id and name, or the
-- command line), when, what (method, path, a short summary that never holds
-- a secret) and the request id. Only ever appended to.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL CHECK (actor IN ('admin-token', 'api-key', 'command-line', 'plugins-folder')),
    key_id TEXT,
    key_name TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    summary TEXT NOT NULL,
    request_id TEXT
) STRICT;
