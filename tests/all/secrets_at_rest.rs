//! Connection secrets at rest: sealed in the SQLite file under a key that
//! is not in it. A copy of the database without the key yields no secret
//! (the host refuses to start, and the file's bytes hold no value in any
//! form); the key file is created 0600; a wrong key is a clear error; plain
//! text from an older data directory is sealed at start; `rescind secrets
//! rotate-key` seals everything again under a new key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use rescind_host::service;
use rescind_host::store::{
    SECRETS_KEY_FILE, SecretsError, SecretsKey, SecretsKeySource, Store, StoreError, StoreOptions,
    rotate_secrets_key,
};
use serde_json::json;

use crate::service::{ADMIN, TestService, config};
use clap::Parser as _;
use rescind_host::cli::{Cli, Exit};

const API_TOKEN: &str = "tok-at-rest-7f3a9c1e5b";
const PASSWORD: &str = "pw at rest/ü+9";

/// A connection with two secrets.
fn connection_body() -> serde_json::Value {
    json!({"baseUrl": "http://127.0.0.1:9", "allowedHosts": ["127.0.0.1:9"],
           "settings": {"path": "/hooks/cancel"},
           "secrets": {"apiToken": API_TOKEN, "password": PASSWORD}})
}

/// Every form a secret could be found in, in a file.
fn forms(secret: &str) -> Vec<Vec<u8>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        secret.as_bytes().to_vec(),
        b64.encode(secret).into_bytes(),
        hex::encode(secret).into_bytes(),
        serde_json::to_string(secret).unwrap().into_bytes(),
    ]
}

/// The bytes of the database's files (`rescind.db`, its WAL and shared
/// memory, whichever exist).
fn database_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    ["rescind.db", "rescind.db-wal", "rescind.db-shm"]
        .iter()
        .filter_map(|name| {
            std::fs::read(dir.join(name))
                .ok()
                .map(|bytes| ((*name).to_owned(), bytes))
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Asserts that no file of the database holds `secret` in any form.
fn assert_not_in_files(dir: &Path, secret: &str) {
    let files = database_bytes(dir);
    assert!(files.iter().any(|(name, _)| name == "rescind.db"));
    for (name, bytes) in &files {
        for form in forms(secret) {
            assert!(
                !contains(bytes, &form),
                "{name} holds {:?}",
                String::from_utf8_lossy(&form)
            );
        }
    }
}

async fn put_connection(service: &TestService) {
    let a = service
        .call(
            Method::PUT,
            "/v1/admin/connections/erp",
            Some(ADMIN),
            Some(&connection_body()),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["secrets"], json!(["apiToken", "password"]));
}

async fn stop(service: &mut TestService) {
    service
        .running
        .take()
        .expect("running")
        .shutdown(Duration::from_secs(10))
        .await
        .expect("clean shutdown");
}

/// The store error a start failed with.
fn store_error(error: &anyhow::Error) -> &StoreError {
    error
        .downcast_ref::<StoreError>()
        .unwrap_or_else(|| panic!("not a store error: {error:#}"))
}

/// The secrets of connection `erp`, read through the store with `key`.
async fn stored_secrets(
    dir: &Path,
    key: SecretsKeySource,
) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
    let mut options = StoreOptions::new(dir);
    options.secrets_key = key;
    let store = Store::open(&options).await?;
    let connection = store.connection("erp").await;
    store.close().await;
    Ok(connection?.expect("connection erp").secrets)
}

fn key_file(dir: &Path) -> SecretsKey {
    SecretsKey::parse(&std::fs::read_to_string(dir.join(SECRETS_KEY_FILE)).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_copied_without_its_key_yields_no_secret() {
    let mut service = TestService::start_without_workers().await;
    put_connection(&service).await;
    stop(&mut service).await;
    let original = service.dir.path().to_owned();
    // The files of the database never held a value, in any form.
    assert_not_in_files(&original, API_TOKEN);
    assert_not_in_files(&original, PASSWORD);

    // The database alone (its file and write-ahead log), in a data
    // directory of its own.
    let copy = tempfile::tempdir().unwrap();
    for (name, bytes) in database_bytes(&original) {
        std::fs::write(copy.path().join(name), bytes).unwrap();
    }
    let error = service::start(config(copy.path().to_owned(), false))
        .await
        .expect_err("a host without the key refuses to start");
    let fingerprint = key_file(&original).fingerprint();
    match store_error(&error) {
        StoreError::Secrets(SecretsError::KeyMissing {
            fingerprint: recorded,
            path,
        }) => {
            assert_eq!(recorded, &fingerprint);
            assert_eq!(path, &copy.path().join(SECRETS_KEY_FILE));
        }
        other => panic!("expected KeyMissing, got {other}"),
    }
    let message = format!("{error:#}");
    assert!(
        message.contains("sealed with the secrets key") && message.contains(&fingerprint),
        "{message}"
    );
    // Refusing made no key file: the next start refuses the same way.
    assert!(!copy.path().join(SECRETS_KEY_FILE).exists());

    // With another key: refused, naming both keys.
    let other = SecretsKey::generate();
    let error = stored_secrets(copy.path(), SecretsKeySource::Given(other.clone()))
        .await
        .expect_err("another key opens nothing");
    match &error {
        StoreError::Secrets(SecretsError::WrongKey {
            given, recorded, ..
        }) => {
            assert_eq!(given, &other.fingerprint());
            assert_eq!(recorded, &fingerprint);
        }
        other => panic!("expected WrongKey, got {other}"),
    }

    // With the key (as RESCIND_SECRETS_KEY would give it), the copy is whole.
    let secrets = stored_secrets(copy.path(), SecretsKeySource::Given(key_file(&original)))
        .await
        .expect("the right key opens the copy");
    assert_eq!(secrets["apiToken"], API_TOKEN);
    assert_eq!(secrets["password"], PASSWORD);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_file_is_created_private_on_first_start_and_kept() {
    use std::os::unix::fs::PermissionsExt as _;
    let service = TestService::start_without_workers().await;
    let path = service.dir.path().join(SECRETS_KEY_FILE);
    let metadata = std::fs::metadata(&path).expect("the key file exists");
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.len(), 65, "{text:?}");
    assert!(text.trim_end().bytes().all(|b| b.is_ascii_hexdigit()));
    put_connection(&service).await;

    let service = service.restart().await;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "kept");
    let a = service
        .call(Method::GET, "/v1/admin/connections/erp", Some(ADMIN), None)
        .await;
    assert_eq!(a.body["secrets"], json!(["apiToken", "password"]));

    // A key file others may read is refused, with the fix.
    let mut service = service;
    stop(&mut service).await;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let error = service::start(config(service.dir.path().to_owned(), false))
        .await
        .expect_err("a readable key file is refused");
    assert!(
        matches!(
            store_error(&error),
            StoreError::Secrets(SecretsError::KeyFileNotPrivate { mode: 0o640, .. })
        ),
        "{error:#}"
    );
    assert!(format!("{error:#}").contains("chmod 600"), "{error:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_moved_to_another_row_does_not_open() {
    let mut service = TestService::start_without_workers().await;
    put_connection(&service).await;
    stop(&mut service).await;
    // Swap the two sealed values, as someone editing the file could.
    let database = rusqlite::Connection::open(service.dir.path().join("rescind.db")).unwrap();
    database
        .execute_batch(
            "UPDATE connection_secrets SET name = 'swap' WHERE name = 'apiToken';
             UPDATE connection_secrets SET name = 'apiToken' WHERE name = 'password';
             UPDATE connection_secrets SET name = 'password' WHERE name = 'swap';",
        )
        .unwrap();
    drop(database);
    let key = SecretsKeySource::KeyFile;
    match stored_secrets(service.dir.path(), key).await {
        Err(StoreError::Secrets(SecretsError::Undecryptable { connection, name })) => {
            assert_eq!((connection.as_str(), name.as_str()), ("erp", "apiToken"));
        }
        other => panic!("expected Undecryptable, got {other:?}"),
    }
}

/// Applies the migrations an earlier version had (those before the one that
/// sealed secrets) to a new database in `dir`, the way that version did.
async fn older_data_dir(dir: &Path) {
    let migrations = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/migrations/sqlite");
    let mut copied = 0;
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let version: u32 = name[..4].parse().unwrap();
        if version < 5 {
            std::fs::copy(entry.path(), migrations.path().join(&name)).unwrap();
            copied += 1;
        }
    }
    assert!(copied >= 3, "{copied}");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.join("rescind.db"))
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::migrate::Migrator::new(migrations.path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let secrets = json!({"apiToken": API_TOKEN, "password": PASSWORD}).to_string();
    for (name, secrets) in [("erp", secrets.as_str()), ("crm", "{}")] {
        sqlx::query(
            "INSERT INTO connections (name, base_url, allowed_hosts, settings, secrets, updated_at)
             VALUES (?, 'http://127.0.0.1:9', '[\"127.0.0.1:9\"]', '{}', ?, 0)",
        )
        .bind(name)
        .bind(secrets)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_text_secrets_of_an_older_data_dir_are_sealed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    older_data_dir(dir.path()).await;
    // The older version kept the values in plain text: the check below can
    // see them.
    let before = database_bytes(dir.path());
    assert!(
        before
            .iter()
            .any(|(_, bytes)| contains(bytes, API_TOKEN.as_bytes())),
        "the older database holds the value"
    );

    let running = service::start(config(dir.path().to_owned(), false))
        .await
        .expect("the host starts on the older data directory");
    let client = reqwest::Client::new();
    let view: serde_json::Value = client
        .get(format!("http://{}/v1/admin/connections/erp", running.addr))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["secrets"], json!(["apiToken", "password"]));
    running.shutdown(Duration::from_secs(10)).await.unwrap();

    assert_not_in_files(dir.path(), API_TOKEN);
    assert_not_in_files(dir.path(), PASSWORD);
    let secrets = stored_secrets(dir.path(), SecretsKeySource::KeyFile)
        .await
        .expect("sealed under the new key file");
    assert_eq!(secrets["apiToken"], API_TOKEN);
    assert_eq!(secrets["password"], PASSWORD);
    let database = rusqlite::Connection::open(dir.path().join("rescind.db")).unwrap();
    let waiting: i64 = database
        .query_row(
            "SELECT count(*) FROM connection_secrets_unsealed",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(waiting, 0);
    let plain_column: i64 = database
        .query_row(
            "SELECT count(*) FROM pragma_table_info('connections') WHERE name = 'secrets'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(plain_column, 0, "the plain-text column is gone");
}

fn data_dir_of(service: &TestService) -> PathBuf {
    service.dir.path().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_key_seals_every_value_again_under_a_new_key() {
    let mut service = TestService::start_without_workers().await;
    put_connection(&service).await;
    let a = service
        .call(
            Method::PUT,
            "/v1/admin/connections/crm",
            Some(ADMIN),
            Some(
                &json!({"baseUrl": "http://127.0.0.1:9", "allowedHosts": ["127.0.0.1:9"],
                         "secrets": {"token": "crm-token-1"}}),
            ),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let dir = data_dir_of(&service);
    let options = StoreOptions::new(&dir);

    // Not while the host runs.
    let error = rotate_secrets_key(&options, None)
        .await
        .expect_err("the data directory is in use");
    assert!(matches!(error, StoreError::DataDirInUse { .. }), "{error}");
    stop(&mut service).await;

    let old = key_file(&dir);
    let sealed_before = sealed_values(&dir);
    let rotation = rotate_secrets_key(&options, None).await.expect("rotates");
    assert_eq!(rotation.values, 3);
    assert_eq!(rotation.old_fingerprint, old.fingerprint());
    let new = key_file(&dir);
    assert_ne!(new, old);
    assert_eq!(rotation.new_fingerprint, new.fingerprint());
    assert_eq!(rotation.key_file, Some(dir.join(SECRETS_KEY_FILE)));
    assert!(!dir.join("secrets.key.new").exists());
    // Every stored value changed.
    let sealed_after = sealed_values(&dir);
    assert_eq!(sealed_after.len(), 3);
    for value in &sealed_after {
        assert!(!sealed_before.contains(value));
    }

    // The old key opens nothing; the new one everything.
    let error = stored_secrets(&dir, SecretsKeySource::Given(old.clone()))
        .await
        .expect_err("the old key is refused");
    assert!(
        matches!(error, StoreError::Secrets(SecretsError::WrongKey { .. })),
        "{error}"
    );
    let secrets = stored_secrets(&dir, SecretsKeySource::KeyFile)
        .await
        .unwrap();
    assert_eq!(secrets["apiToken"], API_TOKEN);
    assert_eq!(secrets["password"], PASSWORD);

    // A host given its key in the environment must be given the new one.
    let given = SecretsKeySource::Given(new.clone());
    let options = StoreOptions {
        secrets_key: given,
        ..StoreOptions::new(&dir)
    };
    let error = rotate_secrets_key(&options, None)
        .await
        .expect_err("no new key");
    assert!(
        matches!(error, StoreError::Secrets(SecretsError::NewKeyRequired)),
        "{error}"
    );
    let third = SecretsKey::generate();
    let rotation = rotate_secrets_key(&options, Some(third.clone()))
        .await
        .expect("rotates to the given key");
    assert_eq!(rotation.key_file, None);
    assert_eq!(key_file(&dir), new, "the key file is left alone");
    let secrets = stored_secrets(&dir, SecretsKeySource::Given(third.clone()))
        .await
        .unwrap();
    assert_eq!(secrets["password"], PASSWORD);

    // The host starts again once told the new key.
    let mut again = config(dir.clone(), false);
    again.secrets_key = SecretsKeySource::Given(third);
    let running = service::start(again)
        .await
        .expect("starts with the new key");
    running.shutdown(Duration::from_secs(10)).await.unwrap();
}

/// `rescind secrets rotate-key` on the command line.
async fn rescind(args: &[&str]) -> Exit {
    let line: Vec<String> = std::iter::once("rescind")
        .chain(args.iter().copied())
        .map(str::to_owned)
        .collect();
    tokio::task::spawn_blocking(move || Cli::try_parse_from(line).expect("valid arguments").run())
        .await
        .expect("ran")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rotate_key_command_refuses_a_running_host_and_rotates_a_stopped_one() {
    let mut service = TestService::start_without_workers().await;
    put_connection(&service).await;
    let dir = data_dir_of(&service);
    let dir_arg = dir.display().to_string();
    let old = key_file(&dir);
    assert_eq!(
        rescind(&["secrets", "rotate-key", "--data-dir", &dir_arg]).await,
        Exit::FAILURE
    );
    assert_eq!(key_file(&dir), old, "nothing changed");
    stop(&mut service).await;
    assert_eq!(
        rescind(&["secrets", "rotate-key", "--data-dir", &dir_arg]).await,
        Exit::SUCCESS
    );
    assert_ne!(key_file(&dir), old);
    // A directory without a database is not made one.
    let empty = tempfile::tempdir().unwrap();
    let missing = empty.path().join("data");
    assert_eq!(
        rescind(&[
            "secrets",
            "rotate-key",
            "--data-dir",
            &missing.display().to_string()
        ])
        .await,
        Exit::FAILURE
    );
    assert!(!missing.exists());

    let service = service.restart().await;
    let a = service
        .call(Method::GET, "/v1/admin/connections/erp", Some(ADMIN), None)
        .await;
    assert_eq!(a.body["secrets"], json!(["apiToken", "password"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_cut_short_before_its_key_file_was_renamed_is_finished_at_start() {
    let mut service = TestService::start_without_workers().await;
    put_connection(&service).await;
    stop(&mut service).await;
    let dir = data_dir_of(&service);
    let old_text = std::fs::read_to_string(dir.join(SECRETS_KEY_FILE)).unwrap();
    rotate_secrets_key(&StoreOptions::new(&dir), None)
        .await
        .expect("rotates");
    let new_text = std::fs::read_to_string(dir.join(SECRETS_KEY_FILE)).unwrap();
    // What a crash after the commit and before the rename leaves: the old
    // key file and the new key pending beside it.
    std::fs::rename(dir.join(SECRETS_KEY_FILE), dir.join("secrets.key.new")).unwrap();
    write_private(&dir.join(SECRETS_KEY_FILE), &old_text);

    let secrets = stored_secrets(&dir, SecretsKeySource::KeyFile)
        .await
        .expect("the start finishes the switch");
    assert_eq!(secrets["apiToken"], API_TOKEN);
    assert_eq!(
        std::fs::read_to_string(dir.join(SECRETS_KEY_FILE)).unwrap(),
        new_text
    );
    assert!(!dir.join("secrets.key.new").exists());
}

fn write_private(path: &Path, text: &str) {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    use std::io::Write as _;
    options
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

/// (nonce, ciphertext) of every sealed value.
fn sealed_values(dir: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let database = rusqlite::Connection::open(dir.join("rescind.db")).unwrap();
    let mut statement = database
        .prepare("SELECT nonce, ciphertext FROM connection_secrets ORDER BY connection, name")
        .unwrap();
    statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}
