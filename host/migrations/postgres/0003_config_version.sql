-- A counter every configuration write moves on, so that a replica can keep
-- the configuration cached and check it with one read per cancellation.
CREATE TABLE config_version (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);
