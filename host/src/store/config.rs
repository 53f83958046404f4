//! Configuration: cancel settings and status mappings, websites, ERP
//! connections and job definitions.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::{Row, SqliteConnection};

use super::{
    AppliesTo, Connection, JobDefinition, JobParameter, RetryPolicy, Store, StoreError, from_json,
    now_ms, secrets, to_json,
};
use crate::domain::{Settings, StatusMapping, WebsiteSettings};

/// The configuration every cancellation reads, cached between writes.
#[derive(Debug)]
pub(super) struct ConfigSnapshot {
    /// Cancel settings with mappings.
    pub settings: Settings,
    /// Every configured website.
    pub websites: HashMap<String, WebsiteSettings>,
    /// The enabled job definitions, by name.
    pub definitions: Vec<JobDefinition>,
}

/// The shared cache of the configuration snapshot.
pub(super) type ConfigCache = Arc<std::sync::Mutex<Option<Arc<ConfigSnapshot>>>>;

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

impl Store {
    /// Empties the cache; called inside every configuration write, before
    /// its commit.
    fn invalidate_config(&self) {
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The cancel settings with the status mappings.
    pub async fn settings(&self) -> Result<Settings, StoreError> {
        let mut conn = self.reader.acquire().await?;
        load_settings(&mut conn).await
    }

    /// Replaces the status mappings.
    pub async fn put_status_mappings(&self, mappings: &[StatusMapping]) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        write_mappings(&mut tx, mappings).await?;
        self.invalidate_config();
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
        write_cancel_settings(&mut tx, cancellable_statuses, cancelled_status).await?;
        self.invalidate_config();
        tx.commit().await?;
        Ok(())
    }

    /// Replaces mappings and settings at once (presets).
    pub async fn put_settings(&self, settings: &Settings) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        write_mappings(&mut tx, &settings.status_mappings).await?;
        write_cancel_settings(
            &mut tx,
            &settings.cancellable_statuses,
            &settings.cancelled_status,
        )
        .await?;
        self.invalidate_config();
        tx.commit().await?;
        Ok(())
    }

    /// A website's settings; none when the website was never configured.
    pub async fn website(&self, name: &str) -> Result<Option<WebsiteSettings>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        load_website(&mut conn, name).await
    }

    /// Creates or replaces a website's settings.
    pub async fn put_website(
        &self,
        name: &str,
        website: &WebsiteSettings,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO websites (name, allow_cancellation_request) VALUES (?, ?)
             ON CONFLICT (name) DO UPDATE SET
                allow_cancellation_request = excluded.allow_cancellation_request",
        )
        .bind(name)
        .bind(website.allow_cancellation_request)
        .execute(&mut *tx)
        .await?;
        self.invalidate_config();
        tx.commit().await?;
        Ok(())
    }

    /// A connection, secrets included and opened (for the job worker; the
    /// API must only show the secrets' names). A value that does not open
    /// under the key is [`crate::store::SecretsError::Undecryptable`].
    pub async fn connection(&self, name: &str) -> Result<Option<Connection>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let row = sqlx::query(
            "SELECT name, base_url, allowed_hosts, allow_private_network, ca_certificates,
                    settings
             FROM connections WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let secrets = secrets::load(&mut conn, &self.secrets_cipher(), name).await?;
        Ok(Some(Connection {
            name: row.get("name"),
            base_url: row.get("base_url"),
            allowed_hosts: from_json("allowedHosts", row.get("allowed_hosts"))?,
            allow_private_network: row.get("allow_private_network"),
            ca_certificates: row.get("ca_certificates"),
            settings: from_json("settings", row.get("settings"))?,
            secrets,
        }))
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
        sqlx::query(
            "INSERT INTO connections (name, base_url, allowed_hosts, allow_private_network,
                 ca_certificates, settings, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)
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
        .execute(&mut *tx)
        .await?;
        if !keep_secrets {
            secrets::replace(
                &mut tx,
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
        let row = sqlx::query(&format!("{DEFINITION_SELECT} WHERE name = ?"))
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
        row.map(|row| definition_from_row(&row)).transpose()
    }

    /// Creates or replaces a job definition.
    pub async fn put_job_definition(&self, definition: &JobDefinition) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO job_definitions (name, job_type, connection, preprocessor,
                 integration_processor, post_processor, parameters, max_attempts,
                 initial_backoff_ms, max_backoff_ms, enabled, applies_to, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
        .bind(definition.retry.max_attempts)
        .bind(clamp_ms(definition.retry.initial_backoff_ms))
        .bind(clamp_ms(definition.retry.max_backoff_ms))
        .bind(definition.enabled)
        .bind(definition.applies_to.as_str())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        self.invalidate_config();
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

/// A job definition read back through the reader pool.
pub(super) fn definition_from_row(
    row: &sqlx::sqlite::SqliteRow,
) -> Result<JobDefinition, StoreError> {
    DefinitionFields {
        name: row.get("name"),
        job_type: row.get("job_type"),
        connection: row.get("connection"),
        preprocessor: row.get("preprocessor"),
        integration_processor: row.get("integration_processor"),
        post_processor: row.get("post_processor"),
        parameters: row.get("parameters"),
        max_attempts: row.get("max_attempts"),
        initial_backoff_ms: row.get("initial_backoff_ms"),
        max_backoff_ms: row.get("max_backoff_ms"),
        enabled: row.get("enabled"),
        applies_to: row.get("applies_to"),
    }
    .into_definition()
}

/// Reads the settings row and the mappings.
pub(super) async fn load_settings(conn: &mut SqliteConnection) -> Result<Settings, StoreError> {
    let row =
        sqlx::query("SELECT cancellable_statuses, cancelled_status FROM settings WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
    let status_mappings = sqlx::query(
        "SELECT erp_code, status, allow_cancellation FROM status_mappings ORDER BY position",
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|row| StatusMapping {
        erp_code: row.get("erp_code"),
        status: row.get("status"),
        allow_cancellation: row.get("allow_cancellation"),
    })
    .collect();
    Ok(Settings {
        status_mappings,
        cancellable_statuses: from_json("cancellableStatuses", row.get("cancellable_statuses"))?,
        cancelled_status: row.get("cancelled_status"),
    })
}

/// Reads a website's settings.
pub(super) async fn load_website(
    conn: &mut SqliteConnection,
    name: &str,
) -> Result<Option<WebsiteSettings>, StoreError> {
    let allow: Option<bool> =
        sqlx::query_scalar("SELECT allow_cancellation_request FROM websites WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(allow.map(|allow_cancellation_request| WebsiteSettings {
        allow_cancellation_request,
    }))
}

async fn write_mappings(
    conn: &mut SqliteConnection,
    mappings: &[StatusMapping],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM status_mappings")
        .execute(&mut *conn)
        .await?;
    for (position, mapping) in mappings.iter().enumerate() {
        sqlx::query(
            "INSERT INTO status_mappings (position, erp_code, status, allow_cancellation)
             VALUES (?, ?, ?, ?)",
        )
        .bind(position as i64)
        .bind(&mapping.erp_code)
        .bind(&mapping.status)
        .bind(mapping.allow_cancellation)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn write_cancel_settings(
    conn: &mut SqliteConnection,
    cancellable_statuses: &[String],
    cancelled_status: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE settings SET cancellable_statuses = ?, cancelled_status = ? WHERE id = 1")
        .bind(to_json(&cancellable_statuses))
        .bind(cancelled_status)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
