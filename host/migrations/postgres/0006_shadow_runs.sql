-- Shadow runs (issue 17): an inactive plugin version run beside the active
-- one on the plugin's next real jobs, in a capture-only sandbox, and what it
-- would have sent compared with what the active version sent. At most one
-- run per plugin: a new one replaces the last, with its results.
CREATE TABLE shadow_runs (
    plugin TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    jobs BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    started_by TEXT NOT NULL,
    stopped_at BIGINT
);

-- One job of a run: taken when the active version's attempt was recorded;
-- its comparison (JSON) once the shadow version ran.
CREATE TABLE shadow_results (
    plugin TEXT NOT NULL,
    job_id TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    active_version TEXT NOT NULL,
    taken_at BIGINT NOT NULL,
    report TEXT,
    PRIMARY KEY (plugin, job_id)
);
