//! A PostgreSQL database of its own for each test that runs rescind on
//! PostgreSQL: created empty on the server the tests are given, dropped
//! when the test is done.
//!
//! The server is `RESCIND_TEST_POSTGRES` (a URL of a database the tests may
//! create databases from), by default `postgres://postgres@127.0.0.1:5432/postgres`.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tokio::sync::OnceCell;

/// The server's URL, without a database name.
fn server_url() -> String {
    std::env::var("RESCIND_TEST_POSTGRES")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `url` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base
        .find("://")
        .map(|scheme| scheme + 3)
        .and_then(|start| base[start..].find('/').map(|slash| start + slash))
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

async fn admin() -> PgConnection {
    let url = server_url();
    PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!(
            "the PostgreSQL tests need a server at {url} (set RESCIND_TEST_POSTGRES to another): {e}"
        )
    })
}

/// Drops the databases earlier test processes left behind (killed before
/// their tests ended): those whose process is gone.
async fn drop_abandoned() {
    let mut admin = admin().await;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'rescind\\_test\\_%'",
    )
    .fetch_all(&mut admin)
    .await
    .expect("the server lists its databases");
    for name in names {
        let pid = name
            .strip_prefix("rescind_test_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let alive = pid.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut admin)
                .await;
        }
    }
}

/// An empty database for one test.
#[derive(Debug)]
pub struct TestDatabase {
    /// Its name.
    pub name: String,
    /// The URL a service is given.
    pub url: String,
}

impl TestDatabase {
    /// Creates an empty database.
    pub async fn create() -> TestDatabase {
        static CLEANED: OnceCell<()> = OnceCell::const_new();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        CLEANED.get_or_init(drop_abandoned).await;
        let name = format!(
            "rescind_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin().await)
            .await
            .unwrap_or_else(|e| panic!("creating the test database {name}: {e}"));
        TestDatabase {
            url: with_database(&server_url(), &name),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop may run inside the test's runtime: drop the database from a
        // thread with a runtime of its own. `WITH (FORCE)` ends the
        // connections a service left open.
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut admin().await)
                    .await;
            });
        });
        let _ = dropped.join();
    }
}

#[cfg(test)]
#[test]
fn a_database_name_replaces_the_one_in_the_url() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
        "postgres://postgres@127.0.0.1:5432/t1"
    );
    assert_eq!(
        with_database("postgres://u:p@db:5432/x?sslmode=disable", "t2"),
        "postgres://u:p@db:5432/t2?sslmode=disable"
    );
    assert_eq!(with_database("postgres://db", "t3"), "postgres://db/t3");
}
