//! Configuration: cancel settings and status mappings, websites, ERP
//! connections and job definitions.

use std::collections::HashMap;
use std::sync::Arc;

use super::db::{Db, Link, StoreRow, Tx, WRITE_LOCK_CONFIG, on};
use super::{
    AppliesTo, Connection, JobDefinition, JobParameter, RetryPolicy, Store, StoreError, from_json,
    now_ms, secrets, to_json,
};
use crate::domain::{Settings, StatusMapping, WebsiteSettings};

/// The configuration every cancellation reads, cached between writes.
#[derive(Debug)]
pub struct ConfigSnapshot {
    /// Cancel settings with mappings.
    pub settings: Settings,
    /// Every configured website.
    pub websites: HashMap<String, WebsiteSettings>,
    /// The enabled job definitions, by name.
    pub definitions: Vec<JobDefinition>,
}

/// The shared cache of the configuration snapshot.
pub(super) type ConfigCache = Arc<std::sync::Mutex<Option<Arc<ConfigSnapshot>>>>;

/// PostgreSQL's cache of the configuration: the snapshot with the
/// `config_version` it was read at. Another replica's write moves the
/// version on, so a cancellation checks it with one read and reloads only
/// when it moved.
pub(super) type VersionedConfigCache = Arc<std::sync::Mutex<Option<(i64, Arc<ConfigSnapshot>)>>>;

/// The configuration a PostgreSQL cancellation plans with, inside its
/// transaction, which holds [`WRITE_LOCK_CONFIG`] shared: no configuration
/// write commits while it runs, so the version it reads names the
/// configuration it sees.
pub(super) async fn current_snapshot(
    cache: &VersionedConfigCache,
    conn: &mut sqlx::PgConnection,
) -> Result<Arc<ConfigSnapshot>, StoreError> {
    let version: i64 = sqlx::query_scalar("SELECT version FROM config_version WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    if let Some((cached, snapshot)) = &*cache.lock().unwrap_or_else(|p| p.into_inner())
        && *cached == version
    {
        return Ok(Arc::clone(snapshot));
    }
    let snapshot = Arc::new(load_snapshot(Db::Postgres(conn)).await?);
    *cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((version, Arc::clone(&snapshot)));
    Ok(snapshot)
}

/// The cached configuration, loaded on the cancellation writer's own
/// connection when the cache is empty. The writer holds SQLite's write
/// lock (its transaction began `IMMEDIATE`), so no configuration write
/// commits meanwhile and what it caches is current; it reads in its own
/// transaction, so the snapshot is the one its writes see.
pub(super) fn config_snapshot(
    cache: &ConfigCache,
    conn: &rusqlite::Connection,
) -> Result<Arc<ConfigSnapshot>, rusqlite::Error> {
    if let Some(snapshot) = cache.lock().unwrap_or_else(|p| p.into_inner()).clone() {
        return Ok(snapshot);
    }
    let corrupt = |e: StoreError| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    };
    let (cancellable_statuses, cancelled_status): (String, String) = conn
        .prepare_cached("SELECT cancellable_statuses, cancelled_status FROM settings WHERE id = 1")?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let status_mappings = conn
        .prepare_cached(
            "SELECT erp_code, status, allow_cancellation FROM status_mappings ORDER BY position",
        )?
        .query_map([], |row| {
            Ok(StatusMapping {
                erp_code: row.get(0)?,
                status: row.get(1)?,
                allow_cancellation: row.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let settings = Settings {
        status_mappings,
        cancellable_statuses: from_json("cancellableStatuses", &cancellable_statuses)
            .map_err(corrupt)?,
        cancelled_status,
    };
    let websites = conn
        .prepare_cached("SELECT name, allow_cancellation_request FROM websites")?
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                WebsiteSettings {
                    allow_cancellation_request: row.get(1)?,
                },
            ))
        })?
        .collect::<Result<HashMap<_, _>, _>>()?;
    let definitions = conn
        .prepare_cached(&format!(
            "{DEFINITION_SELECT} WHERE enabled = 1 ORDER BY name"
        ))?
        .query_map([], |row| {
            Ok(DefinitionFields {
                name: row.get("name")?,
                job_type: row.get("job_type")?,
                connection: row.get("connection")?,
                preprocessor: row.get("preprocessor")?,
                integration_processor: row.get("integration_processor")?,
                post_processor: row.get("post_processor")?,
                parameters: row.get("parameters")?,
                max_attempts: row.get("max_attempts")?,
                initial_backoff_ms: row.get("initial_backoff_ms")?,
                max_backoff_ms: row.get("max_backoff_ms")?,
                enabled: row.get("enabled")?,
                applies_to: row.get("applies_to")?,
            })
        })?
        .map(|fields| fields.and_then(|f| f.into_definition().map_err(corrupt)))
        .collect::<Result<Vec<_>, _>>()?;
    let snapshot = Arc::new(ConfigSnapshot {
        settings,
        websites,
        definitions,
    });
    *cache.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&snapshot));
    Ok(snapshot)
}

/// The configuration a cancellation reads, inside its transaction (the
/// PostgreSQL store: no cache, since another replica may have changed it;
/// the transaction holds [`WRITE_LOCK_CONFIG`] shared, so no configuration
/// write commits halfway through these reads).
pub(super) async fn load_snapshot(mut link: Link<'_>) -> Result<ConfigSnapshot, StoreError> {
    let settings = load_settings(link.reborrow()).await?;
    let websites = on!(&mut link, |c| sqlx::query(
        "SELECT name, allow_cancellation_request FROM websites"
    )
    .fetch_all(&mut **c)
    .await?
    .iter()
    .map(|row| -> Result<_, StoreError> {
        Ok((
            row.text("name")?,
            WebsiteSettings {
                allow_cancellation_request: row.flag("allow_cancellation_request")?,
            },
        ))
    })
    .collect::<Result<HashMap<_, _>, _>>()?);
    let definitions = on!(&mut link, |c| sqlx::query(&format!(
        "{DEFINITION_SELECT} WHERE enabled = TRUE ORDER BY name"
    ))
    .fetch_all(&mut **c)
    .await?
    .iter()
    .map(definition_from_row)
    .collect::<Result<Vec<_>, _>>()?);
    Ok(ConfigSnapshot {
        settings,
        websites,
        definitions,
    })
}

impl Store {
    /// Marks the configuration changed; called inside every configuration
    /// write, before its commit. The cache is emptied, and on PostgreSQL
    /// the write waits for the cancellations reading the configuration
    /// just now (they hold [`WRITE_LOCK_CONFIG`] shared) and keeps new ones
    /// out until it commits.
    async fn config_written(&self, tx: &mut Tx) -> Result<(), StoreError> {
        if let Db::Postgres(tx) = tx {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(WRITE_LOCK_CONFIG)
                .execute(&mut **tx)
                .await?;
            // Every replica's cached configuration is out of date from the
            // commit on.
            sqlx::query("UPDATE config_version SET version = version + 1 WHERE id = 1")
                .execute(&mut **tx)
                .await?;
        }
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    /// The cancel settings with the status mappings.
    pub async fn settings(&self) -> Result<Settings, StoreError> {
        load_settings(self.reader.acquire().await?.link()).await
    }

    /// Replaces the status mappings.
    pub async fn put_status_mappings(&self, mappings: &[StatusMapping]) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        write_mappings(tx.link(), mappings).await?;
        self.config_written(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the cancellable statuses and the cancelled status.
    pub async fn put_cancel_settings(
        &self,
        cancellable_statuses: &[String],
        cancelled_status: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        write_cancel_settings(tx.link(), cancellable_statuses, cancelled_status).await?;
        self.config_written(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces mappings and settings at once (presets).
    pub async fn put_settings(&self, settings: &Settings) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        write_mappings(tx.link(), &settings.status_mappings).await?;
        write_cancel_settings(
            tx.link(),
            &settings.cancellable_statuses,
            &settings.cancelled_status,
        )
        .await?;
        self.config_written(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A website's settings; none when the website was never configured.
    pub async fn website(&self, name: &str) -> Result<Option<WebsiteSettings>, StoreError> {
        load_website(self.reader.acquire().await?.link(), name).await
    }

    /// Creates or replaces a website's settings.
    pub async fn put_website(
        &self,
        name: &str,
        website: &WebsiteSettings,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        on!(&mut tx, |tx| sqlx::query(
            "INSERT INTO websites (name, allow_cancellation_request) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET
                allow_cancellation_request = excluded.allow_cancellation_request",
        )
        .bind(name)
        .bind(website.allow_cancellation_request)
        .execute(&mut **tx)
        .await
        .map(drop)?);
        self.config_written(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every configured website with its `allowCancellationRequest`, by
    /// name (the console's list; the API reads them one at a time).
    pub async fn websites(&self) -> Result<Vec<(String, WebsiteSettings)>, StoreError> {
        on!(&self.reader, |pool| sqlx::query(
            "SELECT name, allow_cancellation_request FROM websites ORDER BY name"
        )
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| -> Result<_, StoreError> {
            Ok((
                row.text("name")?,
                WebsiteSettings {
                    allow_cancellation_request: row.flag("allow_cancellation_request")?,
                },
            ))
        })
        .collect())
    }

    /// The names of every connection, sorted (the console's list).
    pub async fn connection_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(on!(&self.reader, |pool| sqlx::query_scalar(
            "SELECT name FROM connections ORDER BY name"
        )
        .fetch_all(pool)
        .await?))
    }

    /// The names of every job definition, sorted (the console's list).
    pub async fn job_definition_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(on!(&self.reader, |pool| sqlx::query_scalar(
            "SELECT name FROM job_definitions ORDER BY name"
        )
        .fetch_all(pool)
        .await?))
    }

    /// A connection, secrets included and opened (for the job worker; the
    /// API must only show the secrets' names). A value that does not open
    /// under the key is [`crate::store::SecretsError::Undecryptable`].
    pub async fn connection(&self, name: &str) -> Result<Option<Connection>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        load_connection(conn.link(), &self.secrets_cipher(), name).await
    }

    /// Creates or replaces a connection, its secrets sealed. With
    /// `keep_secrets`, the stored secrets stay and `connection.secrets` is
    /// ignored (secrets are write-only, so a client cannot send them back).
    pub async fn put_connection(
        &self,
        connection: &Connection,
        keep_secrets: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        on!(&mut tx, |tx| sqlx::query(
            "INSERT INTO connections (name, base_url, allowed_hosts, allow_private_network,
                 ca_certificates, settings, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (name) DO UPDATE SET base_url = excluded.base_url,
                allowed_hosts = excluded.allowed_hosts,
                allow_private_network = excluded.allow_private_network,
                ca_certificates = excluded.ca_certificates, settings = excluded.settings,
                updated_at = excluded.updated_at",
        )
        .bind(&connection.name)
        .bind(&connection.base_url)
        .bind(to_json(&connection.allowed_hosts))
        .bind(connection.allow_private_network)
        .bind(&connection.ca_certificates)
        .bind(to_json(&connection.settings))
        .bind(now_ms())
        .execute(&mut **tx)
        .await
        .map(drop)?);
        if !keep_secrets {
            secrets::replace(
                tx.link(),
                &self.secrets_cipher(),
                &connection.name,
                &connection.secrets,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A job definition.
    pub async fn job_definition(&self, name: &str) -> Result<Option<JobDefinition>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        load_definition(conn.link(), name).await
    }

    /// Creates or replaces a job definition.
    pub async fn put_job_definition(&self, definition: &JobDefinition) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        on!(&mut tx, |tx| sqlx::query(
            "INSERT INTO job_definitions (name, job_type, connection, preprocessor,
                 integration_processor, post_processor, parameters, max_attempts,
                 initial_backoff_ms, max_backoff_ms, enabled, applies_to, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (name) DO UPDATE SET job_type = excluded.job_type,
                connection = excluded.connection, preprocessor = excluded.preprocessor,
                integration_processor = excluded.integration_processor,
                post_processor = excluded.post_processor, parameters = excluded.parameters,
                max_attempts = excluded.max_attempts,
                initial_backoff_ms = excluded.initial_backoff_ms,
                max_backoff_ms = excluded.max_backoff_ms, enabled = excluded.enabled,
                applies_to = excluded.applies_to, updated_at = excluded.updated_at",
        )
        .bind(&definition.name)
        .bind(&definition.job_type)
        .bind(&definition.connection)
        .bind(&definition.preprocessor)
        .bind(&definition.integration_processor)
        .bind(&definition.post_processor)
        .bind(to_json(&definition.parameters))
        .bind(i64::from(definition.retry.max_attempts))
        .bind(clamp_ms(definition.retry.initial_backoff_ms))
        .bind(clamp_ms(definition.retry.max_backoff_ms))
        .bind(definition.enabled)
        .bind(definition.applies_to.as_str())
        .bind(now_ms())
        .execute(&mut **tx)
        .await
        .map(drop)?);
        self.config_written(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

fn clamp_ms(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

pub(super) const DEFINITION_SELECT: &str = "SELECT name, job_type, connection, preprocessor,
    integration_processor, post_processor, parameters, max_attempts, initial_backoff_ms,
    max_backoff_ms, enabled, applies_to FROM job_definitions";

/// A job definition's columns as read, from either driver.
struct DefinitionFields {
    name: String,
    job_type: String,
    connection: String,
    preprocessor: Option<String>,
    integration_processor: String,
    post_processor: Option<String>,
    parameters: String,
    max_attempts: u32,
    initial_backoff_ms: i64,
    max_backoff_ms: i64,
    enabled: bool,
    applies_to: String,
}

impl DefinitionFields {
    /// The definition; an `applies_to` the code does not know is corrupt
    /// data, never a silent `any`.
    fn into_definition(self) -> Result<JobDefinition, StoreError> {
        let parameters: Vec<JobParameter> = from_json("parameters", &self.parameters)?;
        let applies_to = AppliesTo::parse(&self.applies_to).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "job definition applies to {:?}, not any, full or partial",
                self.applies_to
            ))
        })?;
        Ok(JobDefinition {
            name: self.name,
            job_type: self.job_type,
            connection: self.connection,
            preprocessor: self.preprocessor,
            integration_processor: self.integration_processor,
            post_processor: self.post_processor,
            parameters,
            retry: RetryPolicy {
                max_attempts: self.max_attempts,
                initial_backoff_ms: self.initial_backoff_ms.max(0) as u64,
                max_backoff_ms: self.max_backoff_ms.max(0) as u64,
            },
            enabled: self.enabled,
            applies_to,
        })
    }
}

/// A job definition read back through sqlx.
pub(super) fn definition_from_row(row: &impl StoreRow) -> Result<JobDefinition, StoreError> {
    DefinitionFields {
        name: row.text("name")?,
        job_type: row.text("job_type")?,
        connection: row.text("connection")?,
        preprocessor: row.opt_text("preprocessor")?,
        integration_processor: row.text("integration_processor")?,
        post_processor: row.opt_text("post_processor")?,
        parameters: row.text("parameters")?,
        max_attempts: row.count("max_attempts")?,
        initial_backoff_ms: row.int("initial_backoff_ms")?,
        max_backoff_ms: row.int("max_backoff_ms")?,
        enabled: row.flag("enabled")?,
        applies_to: row.text("applies_to")?,
    }
    .into_definition()
}

/// Reads the settings row and the mappings.
pub(super) async fn load_settings(mut link: Link<'_>) -> Result<Settings, StoreError> {
    let (cancellable_statuses, cancelled_status) = on!(&mut link, |c| {
        let row =
            sqlx::query("SELECT cancellable_statuses, cancelled_status FROM settings WHERE id = 1")
                .fetch_one(&mut **c)
                .await?;
        (
            row.text("cancellable_statuses")?,
            row.text("cancelled_status")?,
        )
    });
    let status_mappings = on!(&mut link, |c| sqlx::query(
        "SELECT erp_code, status, allow_cancellation FROM status_mappings ORDER BY position",
    )
    .fetch_all(&mut **c)
    .await?
    .iter()
    .map(|row| -> Result<_, StoreError> {
        Ok(StatusMapping {
            erp_code: row.text("erp_code")?,
            status: row.text("status")?,
            allow_cancellation: row.flag("allow_cancellation")?,
        })
    })
    .collect::<Result<Vec<_>, _>>()?);
    Ok(Settings {
        status_mappings,
        cancellable_statuses: from_json("cancellableStatuses", &cancellable_statuses)?,
        cancelled_status,
    })
}

/// Reads a website's settings.
pub(super) async fn load_website(
    mut link: Link<'_>,
    name: &str,
) -> Result<Option<WebsiteSettings>, StoreError> {
    let allow: Option<bool> = on!(&mut link, |c| sqlx::query_scalar(
        "SELECT allow_cancellation_request FROM websites WHERE name = $1"
    )
    .bind(name)
    .fetch_optional(&mut **c)
    .await?);
    Ok(allow.map(|allow_cancellation_request| WebsiteSettings {
        allow_cancellation_request,
    }))
}

async fn write_mappings(mut link: Link<'_>, mappings: &[StatusMapping]) -> Result<(), StoreError> {
    on!(&mut link, |c| sqlx::query("DELETE FROM status_mappings")
        .execute(&mut **c)
        .await
        .map(drop)?);
    for (position, mapping) in mappings.iter().enumerate() {
        on!(&mut link, |c| sqlx::query(
            "INSERT INTO status_mappings (position, erp_code, status, allow_cancellation)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(position as i64)
        .bind(&mapping.erp_code)
        .bind(&mapping.status)
        .bind(mapping.allow_cancellation)
        .execute(&mut **c)
        .await
        .map(drop)?);
    }
    Ok(())
}

async fn write_cancel_settings(
    mut link: Link<'_>,
    cancellable_statuses: &[String],
    cancelled_status: &str,
) -> Result<(), StoreError> {
    on!(&mut link, |c| sqlx::query(
        "UPDATE settings SET cancellable_statuses = $1, cancelled_status = $2 WHERE id = 1"
    )
    .bind(to_json(&cancellable_statuses))
    .bind(cancelled_status)
    .execute(&mut **c)
    .await
    .map(drop)?);
    Ok(())
}

/// The job definition `name`, read on `link`.
pub(super) async fn load_definition(
    mut link: Link<'_>,
    name: &str,
) -> Result<Option<JobDefinition>, StoreError> {
    on!(&mut link, |c| sqlx::query(&format!(
        "{DEFINITION_SELECT} WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(&mut **c)
    .await?
    .map(|row| definition_from_row(&row))
    .transpose())
}

/// A connection read back, without its secrets: the row holds its name as
/// `connection_name`, and `base_url`, `allowed_hosts`,
/// `allow_private_network`, `ca_certificates` and `settings`.
pub(super) fn connection_from_row(row: &impl StoreRow) -> Result<Connection, StoreError> {
    Ok(Connection {
        name: row.text("connection_name")?,
        base_url: row.text("base_url")?,
        allowed_hosts: from_json("allowedHosts", &row.text("allowed_hosts")?)?,
        allow_private_network: row.flag("allow_private_network")?,
        ca_certificates: row.opt_text("ca_certificates")?,
        settings: from_json("settings", &row.text("settings")?)?,
        secrets: Default::default(),
    })
}

/// The connection `name` with its secrets opened under `cipher`, read on
/// `link`.
pub(super) async fn load_connection(
    mut link: Link<'_>,
    cipher: &secrets::SecretsCipher,
    name: &str,
) -> Result<Option<Connection>, StoreError> {
    let connection = on!(&mut link, |c| sqlx::query(
        "SELECT name AS connection_name, base_url, allowed_hosts, allow_private_network,
                ca_certificates, settings
         FROM connections WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&mut **c)
    .await?
    .map(|row| connection_from_row(&row))
    .transpose()?);
    let Some(mut connection) = connection else {
        return Ok(None);
    };
    connection.secrets = secrets::load(link, cipher, name).await?;
    Ok(Some(connection))
}
