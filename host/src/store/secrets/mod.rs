//! Connection secrets at rest: every value sealed with XChaCha20-Poly1305
//! under the data directory's secrets key (see [`cipher`]), so a copy of the
//! database without the key yields no secret.
//!
//! The key comes from `RESCIND_SECRETS_KEY` (64 hex digits) or, when that is
//! not set, from `<data-dir>/secrets.key`, created with mode 0600 on the
//! first start. The database records the key's fingerprint (never the key):
//! a start with another key, or without the key once secrets were sealed,
//! stops with [`SecretsError::WrongKey`] or [`SecretsError::KeyMissing`]
//! instead of failing later on every read.
//!
//! Values an earlier version stored in plain text are sealed at the first
//! start of this one, and the database file is then rewritten (`VACUUM`)
//! so that no page keeps the plain text.

mod cipher;
mod key;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cipher::Sealed;
pub(super) use cipher::SecretsCipher;
pub use key::{SECRETS_KEY_FILE, SecretsKey};

use super::db::{Conn, Db, Link, StoreRow, on};
use super::{Store, StoreError, StoreOptions, now_ms};

/// Where the secrets key comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SecretsKeySource {
    /// `<data-dir>/secrets.key`, created (mode 0600) on the first start.
    #[default]
    KeyFile,
    /// Given by the operator (`RESCIND_SECRETS_KEY`); no key file is read
    /// or written.
    Given(SecretsKey),
}

/// Why connection secrets cannot be sealed or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// The key text is not 64 hex digits.
    #[error(
        "a secrets key is 64 hex digits (32 bytes), this one has {length} characters: \
         generate one with `head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'`"
    )]
    KeyMalformed {
        /// How many characters it had.
        length: usize,
    },
    /// The key file does not hold 64 hex digits.
    #[error("the secrets key file {path} does not hold a key of 64 hex digits")]
    KeyFileMalformed {
        /// The file.
        path: PathBuf,
    },
    /// The key file may be read or written by others than its owner.
    #[error(
        "the secrets key file {path} has mode {mode:o}: others than its owner may read it; \
         run `chmod 600 {path}`"
    )]
    KeyFileNotPrivate {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file could not be read or written.
    #[error("secrets key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The database holds sealed secrets, and no key was given: no key
    /// file in the data directory and no `RESCIND_SECRETS_KEY`.
    #[error(
        "this database's connection secrets are sealed with the secrets key {fingerprint}, \
         and there is no key: put its key file back at {path} or set RESCIND_SECRETS_KEY \
         to it (a database copied without its key yields no secret)"
    )]
    KeyMissing {
        /// The fingerprint of the key the secrets were sealed with.
        fingerprint: String,
        /// Where the key file was looked for.
        path: PathBuf,
    },
    /// The key given is not the one the database's secrets were sealed with.
    #[error(
        "the secrets key from {source_name} (fingerprint {given}) is not the key this \
         database's connection secrets were sealed with (fingerprint {recorded}): give that \
         key, or the secrets cannot be read"
    )]
    WrongKey {
        /// `RESCIND_SECRETS_KEY` or the key file's path.
        source_name: String,
        /// The given key's fingerprint.
        given: String,
        /// The fingerprint recorded in the database.
        recorded: String,
    },
    /// A stored value does not open under the key: it was altered, or
    /// moved from another row.
    #[error(
        "secret {name:?} of connection {connection:?} cannot be opened with the secrets key: \
         it was altered or copied from another row; PUT the connection's secrets again"
    )]
    Undecryptable {
        /// The connection.
        connection: String,
        /// The secret's name.
        name: String,
    },
    /// `rescind secrets rotate-key` was pointed at a directory without a
    /// database.
    #[error("there is no rescind database in {path}: nothing to rotate")]
    NoDatabase {
        /// The data directory.
        path: PathBuf,
    },
    /// The host takes its key from the environment, so the new key must be
    /// given: rescind cannot write it there.
    #[error(
        "this host takes its secrets key from RESCIND_SECRETS_KEY, so give the new key in \
         RESCIND_NEW_SECRETS_KEY (64 hex digits) and set RESCIND_SECRETS_KEY to it afterwards"
    )]
    NewKeyRequired,
    /// The new key is the current one.
    #[error("the new secrets key is the current one (fingerprint {fingerprint}): nothing to do")]
    SameKey {
        /// Its fingerprint.
        fingerprint: String,
    },
}

/// What [`rotate_secrets_key`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRotation {
    /// How many secret values were sealed again.
    pub values: usize,
    /// The old key's fingerprint.
    pub old_fingerprint: String,
    /// The new key's fingerprint.
    pub new_fingerprint: String,
    /// The key file now holding the new key, when the host uses one.
    pub key_file: Option<PathBuf>,
}

/// The key of a data directory, checked against the fingerprint its
/// database recorded (recorded now when there is none), and the plain-text
/// values of earlier versions sealed. Runs at [`Store::open`], before
/// anything else reads the database.
pub(super) async fn prepare(
    conn: &mut Conn,
    options: &StoreOptions,
) -> Result<SecretsCipher, StoreError> {
    let recorded = recorded_fingerprint(conn.link()).await?;
    let (key, source_name) = match &options.secrets_key {
        SecretsKeySource::Given(key) => (key.clone(), "RESCIND_SECRETS_KEY".to_owned()),
        SecretsKeySource::KeyFile => {
            let (path, pending) = key::key_paths(&options.data_dir);
            let key = key_file_key(&path, &pending, recorded.as_deref())?;
            (key, path.display().to_string())
        }
    };
    let cipher = SecretsCipher::new(&key);
    match &recorded {
        Some(recorded) if recorded != cipher.fingerprint() => {
            return Err(SecretsError::WrongKey {
                source_name,
                given: cipher.fingerprint().to_owned(),
                recorded: recorded.clone(),
            }
            .into());
        }
        _ => {}
    }
    match conn {
        Db::Sqlite(conn) => {
            let sealed = seal_unsealed(conn, &cipher, recorded.is_none()).await?;
            if sealed > 0 {
                // Rewrite the file so that no free page keeps the plain
                // text, and empty the write-ahead log that carried it.
                sqlx::query("VACUUM").execute(&mut **conn).await?;
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&mut **conn)
                    .await?;
                tracing::info!(
                    values = sealed,
                    key = cipher.fingerprint(),
                    "sealed the connection secrets an earlier version kept in plain text"
                );
            }
        }
        Db::Postgres(conn) if recorded.is_none() => {
            // Replicas starting together on a new database: the first
            // fingerprint recorded is the store's, and a replica given
            // another key refuses to start.
            sqlx::query(
                "INSERT INTO secrets_key (id, fingerprint, created_at) VALUES (1, $1, $2)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(cipher.fingerprint())
            .bind(now_ms())
            .execute(&mut **conn)
            .await?;
            let recorded = recorded_fingerprint(Db::Postgres(&mut **conn)).await?;
            if let Some(recorded) = recorded
                && recorded != cipher.fingerprint()
            {
                return Err(SecretsError::WrongKey {
                    source_name,
                    given: cipher.fingerprint().to_owned(),
                    recorded,
                }
                .into());
            }
        }
        Db::Postgres(_) => {}
    }
    Ok(cipher)
}

/// The key from the key file: the file's, the pending one a rotation left
/// if the database already switched to it, or a new one when the database
/// has sealed nothing yet.
fn key_file_key(
    path: &Path,
    pending: &Path,
    recorded: Option<&str>,
) -> Result<SecretsKey, StoreError> {
    let current = key::read_key_file(path)?;
    if let Some(recorded) = recorded
        && current.as_ref().is_none_or(|k| k.fingerprint() != recorded)
        && let Some(next) = key::read_key_file(pending)?
        && next.fingerprint() == recorded
    {
        // A rotation committed, and stopped before renaming its key file.
        key::replace_key_file(pending, path)?;
        tracing::info!(
            key = recorded,
            "finished switching to the rotated secrets key"
        );
        return Ok(next);
    }
    match (current, recorded) {
        (Some(key), _) => Ok(key),
        (None, Some(recorded)) => Err(SecretsError::KeyMissing {
            fingerprint: recorded.to_owned(),
            path: path.to_owned(),
        }
        .into()),
        (None, None) => {
            let key = SecretsKey::generate();
            key::write_key_file(path, &key)?;
            tracing::info!(
                path = %path.display(),
                key = key.fingerprint(),
                "created the secrets key file: back it up apart from the database"
            );
            Ok(key)
        }
    }
}

async fn recorded_fingerprint(mut link: Link<'_>) -> Result<Option<String>, StoreError> {
    Ok(on!(&mut link, |c| sqlx::query_scalar(
        "SELECT fingerprint FROM secrets_key WHERE id = 1"
    )
    .fetch_optional(&mut **c)
    .await?))
}

/// Seals the values waiting in plain text and, with `record`, records the
/// key's fingerprint: one transaction. Answers how many values it sealed.
async fn seal_unsealed(
    conn: &mut sqlx::SqliteConnection,
    cipher: &SecretsCipher,
    record: bool,
) -> Result<usize, StoreError> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let rows = sqlx::query("SELECT connection, name, value FROM connection_secrets_unsealed")
        .fetch_all(&mut *tx)
        .await?;
    for row in &rows {
        let connection = row.text("connection")?;
        let name = row.text("name")?;
        let value = row.text("value")?;
        insert_sealed(
            Db::Sqlite(&mut *tx),
            &connection,
            &name,
            &cipher.seal(&connection, &name, &value),
        )
        .await?;
    }
    sqlx::query("DELETE FROM connection_secrets_unsealed")
        .execute(&mut *tx)
        .await?;
    if record {
        sqlx::query("INSERT INTO secrets_key (id, fingerprint, created_at) VALUES (1, $1, $2)")
            .bind(cipher.fingerprint())
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(rows.len())
}

async fn insert_sealed(
    mut link: Link<'_>,
    connection: &str,
    name: &str,
    sealed: &Sealed,
) -> Result<(), StoreError> {
    on!(&mut link, |c| sqlx::query(
        "INSERT INTO connection_secrets (connection, name, nonce, ciphertext)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (connection, name) DO UPDATE SET nonce = excluded.nonce,
            ciphertext = excluded.ciphertext",
    )
    .bind(connection)
    .bind(name)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .execute(&mut **c)
    .await
    .map(drop)?);
    Ok(())
}

/// The opened secrets of a connection.
pub(super) async fn load(
    mut link: Link<'_>,
    cipher: &SecretsCipher,
    connection: &str,
) -> Result<BTreeMap<String, String>, StoreError> {
    on!(&mut link, |c| open_rows(
        cipher,
        connection,
        &sqlx::query(
            "SELECT name AS secret_name, nonce, ciphertext FROM connection_secrets
             WHERE connection = $1 ORDER BY name",
        )
        .bind(connection)
        .fetch_all(&mut **c)
        .await?,
    ))
}

/// Opens the secrets of `connection` from rows that hold each secret's
/// `secret_name`, `nonce` and `ciphertext`. A row whose `secret_name` is
/// NULL (an outer join's row for a connection with no secrets) holds none.
pub(in crate::store) fn open_rows(
    cipher: &SecretsCipher,
    connection: &str,
    rows: &[impl StoreRow],
) -> Result<BTreeMap<String, String>, StoreError> {
    let mut secrets = BTreeMap::new();
    for row in rows {
        let Some(name) = row.opt_text("secret_name")? else {
            continue;
        };
        let sealed = Sealed {
            nonce: row.bytes("nonce")?,
            ciphertext: row.bytes("ciphertext")?,
        };
        let value =
            cipher
                .open(connection, &name, &sealed)
                .ok_or_else(|| SecretsError::Undecryptable {
                    connection: connection.to_owned(),
                    name: name.clone(),
                })?;
        secrets.insert(name, value);
    }
    Ok(secrets)
}

/// Replaces the secrets of a connection with `secrets`, sealed.
pub(super) async fn replace(
    mut link: Link<'_>,
    cipher: &SecretsCipher,
    connection: &str,
    secrets: &BTreeMap<String, String>,
) -> Result<(), StoreError> {
    on!(&mut link, |c| sqlx::query(
        "DELETE FROM connection_secrets WHERE connection = $1"
    )
    .bind(connection)
    .execute(&mut **c)
    .await
    .map(drop)?);
    for (name, value) in secrets {
        insert_sealed(
            link.reborrow(),
            connection,
            name,
            &cipher.seal(connection, name, value),
        )
        .await?;
    }
    Ok(())
}

/// `rescind secrets rotate-key`: opens the store of a stopped host (a
/// running one holds the data directory: [`StoreError::DataDirInUse`]),
/// seals every secret value again under `new_key` and records the new
/// fingerprint, in one transaction.
///
/// Without `new_key`, a host using a key file gets a generated one; a host
/// given its key in `RESCIND_SECRETS_KEY` must be given the new one
/// ([`SecretsError::NewKeyRequired`]). With a key file, the new key is
/// written beside it (`secrets.key.new`) before the transaction and renamed
/// over it after: a crash in between leaves a pair the next start finishes.
pub async fn rotate_secrets_key(
    options: &StoreOptions,
    new_key: Option<SecretsKey>,
) -> Result<KeyRotation, StoreError> {
    if options.database_url.is_none() && !options.data_dir.join("rescind.db").is_file() {
        return Err(SecretsError::NoDatabase {
            path: options.data_dir.clone(),
        }
        .into());
    }
    let store = Store::open(options).await?;
    let rotated = rotate_open_store(&store, options, new_key).await;
    store.close().await;
    rotated
}

async fn rotate_open_store(
    store: &Store,
    options: &StoreOptions,
    new_key: Option<SecretsKey>,
) -> Result<KeyRotation, StoreError> {
    let old = store.secrets_cipher();
    let uses_key_file = options.secrets_key == SecretsKeySource::KeyFile;
    let new_key = match new_key {
        Some(key) => key,
        None if uses_key_file => SecretsKey::generate(),
        None => return Err(SecretsError::NewKeyRequired.into()),
    };
    let new = SecretsCipher::new(&new_key);
    if new.fingerprint() == old.fingerprint() {
        return Err(SecretsError::SameKey {
            fingerprint: new.fingerprint().to_owned(),
        }
        .into());
    }
    let (path, pending) = key::key_paths(&options.data_dir);
    if uses_key_file {
        // A pending file of an earlier rotation that never committed.
        match std::fs::remove_file(&pending) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(SecretsError::KeyFile {
                    path: pending,
                    source: e,
                }
                .into());
            }
            _ => {}
        }
        key::write_key_file(&pending, &new_key)?;
    }
    let resealed = reseal_all(store, &old, &new).await;
    let values = match resealed {
        Ok(values) => values,
        Err(error) => {
            if uses_key_file {
                // Nothing switched: the pending key must not look like one.
                let _ = std::fs::remove_file(&pending);
            }
            return Err(error);
        }
    };
    if uses_key_file {
        key::replace_key_file(&pending, &path)?;
    }
    store.replace_secrets_cipher(new.clone());
    Ok(KeyRotation {
        values,
        old_fingerprint: old.fingerprint().to_owned(),
        new_fingerprint: new.fingerprint().to_owned(),
        key_file: uses_key_file.then_some(path),
    })
}

/// Seals every value again under `new` and records its fingerprint, in one
/// transaction; answers how many values there were.
async fn reseal_all(
    store: &Store,
    old: &SecretsCipher,
    new: &SecretsCipher,
) -> Result<usize, StoreError> {
    let mut tx = store.write().await?;
    let rows = on!(&mut tx, |tx| sqlx::query(
        "SELECT connection, name, nonce, ciphertext FROM connection_secrets"
    )
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|row| -> Result<_, StoreError> {
        Ok((
            row.text("connection")?,
            row.text("name")?,
            Sealed {
                nonce: row.bytes("nonce")?,
                ciphertext: row.bytes("ciphertext")?,
            },
        ))
    })
    .collect::<Result<Vec<_>, _>>()?);
    for (connection, name, sealed) in &rows {
        let (connection, name) = (connection.as_str(), name.as_str());
        let value =
            old.open(connection, name, sealed)
                .ok_or_else(|| SecretsError::Undecryptable {
                    connection: connection.to_owned(),
                    name: name.to_owned(),
                })?;
        insert_sealed(
            tx.link(),
            connection,
            name,
            &new.seal(connection, name, &value),
        )
        .await?;
    }
    on!(&mut tx, |tx| sqlx::query(
        "UPDATE secrets_key SET fingerprint = $1, created_at = $2 WHERE id = 1"
    )
    .bind(new.fingerprint())
    .bind(now_ms())
    .execute(&mut **tx)
    .await
    .map(drop)?);
    tx.commit().await?;
    Ok(rows.len())
}
