//! The SQLite store's schema across an upgrade: the jobs table's rule on
//! `state` (rewritten in place by a migration, without copying the table)
//! holds on a new store and on one made before, and a job queued before
//! the upgrade is still claimed after it. [`database_as_of`] makes a store's
//! database as an earlier version of the host left it, for every upgrade
//! test.

use std::path::Path;

use rescind_host::domain::JobState;
use rescind_host::store::{Store, StoreOptions};

/// The SQLite migrations a store had before the jobs' state rule was
/// rewritten, in order, as sqlx records them (version, description, SQL).
const BEFORE_THE_RULE: [(i64, &str, &str); 8] = [
    (
        1,
        "init",
        include_str!("../../host/migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "connection egress",
        include_str!("../../host/migrations/sqlite/0002_connection_egress.sql"),
    ),
    (
        3,
        "job definition applies to",
        include_str!("../../host/migrations/sqlite/0003_job_definition_applies_to.sql"),
    ),
    (
        4,
        "api keys audit",
        include_str!("../../host/migrations/sqlite/0004_api_keys_audit.sql"),
    ),
    (
        5,
        "sealed connection secrets",
        include_str!("../../host/migrations/sqlite/0005_sealed_connection_secrets.sql"),
    ),
    (
        6,
        "attempt exchange",
        include_str!("../../host/migrations/sqlite/0006_attempt_exchange.sql"),
    ),
    (
        7,
        "job retention",
        include_str!("../../host/migrations/sqlite/0007_job_retention.sql"),
    ),
    (
        8,
        "shadow runs",
        include_str!("../../host/migrations/sqlite/0008_shadow_runs.sql"),
    ),
];

/// A store's database in `dir` as a host that had applied the first
/// `migrations` SQLite migrations left it, with sqlx's record of having
/// applied them: opening the store applies the rest, as an upgrade does.
pub(crate) fn database_as_of(dir: &Path, migrations: usize) -> rusqlite::Connection {
    use sha2::Digest as _;
    let old = rusqlite::Connection::open(dir.join("rescind.db")).unwrap();
    old.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,
             installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL,
             checksum BLOB NOT NULL, execution_time BIGINT NOT NULL);",
    )
    .unwrap();
    for (version, description, sql) in &BEFORE_THE_RULE[..migrations] {
        old.execute_batch(sql).unwrap();
        old.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (?1, ?2, 1, ?3, 0)",
            rusqlite::params![version, description, sha2::Sha384::digest(sql).to_vec()],
        )
        .unwrap();
    }
    old
}

/// A store's database as the version before the rewrite left it, with one
/// queued job, due now.
fn store_before_the_rule(dir: &Path) {
    database_as_of(dir, BEFORE_THE_RULE.len())
        .execute(
            "INSERT INTO jobs (id, definition, order_number, request_id, parameters, state,
                 max_attempts, initial_backoff_ms, max_backoff_ms, run_at, created_at, updated_at)
             VALUES ('job-before', 'aaas', 'SO-1', 'request-1', '{}', 'queued',
                 3, 1000, 60000, 0, 1725000000000, 1725000000000)",
            [],
        )
        .unwrap();
}

/// Checks the jobs table's rule on the closed store in `dir`: each state
/// of a job is accepted, anything else refused, by an insert and by an
/// update alike; the rule is written without an `IN` list, and the
/// database is intact.
fn state_rule_holds(dir: &Path) {
    let db = rusqlite::Connection::open(dir.join("rescind.db")).unwrap();
    let definition: String = db
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'jobs'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(
        definition.contains("CHECK (state = 'queued' OR state = 'running'")
            && !definition.contains(" IN ("),
        "the jobs' state rule is the comparisons, not a list: {definition}"
    );
    let insert = |id: &str, state: &str| {
        db.execute(
            "INSERT INTO jobs (id, definition, order_number, request_id, parameters, state,
                 max_attempts, initial_backoff_ms, max_backoff_ms, run_at, created_at, updated_at)
             VALUES (?1, 'aaas', 'SO-2', 'request-2', '{}', ?2, 3, 1000, 60000, 0, 0, 0)",
            [id, state],
        )
    };
    for state in ["queued", "running", "succeeded", "retrying", "failed"] {
        insert(&format!("job-{state}"), state)
            .unwrap_or_else(|e| panic!("a job {state} is accepted: {e}"));
        db.execute(
            "UPDATE jobs SET state = ?1 WHERE id = 'job-queued'",
            [state],
        )
        .unwrap_or_else(|e| panic!("a job moved to {state} is accepted: {e}"));
    }
    for state in ["bogus", "Queued", "", "queued "] {
        let refused = insert("job-refused", state).expect_err("an unknown state is refused");
        assert!(
            refused.to_string().contains("CHECK constraint failed"),
            "{refused}"
        );
        let refused = db
            .execute(
                "UPDATE jobs SET state = ?1 WHERE id = 'job-queued'",
                [state],
            )
            .expect_err("a move to an unknown state is refused");
        assert!(
            refused.to_string().contains("CHECK constraint failed"),
            "{refused}"
        );
    }
    let unknown: i64 = db
        .query_row(
            "SELECT count(*) FROM jobs WHERE id = 'job-refused'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(unknown, 0, "a refused job left no row");
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_store_keeps_its_jobs_to_their_states() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreOptions::new(dir.path())).await.unwrap();
    store.close().await;
    state_rule_holds(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_queued_before_the_upgrade_is_claimed_after_it_under_the_same_rule() {
    let dir = tempfile::tempdir().unwrap();
    store_before_the_rule(dir.path());
    let store = Store::open(&StoreOptions::new(dir.path())).await.unwrap();
    let claimed = store.claim_due_jobs("worker-1", 10, 60_000).await.unwrap();
    assert_eq!(claimed.len(), 1, "the job queued before the upgrade");
    assert_eq!(claimed[0].job.id, "job-before");
    assert_eq!(claimed[0].job.state, JobState::Running);
    assert_eq!(claimed[0].attempt, 1);
    store.close().await;
    state_rule_holds(dir.path());
    // Opened again, the store finds nothing left to upgrade, and takes
    // the job its last run left running back for a retry, as after any
    // restart.
    let store = Store::open(&StoreOptions::new(dir.path())).await.unwrap();
    let job = store.job("job-before").await.unwrap().expect("the job");
    assert_eq!(job.state, JobState::Retrying);
    store.close().await;
}
