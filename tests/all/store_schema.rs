//! The SQLite store's schema across an upgrade: the jobs table's rule on
//! `state` (rewritten in place by a migration, without copying the table)
//! holds on a new store and on one made before, and a job queued before
//! the upgrade is still claimed after it; an order's jobs, indexed by order
//! only while they are unsettled since a later migration, are listed and
//! delivered in order across that upgrade; orders stored before their
//! tables were keyed by their primary keys, and before their lines,
//! payments and allocations moved into the order's row, read back and
//! cancel after both, and the old tables' names still read the same rows.
//! [`database_as_of`] makes a store's database as an earlier version of
//! the host left it, for every upgrade test.

use std::path::Path;

use reqwest::StatusCode;
use rescind_host::domain::JobState;
use rescind_host::store::{JobFilter, Store, StoreOptions};
use serde_json::json;

use crate::service::TestService;

/// The SQLite migrations a store made by an earlier host had, in order, as
/// sqlx records them (version, description, SQL).
const EARLIER: [(i64, &str, &str); 11] = [
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
    (
        9,
        "jobs state check",
        include_str!("../../host/migrations/sqlite/0009_jobs_state_check.sql"),
    ),
    (
        10,
        "jobs order unsettled",
        include_str!("../../host/migrations/sqlite/0010_jobs_order_unsettled.sql"),
    ),
    (
        11,
        "orders without rowid",
        include_str!("../../host/migrations/sqlite/0011_orders_without_rowid.sql"),
    ),
];

/// How many of [`EARLIER`] a store had before the jobs' state rule was
/// rewritten.
const BEFORE_THE_RULE: usize = 8;

/// How many of [`EARLIER`] a store had before only unsettled jobs were
/// indexed by order.
const BEFORE_THE_UNSETTLED_INDEX: usize = 9;

/// How many of [`EARLIER`] a store had before an order's tables were
/// stored by their primary keys.
const BEFORE_ORDERS_BY_KEY: usize = 10;

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
    for (version, description, sql) in &EARLIER[..migrations] {
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
    database_as_of(dir, BEFORE_THE_RULE)
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
    assert_intact(&db);
}

/// SQLite finds the database intact.
fn assert_intact(db: &rusqlite::Connection) {
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

/// The names `query` (a select of one text column) answers on `db`.
fn names(db: &rusqlite::Connection, query: &str) -> Vec<String> {
    let mut statement = db.prepare(query).unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The names of the indexes of the jobs table in the closed store in `dir`.
fn job_indexes(dir: &Path) -> Vec<String> {
    let db = rusqlite::Connection::open(dir.join("rescind.db")).unwrap();
    names(
        &db,
        "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'jobs'
         AND sql IS NOT NULL ORDER BY name",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_s_jobs_are_listed_and_delivered_in_order_across_the_index_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    {
        // As the host before the index of unsettled jobs left it: order
        // SO-1 cancelled three times, its first job delivered, the next two
        // queued; order SO-2 with one queued job.
        let old = database_as_of(dir.path(), BEFORE_THE_UNSETTLED_INDEX);
        for order in ["SO-1", "SO-2"] {
            old.execute(
                "INSERT INTO orders (number, business_code, customer_number, website, status,
                     order_date, currency, updated_at)
                 VALUES (?1, 'B', 'C-1', 'web', 'Cancelled', '2026-12-01', 'EUR', 0)",
                [order],
            )
            .unwrap();
        }
        for (cancellation, order, at) in [
            ("c-1", "SO-1", 1),
            ("c-2", "SO-1", 2),
            ("c-3", "SO-1", 3),
            ("c-4", "SO-2", 4),
        ] {
            old.execute(
                "INSERT INTO cancellations (id, order_number, customer_number, record, created_at)
                 VALUES (?1, ?2, 'C-1', '{}', ?3)",
                rusqlite::params![cancellation, order, at],
            )
            .unwrap();
        }
        for (job, order, cancellation, state, at) in [
            ("job-1", "SO-1", "c-1", "succeeded", 1),
            ("job-2", "SO-1", "c-2", "queued", 2),
            ("job-3", "SO-1", "c-3", "queued", 3),
            ("job-4", "SO-2", "c-4", "queued", 4),
        ] {
            old.execute(
                "INSERT INTO jobs (id, definition, order_number, cancellation_id, request_id,
                     parameters, state, max_attempts, initial_backoff_ms, max_backoff_ms, run_at,
                     created_at, updated_at)
                 VALUES (?1, 'aaas', ?2, ?3, ?1, '{}', ?4, 3, 1000, 60000, ?5, ?5, ?5)",
                rusqlite::params![job, order, cancellation, state, at],
            )
            .unwrap();
        }
    }
    assert!(job_indexes(dir.path()).contains(&"jobs_order".to_owned()));

    let store = Store::open(&StoreOptions::new(dir.path())).await.unwrap();
    let listed = |state: Option<JobState>| {
        let store = &store;
        async move {
            let filter = JobFilter {
                state,
                order_number: Some("SO-1".to_owned()),
                definition: None,
                limit: 10,
                created_from_ms: None,
                created_until_ms: None,
            };
            let jobs = store.jobs(&filter).await.unwrap();
            jobs.into_iter().map(|job| job.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed(None).await,
        ["job-3", "job-2", "job-1"],
        "newest first"
    );
    assert_eq!(listed(Some(JobState::Succeeded)).await, ["job-1"]);
    assert_eq!(listed(Some(JobState::Queued)).await, ["job-3", "job-2"]);

    // SO-1's third cancellation waits for its second; SO-2's does not.
    let claimed = store.claim_due_jobs("worker-1", 10, 60_000).await.unwrap();
    let mut ids: Vec<&str> = claimed.iter().map(|c| c.job.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["job-2", "job-4"]);
    assert!(
        store
            .claim_due_jobs("worker-1", 10, 60_000)
            .await
            .unwrap()
            .is_empty(),
        "job-3 waits while job-2 is running"
    );
    let delivered = crate::jobs_records::result("accepted", JobState::Succeeded);
    for job in &claimed {
        assert!(
            store
                .finish_attempt(job, "worker-1", &delivered)
                .await
                .unwrap()
        );
    }
    let next = store.claim_due_jobs("worker-1", 10, 60_000).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].job.id, "job-3", "delivered once job-2 has settled");
    assert_eq!(listed(Some(JobState::Running)).await, ["job-3"]);
    assert_eq!(listed(Some(JobState::Succeeded)).await, ["job-2", "job-1"]);
    store.close().await;

    let indexes = job_indexes(dir.path());
    assert!(
        indexes.contains(&"jobs_order_unsettled".to_owned())
            && !indexes.contains(&"jobs_order".to_owned()),
        "{indexes:?}"
    );
    let db = rusqlite::Connection::open(dir.path().join("rescind.db")).unwrap();
    assert_intact(&db);
    // The index holds the one job left unsettled.
    let unsettled: i64 = db
        .query_row(
            "SELECT count(*) FROM jobs INDEXED BY jobs_order_unsettled
             WHERE state = 'queued' OR state = 'running' OR state = 'retrying'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(unsettled, 1);
}

/// What `name` is in `db`'s schema (`table`, `view`, …), and whether it
/// stores its rows by their primary key (`WITHOUT ROWID`), for each of an
/// order's former tables, by name.
fn order_schema(db: &rusqlite::Connection) -> Vec<(String, String, bool)> {
    rows(
        db,
        "SELECT name, type, sql LIKE '%WITHOUT ROWID' FROM sqlite_schema
         WHERE name IN ('orders', 'order_lines', 'payments', 'allocations') ORDER BY name",
    )
}

/// Every row `query` answers in `db`, each read as `T` (a tuple of its
/// columns).
fn rows<T>(db: &rusqlite::Connection, query: &str) -> Vec<T>
where
    T: for<'a> TryFrom<&'a rusqlite::Row<'a>, Error = rusqlite::Error>,
{
    let mut statement = db.prepare(query).unwrap();
    statement
        .query_map([], |row| T::try_from(row))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// [`order_schema`] as `expected` gives it, in name order.
fn schema_of(expected: [(&str, &str, bool); 4]) -> Vec<(String, String, bool)> {
    expected
        .iter()
        .map(|(name, kind, by_key)| ((*name).to_owned(), (*kind).to_owned(), *by_key))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_stored_before_the_upgrade_read_and_cancel_the_same_after_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        // As the host before orders were stored by their primary key left
        // it: two orders whose rows were written interleaved, the way a
        // bulk import writes them (every order's first line, then every
        // order's next), so that in the old layout an order's rows lay
        // apart.
        let old = database_as_of(dir.path(), BEFORE_ORDERS_BY_KEY);
        old.execute_batch(
            "INSERT INTO orders (number, business_code, customer_number, website, status,
                 order_date, currency, erp_order_number, approval_state, tracking, updated_at)
             VALUES ('SO-1', 'B1', 'C-1', 'main', 'Submitted', '2024-09-01', 'EUR', 'ERP-1001',
                     'pending', NULL, 0),
                    ('SO-2', 'B1', 'C-2', 'main', 'Submitted', '2024-09-02', 'EUR', NULL,
                     NULL, NULL, 0);
             INSERT INTO order_lines (order_number, line_number, sku, quantity, amount_minor,
                 tax_minor, parent_line, kind, applies_to, state, erp_line_ref)
             VALUES ('SO-2', 1, 'DESK', 1, 30000, 5700, NULL, 'product', '[]', 'active', NULL),
                    ('SO-1', 1, 'CHAIR', 2, 20000, 3800, NULL, 'product', '[]', 'active', NULL),
                    ('SO-2', 2, 'LAMP', 3, 6000, 1140, NULL, 'product', '[]', 'active', NULL),
                    ('SO-1', 3, 'PROMO10', 1, -2000, -380, NULL, 'discount', '[1]', 'active',
                     NULL),
                    ('SO-1', 2, 'WARRANTY', 1, 1500, 285, 1, 'product', '[]', 'active', NULL);
             INSERT INTO payments (order_number, position, id, method, authorized_minor,
                 deposited_minor, voided_minor, refunded_minor)
             VALUES ('SO-2', 0, 'pay-9', 'card', 42840, 42840, 0, 0),
                    ('SO-1', 0, 'pay-1', 'card', 23205, 0, 0, 0);
             INSERT INTO allocations (order_number, position, line_number, warehouse, quantity,
                 kind, state)
             VALUES ('SO-1', 1, 2, 'W1', 1, 'expected', 'allocated'),
                    ('SO-2', 0, 1, 'W2', 1, 'existing', 'allocated'),
                    ('SO-1', 0, 1, 'W1', 2, 'existing', 'allocated');",
        )
        .unwrap();
        assert_eq!(
            order_schema(&old),
            schema_of([
                ("allocations", "table", false),
                ("order_lines", "table", false),
                ("orders", "table", false),
                ("payments", "table", false),
            ])
        );
    }

    let service = TestService::start_on(dir, None, false, |_| {}).await;
    let before = service.order("SO-1").await;
    assert_eq!(before["status"], "Submitted");
    assert_eq!(before["erpOrderNumber"], "ERP-1001");
    assert_eq!(before["approval"]["state"], "pending");
    let lines: Vec<_> = before["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                l["lineNumber"].clone(),
                l["sku"].clone(),
                l["state"].clone(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (json!(1), json!("CHAIR"), json!("active")),
            (json!(2), json!("WARRANTY"), json!("active")),
            (json!(3), json!("PROMO10"), json!("active")),
        ],
        "every line, in line order: {before}"
    );
    assert_eq!(before["lines"][1]["parentLine"], 1);
    assert_eq!(before["lines"][2]["appliesTo"], json!([1]));
    assert_eq!(before["payments"][0]["authorizedMinor"], 23205);
    assert_eq!(
        before["allocations"],
        json!([{"lineNumber": 1, "warehouse": "W1", "quantity": 2, "kind": "existing",
                "state": "allocated"},
               {"lineNumber": 2, "warehouse": "W1", "quantity": 1, "kind": "expected",
                "state": "allocated"}]),
        "both allocations, in position order"
    );

    service.configure_insite().await;
    let cancelled = service
        .cancel("SO-1", &json!({"cancellationReason": "OUT_OF_STOCK"}))
        .await;
    assert_eq!(cancelled.status, StatusCode::CREATED, "{}", cancelled.body);
    assert_eq!(cancelled.body["cancelledLines"], json!([1, 2, 3]));
    assert_eq!(cancelled.body["voidedMinor"], 23205);
    assert_eq!(
        cancelled.body["releasedAllocations"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let after = service.order("SO-1").await;
    assert_eq!(after["status"], "Cancelled");
    assert!(
        after["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .all(|l| l["state"] == "cancelled"),
        "{after}"
    );
    let other = service.order("SO-2").await;
    assert_eq!(other["status"], "Submitted", "the other order is untouched");
    assert_eq!(other["lines"].as_array().map(Vec::len), Some(2));
    assert_eq!(other["payments"][0]["depositedMinor"], 42840);
    let dir = service.stop().await;

    let db = rusqlite::Connection::open(dir.path().join("rescind.db")).unwrap();
    assert_eq!(
        order_schema(&db),
        schema_of([
            ("allocations", "view", false),
            ("order_lines", "view", false),
            ("orders", "table", true),
            ("payments", "view", false),
        ]),
        "an order is stored by its primary key, its lines, payments and allocations in its row"
    );
    assert_intact(&db);
    let dangling: i64 = db
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(dangling, 0, "every reference still finds its order");
    // The old tables' names read the rows as they were, with what the
    // cancellation changed.
    let lines: Vec<(String, i64, String, Option<i64>, String, String)> = rows(
        &db,
        "SELECT order_number, line_number, sku, parent_line, applies_to, state
         FROM order_lines ORDER BY order_number, line_number",
    );
    let line = |order: &str, number, sku: &str, parent, applies_to: &str, state: &str| {
        (
            order.to_owned(),
            number,
            sku.to_owned(),
            parent,
            applies_to.to_owned(),
            state.to_owned(),
        )
    };
    assert_eq!(
        lines,
        [
            line("SO-1", 1, "CHAIR", None, "[]", "cancelled"),
            line("SO-1", 2, "WARRANTY", Some(1), "[]", "cancelled"),
            line("SO-1", 3, "PROMO10", None, "[1]", "cancelled"),
            line("SO-2", 1, "DESK", None, "[]", "active"),
            line("SO-2", 2, "LAMP", None, "[]", "active"),
        ]
    );
    let payments: Vec<(String, i64, String, i64, i64, i64)> = rows(
        &db,
        "SELECT order_number, position, id, authorized_minor, deposited_minor, voided_minor
         FROM payments ORDER BY order_number, position",
    );
    assert_eq!(
        payments,
        [
            ("SO-1".to_owned(), 0, "pay-1".to_owned(), 23205, 0, 23205),
            ("SO-2".to_owned(), 0, "pay-9".to_owned(), 42840, 42840, 0),
        ]
    );
    let allocations: Vec<(String, i64, i64, String, String)> = rows(
        &db,
        "SELECT order_number, position, line_number, kind, state
         FROM allocations ORDER BY order_number, position",
    );
    let allocation = |order: &str, position, line, kind: &str, state: &str| {
        (
            order.to_owned(),
            position,
            line,
            kind.to_owned(),
            state.to_owned(),
        )
    };
    assert_eq!(
        allocations,
        [
            allocation("SO-1", 0, 1, "existing", "released"),
            allocation("SO-1", 1, 2, "expected", "released"),
            allocation("SO-2", 0, 1, "existing", "allocated"),
        ]
    );
    // They are read-only: a line is the order's, written with it.
    let refused = db
        .execute(
            "INSERT INTO order_lines (order_number, line_number, sku, quantity, amount_minor,
                 tax_minor, kind, state)
             VALUES ('SO-2', 3, 'CHAIR', 1, 100, 19, 'product', 'active')",
            [],
        )
        .expect_err("a view is not written");
    assert!(
        refused.to_string().contains("cannot modify order_lines"),
        "{refused}"
    );
    // An order's row refuses arrays that are not arrays.
    let refused = db
        .execute("UPDATE orders SET lines = '{}' WHERE number = 'SO-2'", [])
        .expect_err("lines must be an array");
    assert!(
        refused.to_string().contains("CHECK constraint failed"),
        "{refused}"
    );
}
