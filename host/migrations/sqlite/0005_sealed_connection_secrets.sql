-- Connection secrets sealed at rest (issue 14). Each value is encrypted
-- with XChaCha20-Poly1305 under the data directory's secrets key, with its
-- own random nonce; the connection's and the secret's names are bound as
-- associated data, so a value moved to another row no longer opens.
CREATE TABLE connection_secrets (
    connection TEXT NOT NULL REFERENCES connections (name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    nonce BLOB NOT NULL CHECK (length(nonce) = 24),
    ciphertext BLOB NOT NULL,
    PRIMARY KEY (connection, name)
) STRICT;

-- The fingerprint (a one-way name, never the key) of the key the values are
-- sealed with: a host started with another key, or without one, stops at
-- once instead of failing on every read.
CREATE TABLE secrets_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- Values an earlier version kept in plain text, until the host seals them
-- at its next start (which empties this table and rewrites the file).
CREATE TABLE connection_secrets_unsealed (
    connection TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (connection, name)
) STRICT;
INSERT INTO connection_secrets_unsealed (connection, name, value)
    SELECT c.name, s.key, CAST(s.value AS TEXT)
    FROM connections AS c, json_each(c.secrets) AS s;
ALTER TABLE connections DROP COLUMN secrets;
