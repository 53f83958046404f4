//! The JSON shapes of `/v1/admin`: API keys, the audit log, status
//! mappings, settings, presets, websites, connections and job definitions.
//! What makes a connection or a job definition valid is
//! [`crate::config_rules`]'s, not theirs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::timestamp;
use crate::config_rules;
use crate::domain::FieldError;
use crate::store::{
    ApiKey, AppliesTo, AuditActor, AuditLogEntry, Connection, JobDefinition, JobParameter,
    RetryPolicy,
};

/// `POST /v1/admin/api-keys` body (admin): a new API key. Every invalid field
/// is listed at once in a `422 validation-failed`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyBody {
    /// What to call the key (`storefront`, `ci`): 1 to 100 characters.
    /// Required; names need not be unique (a rotated key may keep its name).
    #[serde(default)]
    #[schema(required = true, nullable = false)]
    pub name: Option<String>,
    /// `admin` (everything), `service` (orders, cancellations for any customer,
    /// jobs) or `customer` (its own orders' cancellations only).
    pub role: String,
    /// The customer a `customer` key is bound to (1 to 100 characters, as an
    /// order's customer number): required for customer keys, refused for the
    /// others.
    #[serde(default)]
    pub customer_number: Option<String>,
    /// RFC 3339 time from which the key is refused (`401`); `null` or
    /// absent: never.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// A new API key (admin). The token is in this answer only: the host keeps its
/// SHA-256 and its first characters, never the token.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    /// The key's id (what `DELETE /v1/admin/api-keys/{id}` takes).
    pub id: String,
    /// What the key is called, as sent.
    pub name: String,
    /// The bearer token (`Authorization: Bearer …`): shown once, never again.
    pub token: String,
    /// `admin`, `service` or `customer`.
    pub role: String,
    /// Bound customer (customer keys), else `null`.
    pub customer_number: Option<String>,
    /// When the key stops working (RFC 3339, UTC), or `null` for never.
    pub expires_at: Option<String>,
}

/// A key as `GET /v1/admin/api-keys` (admin) lists it, oldest first: never its
/// token.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeySummaryView {
    /// The key's id (what `DELETE /v1/admin/api-keys/{id}` takes).
    pub id: String,
    /// What the key is called; names need not be unique.
    pub name: String,
    /// `admin`, `service` or `customer`.
    pub role: String,
    /// Bound customer (customer keys), else `null`.
    pub customer_number: Option<String>,
    /// The token's first characters, to recognise it (`rsk_3f2a…`); `null`
    /// for keys made before prefixes were kept.
    pub token_prefix: Option<String>,
    /// Who created it: `admin token`, `key "NAME" (ID)` or `command line`.
    pub created_by: String,
    /// When the key was made (RFC 3339, UTC).
    pub created_at: String,
    /// When it last authenticated a request (RFC 3339, UTC), written at most
    /// once a minute per key, so accurate to within a minute; `null` if never.
    pub last_used_at: Option<String>,
    /// When the key stops working (RFC 3339, UTC), or `null` for never.
    pub expires_at: Option<String>,
}

impl From<&ApiKey> for ApiKeySummaryView {
    fn from(key: &ApiKey) -> Self {
        ApiKeySummaryView {
            id: key.id.clone(),
            name: key.name.clone(),
            role: key.role.as_str().to_owned(),
            customer_number: key.customer_number.clone(),
            token_prefix: key.token_prefix.as_deref().map(crate::keys::shown_prefix),
            created_by: key.created_by.clone(),
            created_at: timestamp(key.created_at_ms),
            last_used_at: key.last_used_at_ms.map(timestamp),
            expires_at: key.expires_at_ms.map(timestamp),
        }
    }
}

/// One admin write of the audit log (`GET /v1/admin/audit`, admin):
/// configuration, keys, plugin uploads and activations, job runs and retries.
/// Refused requests and reads are not recorded.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntryView {
    /// The entry's position in the log; pass the last one of a page as
    /// `before` for the next page.
    pub id: i64,
    /// When the write was made (RFC 3339, UTC).
    pub at: String,
    /// Who made it: `admin-token` (the host's `RESCIND_ADMIN_TOKEN`), `api-key`
    /// (see `keyId` and `keyName`), `command-line`, or `plugins-folder` (a
    /// file put in the host's watched plugins folder).
    pub actor: String,
    /// The API key's id when `actor` is `api-key`, else `null`.
    pub key_id: Option<String>,
    /// The API key's name at the time when `actor` is `api-key`, else `null`.
    pub key_name: Option<String>,
    /// The HTTP method (`CLI` for the command line).
    pub method: String,
    /// The request's path (no query), or the command.
    pub path: String,
    /// The answer's status (`0` for the command line).
    pub status: u16,
    /// What changed, in a few words (at most 1,000 characters); names of
    /// secrets, never their values.
    pub summary: String,
    /// The request's `x-request-id`, to find it in the logs.
    pub request_id: Option<String>,
}

impl From<&AuditLogEntry> for AuditEntryView {
    fn from(entry: &AuditLogEntry) -> Self {
        let write = &entry.write;
        let (actor, key_id, key_name) = match &write.actor {
            AuditActor::AdminToken => ("admin-token", None, None),
            AuditActor::ApiKey { id, name } => ("api-key", Some(id.clone()), Some(name.clone())),
            AuditActor::CommandLine => ("command-line", None, None),
            AuditActor::PluginsFolder => ("plugins-folder", None, None),
        };
        AuditEntryView {
            id: entry.id,
            at: timestamp(entry.at_ms),
            actor: actor.to_owned(),
            key_id,
            key_name,
            method: write.method.clone(),
            path: write.path.clone(),
            status: write.status,
            summary: write.summary.clone(),
            request_id: write.request_id.clone(),
        }
    }
}

/// One entry of the order status mapping (`GET | PUT
/// /v1/admin/status-mappings`, admin; `PUT` replaces the whole list). An order
/// whose status code has no mapping cannot be cancelled.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = StatusMappingDto)]
pub struct StatusMappingBody {
    /// The status code orders carry in `status`, as the ERP reports it; not
    /// blank, unique in the list.
    pub erp_code: String,
    /// The display status the code maps to (not blank); the settings'
    /// `cancellableOrderStatuses` lists display statuses.
    pub status: String,
    /// Whether orders with this code may be cancelled; it takes this and a
    /// display status in `cancellableOrderStatuses`.
    pub allow_cancellation: bool,
}

/// The cancel settings (`GET | PUT /v1/admin/settings`, admin). A fresh host
/// has `["Submitted"]` and `Cancelled`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = SettingsDto)]
pub struct SettingsBody {
    /// Display statuses in which an order may be cancelled, when its status
    /// mapping also allows cancellation; none blank or repeated.
    pub cancellable_order_statuses: Vec<String>,
    /// The status code a cancellation that leaves no active line gives the
    /// order (`X` for WebSphere); not blank, and not itself cancellable by the
    /// mappings and statuses.
    pub cancelled_status: String,
}

/// What `POST /v1/admin/presets/{preset}` (admin) applied: the preset replaces
/// the status mappings and the settings.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresetView {
    /// The preset applied: `insite` or `websphere`.
    pub preset: String,
    /// The status mappings now in force.
    pub status_mappings: Vec<StatusMappingBody>,
    /// The settings now in force.
    pub settings: SettingsBody,
}

/// One website's settings (`GET | PUT /v1/admin/websites/{website}`, admin). A
/// website never configured refuses customers' cancellations, and its `GET` is
/// `404 website-not-found`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = WebsiteDto)]
pub struct WebsiteBody {
    /// Whether customers may cancel their own orders placed on this website;
    /// when false, their requests are `403 cancellation-not-allowed`. Staff may
    /// always cancel.
    pub allow_cancellation_request: bool,
}

/// `PUT /v1/admin/connections/{name}` body (admin): an ERP connection, what a
/// plugin reaches and with which settings and secrets. An entry the plugin
/// runtime would refuse is `422 validation-failed` naming it.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionBody {
    /// ERP base URL (`http://` or `https://`), without credentials: those
    /// go in `secrets`.
    pub base_url: String,
    /// What the plugin may reach: `host`, `host:port` or
    /// `scheme://host[:port]` (`*.` may start a host). Without a scheme an
    /// entry means https, except a loopback IP literal (`127.0.0.1:9000`),
    /// which also allows plain http. Refused: `*`, port 0, user info, a
    /// path, cloud metadata endpoints (169.254.169.254,
    /// `metadata.google.internal`, …), unspecified, multicast and broadcast
    /// addresses.
    pub allowed_hosts: Vec<String>,
    /// Whether the allowed host names may resolve to loopback, private,
    /// link-local or carrier-grade NAT addresses (an ERP behind the company
    /// firewall). Without it, such an address is reached only when listed in
    /// `allowedHosts` as an IP. Cloud metadata addresses stay unreachable.
    #[serde(default)]
    pub allow_private_network: bool,
    /// Certificate authorities (PEM, one or more) the plugin's TLS trusts
    /// for this connection besides the public web roots, for an ERP whose
    /// certificate comes from a private CA.
    #[serde(default)]
    pub ca_certificates: Option<String>,
    /// Plain string settings the plugin reads by key (keys not blank), e.g.
    /// `businessCode`; `timeoutMs` bounds each request's waits for plugins
    /// built with the SDK. Shown by `GET`.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Secret string values the plugin reads by key (keys not blank):
    /// write-only, never returned or logged, redacted from plugin logs and
    /// messages. Absent keeps the stored ones; `{}` removes them.
    #[serde(default)]
    pub secrets: Option<BTreeMap<String, String>>,
}

impl std::fmt::Debug for ConnectionBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionBody")
            .field("base_url", &self.base_url)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("allow_private_network", &self.allow_private_network)
            .field("ca_certificates", &self.ca_certificates.is_some())
            .field("settings", &self.settings)
            .field(
                "secrets",
                &self.secrets.as_ref().map(|s| s.keys().collect::<Vec<_>>()),
            )
            .finish()
    }
}

impl ConnectionBody {
    /// The connection to store under `name` (secrets as sent, or none).
    pub fn into_connection(self, name: &str) -> Connection {
        Connection {
            name: name.to_owned(),
            base_url: self.base_url,
            allowed_hosts: self.allowed_hosts,
            allow_private_network: self.allow_private_network,
            ca_certificates: self.ca_certificates,
            settings: self.settings,
            secrets: self.secrets.unwrap_or_default(),
        }
    }
}

/// A connection as `GET | PUT /v1/admin/connections/{name}` (admin) shows it:
/// its secrets by name only.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionView {
    /// The connection's name (the path's), which job definitions name in
    /// `connection`.
    pub name: String,
    /// The ERP's base URL, without credentials; plugins build their URLs from
    /// it.
    pub base_url: String,
    /// What the plugin may reach: `host`, `host:port` or `scheme://host[:port]`
    /// entries, `*.` allowed at the start of a host.
    pub allowed_hosts: Vec<String>,
    /// Whether allowed host names may resolve to loopback, private, link-local
    /// or carrier-grade NAT addresses.
    pub allow_private_network: bool,
    /// Extra certificate authorities (PEM) the plugin's TLS trusts for this
    /// connection, or `null`.
    pub ca_certificates: Option<String>,
    /// The plain settings, keys and values.
    pub settings: BTreeMap<String, String>,
    /// The names of the stored secrets (never their values).
    pub secrets: Vec<String>,
}

impl From<&Connection> for ConnectionView {
    fn from(c: &Connection) -> Self {
        ConnectionView {
            name: c.name.clone(),
            base_url: c.base_url.clone(),
            allowed_hosts: c.allowed_hosts.clone(),
            allow_private_network: c.allow_private_network,
            ca_certificates: c.ca_certificates.clone(),
            settings: c.settings.clone(),
            secrets: c.secrets.keys().cloned().collect(),
        }
    }
}

/// A parameter a job of the definition carries, handed to the plugin. Each job
/// of a cancellation gets `OrderNumber` set to its order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = JobParameterDto)]
pub struct JobParameterBody {
    /// The parameter's name, e.g. `OrderNumber`: not blank, unique in the
    /// definition.
    pub name: String,
    /// Its value type, default `String`.
    #[serde(default = "string_type")]
    pub value_type: String,
    /// The value used when a run does not give one, default empty.
    #[serde(default)]
    pub default_value: String,
    /// What a person running the definition by hand is asked, e.g. `Order
    /// Number`; default empty.
    #[serde(default)]
    pub prompt: String,
}

fn string_type() -> String {
    "String".to_owned()
}

/// How a job retries a transient failure (a `transient` answer, a trap, the
/// deadline, the memory cap): after attempt n it waits a random time up to
/// `min(maxBackoffMs, initialBackoffMs × 2^(n−1))` (full jitter), until
/// `maxAttempts`. Default `{"maxAttempts": 8, "initialBackoffMs": 1000,
/// "maxBackoffMs": 300000}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = RetryDto)]
pub struct RetryBody {
    /// Attempts per round, 1 to 100, the first included; when they are spent
    /// the job is `failed`, and a retry through the API gives it a new round.
    pub max_attempts: u32,
    /// The ceiling of the wait after the first failed attempt, in milliseconds;
    /// at most 86,400,000 (one day). It doubles after each further failure.
    pub initial_backoff_ms: u64,
    /// The largest ceiling of a wait, in milliseconds: at least
    /// `initialBackoffMs`, at most 86,400,000 (one day).
    pub max_backoff_ms: u64,
}

/// A job definition (`GET | PUT /v1/admin/job-definitions/{name}`, admin): it
/// tells one ERP about cancellations through one plugin. Every committed
/// cancellation makes one job per enabled definition that applies to it, in the
/// same transaction.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = JobDefinitionDto)]
pub struct JobDefinitionBody {
    /// The definition's name (recommended `OrderCancel`): in answers; when sent
    /// it must equal the path's.
    #[serde(default)]
    pub name: Option<String>,
    /// `Execution`, the only type.
    pub job_type: String,
    /// The name of an existing connection: the ERP the plugin reaches, with its
    /// settings and secrets (`422 validation-failed` when unknown).
    pub connection: String,
    /// Not supported yet: `null` or absent.
    #[serde(default)]
    pub preprocessor: Option<String>,
    /// The plugin that tells the ERP: `name` (its active version at each
    /// attempt) or `name@sha256:…` (that version, pinned). An unknown plugin is
    /// `422 validation-failed`.
    pub integration_processor: String,
    /// Not supported yet: `null` or absent.
    #[serde(default)]
    pub post_processor: Option<String>,
    /// The parameters its jobs carry, names unique; default none.
    #[serde(default)]
    pub parameters: Vec<JobParameterBody>,
    /// How its jobs retry transient failures; absent: 8 attempts, backoff from
    /// 1,000 ms up to 300,000 ms. Answers always show the policy in force.
    #[serde(default)]
    pub retry: Option<RetryBody>,
    /// Default true. A disabled definition makes no jobs; with none enabled a
    /// cancellation warns `not-communicated-to-erp`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Which cancellations make a job of this definition (checked by
    /// [`JobDefinitionBody::into_definition`], so that an unknown value is a
    /// `validation-failed` naming the field).
    #[serde(default)]
    #[schema(schema_with = applies_to_schema)]
    pub applies_to: Option<String>,
}

fn yes() -> bool {
    true
}

/// `appliesTo`: a string with the values of [`AppliesTo`].
fn applies_to_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(AppliesTo::ALL.map(AppliesTo::as_str)))
        .default(Some(serde_json::json!(AppliesTo::default().as_str())))
        .description(Some(
            "Which cancellations make a job of this definition: `any` (default) every one; \
             `full` only a cancellation that leaves no active line (the whole order, or the \
             partial cancellation of its last active lines); `partial` only one that leaves \
             some line active. Bind an integration processor whose ERP cancels whole orders \
             only (websphere, personalization) with `full`. A cancellation the definition does \
             not apply to makes no job of it; a manual run whose order's newest cancellation it \
             does not apply to is refused. Any other value is `validation-failed`.",
        ))
        .build()
}

impl JobDefinitionBody {
    /// Maps the body to the definition to store under `name`, checked by
    /// [`config_rules::check_job_definition`]. Whether the connection and
    /// the plugin exist is the handler's to check.
    pub fn into_definition(self, name: &str) -> Result<JobDefinition, Vec<FieldError>> {
        let mut errors = Vec::new();
        if let Some(n) = &self.name
            && n != name
        {
            errors.push(FieldError::new("name", "does not match the path"));
        }
        let applies_to = match self.applies_to.as_deref() {
            None => AppliesTo::default(),
            Some(raw) => AppliesTo::parse(raw).unwrap_or_else(|| {
                errors.push(FieldError::new(
                    "appliesTo",
                    format!("{raw:?} is not one of \"any\", \"full\", \"partial\""),
                ));
                AppliesTo::default()
            }),
        };
        let definition = JobDefinition {
            name: name.to_owned(),
            job_type: self.job_type,
            connection: self.connection,
            preprocessor: self.preprocessor,
            integration_processor: self.integration_processor,
            post_processor: self.post_processor,
            parameters: self
                .parameters
                .into_iter()
                .map(|p| JobParameter {
                    name: p.name,
                    value_type: p.value_type,
                    default_value: p.default_value,
                    prompt: p.prompt,
                })
                .collect(),
            retry: self
                .retry
                .map_or_else(RetryPolicy::default, |r| RetryPolicy {
                    max_attempts: r.max_attempts,
                    initial_backoff_ms: r.initial_backoff_ms,
                    max_backoff_ms: r.max_backoff_ms,
                }),
            enabled: self.enabled,
            applies_to,
        };
        if let Err(found) = config_rules::check_job_definition(&definition) {
            errors.extend(found);
        }
        if errors.is_empty() {
            Ok(definition)
        } else {
            Err(errors)
        }
    }
}

impl From<&JobDefinition> for JobDefinitionBody {
    fn from(d: &JobDefinition) -> Self {
        JobDefinitionBody {
            name: Some(d.name.clone()),
            job_type: d.job_type.clone(),
            connection: d.connection.clone(),
            preprocessor: d.preprocessor.clone(),
            integration_processor: d.integration_processor.clone(),
            post_processor: d.post_processor.clone(),
            parameters: d
                .parameters
                .iter()
                .map(|p| JobParameterBody {
                    name: p.name.clone(),
                    value_type: p.value_type.clone(),
                    default_value: p.default_value.clone(),
                    prompt: p.prompt.clone(),
                })
                .collect(),
            retry: Some(RetryBody {
                max_attempts: d.retry.max_attempts,
                initial_backoff_ms: d.retry.initial_backoff_ms,
                max_backoff_ms: d.retry.max_backoff_ms,
            }),
            enabled: d.enabled,
            applies_to: Some(d.applies_to.as_str().to_owned()),
        }
    }
}
