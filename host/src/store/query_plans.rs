//! What SQLite's planner does with the store's statements, for the unit
//! tests that hold the hot paths to their indexes: a database made by every
//! SQLite migration, and the plan of a statement.

/// A database made by every SQLite migration of the store, in order.
pub(super) fn migrated() -> rusqlite::Connection {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    let db = rusqlite::Connection::open_in_memory().unwrap();
    for file in files {
        db.execute_batch(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
    db
}

/// What SQLite's planner says it will do for `sql`, one step a line.
pub(super) fn plan(db: &rusqlite::Connection, sql: &str) -> String {
    let mut statement = db.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let unbound = vec![rusqlite::types::Null; statement.parameter_count()];
    let steps: Vec<String> = statement
        .query_map(rusqlite::params_from_iter(unbound), |row| {
            row.get::<_, String>(3)
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    steps.join("\n")
}
