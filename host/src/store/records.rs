//! The plain records the store keeps besides the domain's orders and
//! settings: connections, job definitions, API keys, jobs, cancellations.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::{
    AllocationKind, AllocationState, CancellationReason, CancelledLineKind, Channel, LineState,
    RefundDestination,
};
// The job model is the domain's; the store keeps it and answers it.
pub use crate::domain::{
    AppliesTo, AttemptLogLine, Job, JobAttempt, JobDefinition, JobParameter, JobState, RetryPolicy,
};

/// What an API key may do (docs/api.md "Authentication and roles").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything.
    Admin,
    /// Customer service and integrations: orders, cancellations, jobs.
    Service,
    /// One customer's own orders.
    Customer,
}

impl Role {
    /// The role's name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Service => "service",
            Role::Customer => "customer",
        }
    }

    /// Parses a role name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "service" => Some(Role::Service),
            "customer" => Some(Role::Customer),
            _ => None,
        }
    }
}

/// A stored API key: only the SHA-256 of its token is kept, and a short
/// prefix of it so that an operator can recognise the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The key's id: what the API lists and revokes it by.
    pub id: String,
    /// Hex SHA-256 of the token.
    pub token_sha256: String,
    /// The token's first characters (`rsk_3f2a`); `None` for keys made
    /// before prefixes were kept.
    pub token_prefix: Option<String>,
    /// What the operator called it (`storefront`, `ci`).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The customer a customer key is bound to.
    pub customer_number: Option<String>,
    /// Who created it: `admin token`, `key NAME (ID)` or `command line`.
    pub created_by: String,
    /// When it was created (Unix milliseconds).
    pub created_at_ms: i64,
    /// When it last authenticated a request, to within a minute.
    pub last_used_at_ms: Option<i64>,
    /// From when on it is refused; `None`: never.
    pub expires_at_ms: Option<i64>,
}

impl ApiKey {
    /// Whether the key is expired at `now_ms`.
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_at_ms.is_some_and(|at| now_ms >= at)
    }
}

/// Who made an admin write, as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditActor {
    /// The bootstrap admin token (`RESCIND_ADMIN_TOKEN`).
    AdminToken,
    /// An API key.
    ApiKey {
        /// The key's id.
        id: String,
        /// Its name when the write was made.
        name: String,
    },
    /// `rescind` on the command line, against a stopped host's data
    /// directory.
    CommandLine,
    /// A file the operator put in the watched plugins folder
    /// (`--plugins-dir`).
    PluginsFolder,
}

impl fmt::Display for AuditActor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditActor::AdminToken => f.write_str("admin token"),
            AuditActor::ApiKey { id, name } => write!(f, "key {name:?} ({id})"),
            AuditActor::CommandLine => f.write_str("command line"),
            AuditActor::PluginsFolder => f.write_str("plugins folder"),
        }
    }
}

/// One admin write to append to the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminWrite {
    /// Who.
    pub actor: AuditActor,
    /// The HTTP method (`PUT`), or `CLI` for the command line.
    pub method: String,
    /// The request's path, without its query (or the command line).
    pub path: String,
    /// The answer's status.
    pub status: u16,
    /// What changed, in a few words; never a secret.
    pub summary: String,
    /// The request's `x-request-id`, if it came over HTTP.
    pub request_id: Option<String>,
}

/// An entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLogEntry {
    /// Position in the log, from 1; later entries have larger ids.
    pub id: i64,
    /// When (Unix milliseconds).
    pub at_ms: i64,
    /// What was recorded.
    pub write: AdminWrite,
}

/// An ERP connection: where the plugin sends the cancellation and with what.
#[derive(Clone, PartialEq, Eq)]
pub struct Connection {
    /// The connection's name, referenced by job definitions.
    pub name: String,
    /// The ERP's base URL.
    pub base_url: String,
    /// The `allowedHosts` entries the plugin may reach.
    pub allowed_hosts: Vec<String>,
    /// Whether allowed names may resolve into private networks.
    pub allow_private_network: bool,
    /// Extra certificate authorities its TLS trusts (PEM).
    pub ca_certificates: Option<String>,
    /// Plain settings, e.g. `businessCode`.
    pub settings: BTreeMap<String, String>,
    /// Secret values, e.g. API tokens. Never returned nor logged.
    pub secrets: BTreeMap<String, String>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secret values must never reach a log line.
        f.debug_struct("Connection")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("allow_private_network", &self.allow_private_network)
            .field("ca_certificates", &self.ca_certificates.is_some())
            .field("settings", &self.settings)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A refund as recorded with a cancellation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRecord {
    /// Amount in minor units.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Where it goes: stored as `original` or `bankAccount`.
    #[serde(with = "stored_name")]
    pub to: RefundDestination,
}

/// A released allocation as recorded with a cancellation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationRecord {
    /// The line it belonged to.
    pub line_number: u32,
    /// Warehouse.
    pub warehouse: String,
    /// Quantity.
    pub quantity: u32,
    /// Stock on hand or expected: stored as `existing` or `expected`.
    #[serde(with = "stored_name")]
    pub kind: AllocationKind,
}

/// A warning recorded with a cancellation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarningRecord {
    /// Machine-readable code, e.g. `not-communicated-to-erp`.
    pub code: String,
    /// Human-readable text.
    pub message: String,
}

/// Bank details for a refund.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankDetailsRecord {
    /// Account holder.
    pub account_owner: String,
    /// IBAN, electronic form.
    pub iban: String,
    /// BIC, when given.
    pub bic: Option<String>,
}

impl fmt::Debug for BankDetailsRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BankDetailsRecord")
            .field("account_owner", &"<redacted>")
            .field("iban", &"<redacted>")
            .field("bic", &self.bic)
            .finish()
    }
}

/// A value the store keeps by its name: written as the API spells it and
/// read back strictly, so that a name the code does not know is a corrupt
/// record, never a default that would reach an ERP as something else.
pub(crate) trait StoredName: Copy + 'static {
    /// What the value is, for the error: `cancellation reason`.
    const WHAT: &'static str;
    /// Every value.
    const ALL: &'static [Self];
    /// Its stored name.
    fn name(self) -> &'static str;
}

impl StoredName for CancellationReason {
    const WHAT: &'static str = "cancellation reason";
    const ALL: &'static [Self] = &CancellationReason::ALL;
    fn name(self) -> &'static str {
        self.code()
    }
}

impl StoredName for RefundDestination {
    const WHAT: &'static str = "refund destination";
    const ALL: &'static [Self] = &RefundDestination::ALL;
    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl StoredName for AllocationKind {
    const WHAT: &'static str = "allocation kind";
    const ALL: &'static [Self] = &[AllocationKind::Existing, AllocationKind::Expected];
    fn name(self) -> &'static str {
        match self {
            AllocationKind::Existing => "existing",
            AllocationKind::Expected => "expected",
        }
    }
}

impl StoredName for AllocationState {
    const WHAT: &'static str = "allocation state";
    const ALL: &'static [Self] = &[AllocationState::Allocated, AllocationState::Released];
    fn name(self) -> &'static str {
        match self {
            AllocationState::Allocated => "allocated",
            AllocationState::Released => "released",
        }
    }
}

impl StoredName for LineState {
    const WHAT: &'static str = "line state";
    const ALL: &'static [Self] = &[LineState::Active, LineState::Cancelled];
    fn name(self) -> &'static str {
        match self {
            LineState::Active => "active",
            LineState::Cancelled => "cancelled",
        }
    }
}

impl StoredName for Channel {
    const WHAT: &'static str = "order channel";
    const ALL: &'static [Self] = &Channel::ALL;
    fn name(self) -> &'static str {
        match self {
            Channel::Online => "online",
            Channel::Offline => "offline",
        }
    }
}

impl StoredName for CancelledLineKind {
    const WHAT: &'static str = "line kind";
    const ALL: &'static [Self] = &CancelledLineKind::ALL;
    fn name(self) -> &'static str {
        match self {
            CancelledLineKind::Product => "product",
            CancelledLineKind::Discount => "discount",
        }
    }
}

/// The value of `name`, or `None` when no value is called that.
pub(crate) fn from_stored_name<T: StoredName>(name: &str) -> Option<T> {
    T::ALL.iter().copied().find(|v| v.name() == name)
}

/// `#[serde(with = "stored_name")]` for a [`StoredName`] field.
mod stored_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::StoredName;

    pub fn serialize<S: Serializer, T: StoredName>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(value.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: StoredName>(d: D) -> Result<T, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        super::from_stored_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format_args!("unknown {} {name:?}", T::WHAT)))
    }
}

/// A cancelled line as the ERP sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelledLineRecord {
    /// Position number.
    pub line_number: u32,
    /// SKU.
    pub sku: String,
    /// Whole quantity.
    pub quantity: u32,
    /// What the line sells: stored as `product` or `discount`.
    #[serde(with = "stored_name")]
    pub kind: CancelledLineKind,
    /// Net amount (minor units).
    pub amount_minor: i64,
    /// Tax (minor units).
    pub tax_minor: i64,
    /// Related-item parent.
    pub parent_line: Option<u32>,
    /// ERP line reference.
    pub erp_line_ref: Option<String>,
}

/// Visitor tracking data of the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingRecord {
    /// Where the order was placed: stored as `online` or `offline`.
    #[serde(with = "stored_name")]
    pub channel: Channel,
    /// Tracking session.
    pub session: Option<String>,
    /// Customer user id.
    pub cuid: Option<String>,
    /// Offline channel name.
    pub offline_channel: Option<String>,
}

/// A committed cancellation, frozen at commit: what the API answers and what
/// the integration processor is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancellationRecord {
    /// `internalRequestId`.
    pub id: String,
    /// The order.
    pub order_number: String,
    /// Commit time (ms).
    pub created_at_ms: i64,
    /// Whole order cancelled.
    pub full: bool,
    /// Cancelled line numbers, cascades included.
    pub cancelled_lines: Vec<u32>,
    /// The order's status after the cancellation.
    pub order_status: String,
    /// Authorised payment voided.
    pub voided_minor: i64,
    /// The refund, if any.
    pub refund: Option<RefundRecord>,
    /// Released allocations.
    pub released_allocations: Vec<AllocationRecord>,
    /// Whether a pending approval was cancelled.
    pub approval_cancelled: bool,
    /// Warnings for the caller.
    pub warnings: Vec<WarningRecord>,
    /// False when the cancellation made no job: no enabled job definition
    /// existed at commit, or none applied to it.
    pub erp_configured: bool,
    /// The reason: stored as its code, e.g. `OUT_OF_STOCK`.
    #[serde(with = "stored_name")]
    pub reason: CancellationReason,
    /// Cancellation date `YYYY-MM-DD`.
    pub date: String,
    /// Invoice reference.
    pub invoice_reference: Option<String>,
    /// Refund account.
    pub bank_details: Option<BankDetailsRecord>,
    /// WebSphere `forcedCancel`.
    pub forced_cancel: bool,
    /// WebSphere `forcedCancelWithRefund`.
    pub forced_cancel_with_refund: bool,
    /// Staff acting for this user.
    pub for_user: Option<String>,
    /// The ERP's order number.
    pub erp_order_number: Option<String>,
    /// Business code.
    pub business_code: String,
    /// Customer number.
    pub customer_number: String,
    /// Website.
    pub website: String,
    /// Order date `YYYY-MM-DD`.
    pub order_date: String,
    /// Currency.
    pub currency: String,
    /// Every line number of the order.
    pub all_line_numbers: Vec<u32>,
    /// The cancelled lines in detail.
    pub lines: Vec<CancelledLineRecord>,
    /// Tracking data.
    pub tracking: Option<TrackingRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value of `T` is written under its own name and read back as
    /// itself; a name that differs in any way is an error naming it.
    fn round_trips<T: StoredName + PartialEq + fmt::Debug>() {
        let names: Vec<&str> = T::ALL.iter().map(|v| v.name()).collect();
        for (i, value) in T::ALL.iter().enumerate() {
            assert_eq!(from_stored_name::<T>(value.name()), Some(*value));
            assert!(!names[..i].contains(&value.name()), "{value:?} named twice");
            for wrong in [
                value.name().to_uppercase(),
                value.name().to_lowercase(),
                format!("{} ", value.name()),
                format!("{}s", value.name()),
            ] {
                if wrong != value.name() && !names.contains(&wrong.as_str()) {
                    assert_eq!(from_stored_name::<T>(&wrong), None, "{wrong:?}");
                }
            }
        }
        assert_eq!(from_stored_name::<T>(""), None);
    }

    #[test]
    fn stored_names_round_trip_and_nothing_else_is_read() {
        round_trips::<CancellationReason>();
        round_trips::<RefundDestination>();
        round_trips::<AllocationKind>();
        round_trips::<Channel>();
        round_trips::<CancelledLineKind>();
        round_trips::<LineState>();
        round_trips::<AllocationState>();
    }

    #[test]
    fn a_record_with_an_unknown_name_is_refused_with_the_name() {
        let record = TrackingRecord {
            channel: Channel::Offline,
            session: None,
            cuid: None,
            offline_channel: Some("store".into()),
        };
        let text = serde_json::to_string(&record).unwrap();
        assert!(text.contains(r#""channel":"offline""#), "{text}");
        assert_eq!(
            serde_json::from_str::<TrackingRecord>(&text).unwrap(),
            record
        );
        let wrong = text.replace(r#""offline""#, r#""Offline""#);
        let error = serde_json::from_str::<TrackingRecord>(&wrong).unwrap_err();
        assert!(
            error
                .to_string()
                .contains(r#"unknown order channel "Offline""#),
            "{error}"
        );
    }

    #[test]
    fn applies_to_decides_which_cancellations_make_a_job() {
        // (value, full cancellation gets a job, partial cancellation gets a job)
        let table = [
            (AppliesTo::Any, true, true),
            (AppliesTo::Full, true, false),
            (AppliesTo::Partial, false, true),
        ];
        for (value, full, partial) in table {
            assert_eq!(
                value.applies(true),
                full,
                "{value:?} on a full cancellation"
            );
            assert_eq!(value.applies(false), partial, "{value:?} on a partial one");
        }
    }

    #[test]
    fn applies_to_names_round_trip_and_nothing_else_parses() {
        for value in AppliesTo::ALL {
            assert_eq!(AppliesTo::parse(value.as_str()), Some(value));
        }
        for wrong in ["", "Any", "FULL", "all", "partial ", "whole"] {
            assert_eq!(AppliesTo::parse(wrong), None, "{wrong:?}");
        }
        assert_eq!(AppliesTo::default(), AppliesTo::Any);
    }
}
