//! A fake of the Accounting-as-a-Service Cancel Order API:
//! `POST {base}/businesses/{businessCode}/customers/{customerNumber}/orders/{orderReference}/cancellations`.
//!
//! It knows the orders created with [`AaasFake::add_order`] (their positions,
//! which are cancelled), checks credentials, content type and every field of
//! the body (unknown fields and `null`s are refused, reasons and dates
//! checked, IBAN and BIC validated), cancels the positions, and answers
//! `201 {"internalRequestId": "<uuid>"}`. Validation failures answer 400
//! (404 for an unknown order, 409 for a position already cancelled) with a
//! descriptive `message`. An `Idempotency-Key` seen before replays the first
//! answer for the same body and is refused (422) for another.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{
    basic_credentials, decode_segment, json_error, lock, media_type, path_of, random_uuid,
};
use rescind_host::plugins::ConnectionContext;

use crate::erp_server::{ErpServer, RecordedRequest, Scripted};

/// Where the fake's API lives below its root, so that connections prove
/// that a base URL with a path works.
pub const BASE_PATH: &str = "/api/v1";

/// The four reasons AaaS knows.
pub const REASONS: [&str; 4] = [
    "OUT_OF_STOCK",
    "CUSTOMER_CANCELLATION",
    "NO_PAYMENT",
    "CUSTOMER_SERVICE",
];

/// Countries of the SEPA area: a BIC is optional for their IBANs.
const SEPA: &[&str] = &[
    "AD", "AT", "BE", "BG", "CH", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GB", "GI", "GR",
    "HR", "HU", "IE", "IS", "IT", "LI", "LT", "LU", "LV", "MC", "MT", "NL", "NO", "PL", "PT", "RO",
    "SE", "SI", "SK", "SM", "VA",
];

/// How clients must authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AaasAuth {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic …` with these credentials.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
}

impl AaasAuth {
    fn expected_header(&self) -> String {
        match self {
            AaasAuth::Bearer(token) => format!("Bearer {token}"),
            AaasAuth::Basic { username, password } => basic_credentials(username, password),
        }
    }
}

/// A cancellation AaaS accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedCancellation {
    /// The id AaaS answered with.
    pub internal_request_id: String,
    /// The business code of the path.
    pub business_code: String,
    /// The customer number of the path.
    pub customer_number: String,
    /// The order reference of the path.
    pub order_reference: String,
    /// The request body.
    pub body: Value,
    /// The request's `Idempotency-Key`, if it had one.
    pub idempotency_key: Option<String>,
}

/// The key AaaS files an order under: business, customer, order reference.
type OrderKey = (String, String, String);

#[derive(Debug, Default)]
struct Ledger {
    /// Positions of each order, and whether each is cancelled.
    orders: BTreeMap<OrderKey, BTreeMap<u32, bool>>,
    accepted: Vec<AcceptedCancellation>,
    /// Idempotency key → the body it came with and the id answered.
    idempotency: BTreeMap<String, (Value, String)>,
}

/// The running fake; stops when dropped.
pub struct AaasFake {
    server: ErpServer,
    ledger: Arc<Mutex<Ledger>>,
    delay_ms: Arc<AtomicU64>,
    created: tokio::sync::watch::Receiver<u64>,
}

impl AaasFake {
    /// Starts the fake on 127.0.0.1, accepting only `auth`.
    pub async fn start(auth: AaasAuth) -> Self {
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (created_tx, created) = tokio::sync::watch::channel(0);
        let (api_ledger, api_delay) = (Arc::clone(&ledger), Arc::clone(&delay_ms));
        let server = ErpServer::start_with(move |request| {
            let answer = answer(request, &auth, &api_ledger);
            if answer.status == 201 {
                created_tx.send_modify(|n| *n += 1);
            }
            answer.after(Duration::from_millis(api_delay.load(Ordering::Relaxed)))
        })
        .await;
        Self {
            server,
            ledger,
            delay_ms,
            created,
        }
    }

    /// Answers every request that passes the checks this much later, as a
    /// busy AaaS would (scripted answers keep their own delay).
    pub fn set_answer_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(ms, Ordering::Relaxed);
    }

    /// Counts the `201 Created` answers decided so far (replays included);
    /// each is sent after the answer delay.
    pub fn created_answers(&self) -> tokio::sync::watch::Receiver<u64> {
        self.created.clone()
    }

    /// Makes an order known, as a Create Order request would have, with
    /// these positions, none cancelled.
    pub fn add_order(
        &self,
        business_code: &str,
        customer_number: &str,
        reference: &str,
        positions: &[u32],
    ) {
        lock(&self.ledger).orders.insert(
            (
                business_code.into(),
                customer_number.into(),
                reference.into(),
            ),
            positions
                .iter()
                .map(|position| (*position, false))
                .collect(),
        );
    }

    /// The cancelled positions of an order, in order.
    pub fn cancelled_positions(
        &self,
        business_code: &str,
        customer_number: &str,
        reference: &str,
    ) -> Vec<u32> {
        lock(&self.ledger)
            .orders
            .get(&(
                business_code.into(),
                customer_number.into(),
                reference.into(),
            ))
            .map(|positions| {
                positions
                    .iter()
                    .filter(|(_, cancelled)| **cancelled)
                    .map(|(position, _)| *position)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every cancellation accepted so far (replays not repeated).
    pub fn accepted(&self) -> Vec<AcceptedCancellation> {
        lock(&self.ledger).accepted.clone()
    }

    /// Queues answers that go before the checks (to inject failures).
    pub fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.server.script(answers);
    }

    /// Every request received, valid or not.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    /// The `Idempotency-Key`s of requests that arrived while another with
    /// the same key was still being answered: one job delivered twice at
    /// the same moment.
    pub fn overlapping(&self) -> Vec<String> {
        self.server.overlapping()
    }

    /// The API's base URL: `http://127.0.0.1:<port>/api/v1`.
    pub fn base_url(&self) -> String {
        self.server.url(BASE_PATH)
    }

    /// `127.0.0.1:<port>`, for the connection's allowedHosts.
    pub fn authority(&self) -> String {
        self.server.authority()
    }

    /// A connection to this fake (base URL and allowed host), without
    /// settings or secrets yet.
    pub fn connection(&self) -> ConnectionContext {
        ConnectionContext {
            base_url: self.base_url(),
            allowed_hosts: vec![self.authority()],
            ..ConnectionContext::default()
        }
    }
}

fn answer(request: &RecordedRequest, auth: &AaasAuth, ledger: &Mutex<Ledger>) -> Scripted {
    match check(request, auth, ledger) {
        Ok(answer) | Err(answer) => answer,
    }
}

/// The API: `Ok` is a success, `Err` an error answer.
fn check(
    request: &RecordedRequest,
    auth: &AaasAuth,
    ledger: &Mutex<Ledger>,
) -> Result<Scripted, Scripted> {
    let (business_code, customer_number, order_reference) = route(path_of(request))
        .ok_or_else(|| json_error(404, &format!("no resource at {}", path_of(request))))?;
    if request.method != http::Method::POST {
        return Err(json_error(
            405,
            &format!("method {} is not allowed here; use POST", request.method),
        ));
    }
    match request.header("authorization") {
        None => {
            return Err(json_error(
                401,
                "full authentication is required to access this resource",
            ));
        }
        Some(given) if given != auth.expected_header() => {
            return Err(json_error(401, "the credentials are not valid"));
        }
        Some(_) => {}
    }
    if media_type(request).as_deref() != Some("application/json") {
        return Err(json_error(
            415,
            &format!(
                "content type {} is not supported; send application/json",
                request.header("content-type").unwrap_or("(none)")
            ),
        ));
    }
    let body: Value = serde_json::from_slice(&request.body)
        .map_err(|error| json_error(400, &format!("the body is not valid JSON: {error}")))?;
    let items = validate(&body).map_err(|message| json_error(400, &message))?;

    let key = (business_code, customer_number, order_reference);
    let idempotency_key = request.header("idempotency-key").map(str::to_owned);
    let mut ledger = lock(ledger);
    if let Some(idempotency_key) = &idempotency_key
        && let Some((first_body, id)) = ledger.idempotency.get(idempotency_key)
    {
        return if *first_body == body {
            Ok(created(id))
        } else {
            Err(json_error(
                422,
                &format!(
                    "Idempotency-Key {idempotency_key} was already used for a different request"
                ),
            ))
        };
    }
    let positions = ledger.orders.get_mut(&key).ok_or_else(|| {
        json_error(
            404,
            &format!(
                "order {} of customer {} in business {} not found: it must have been created and processed first",
                key.2, key.1, key.0
            ),
        )
    })?;
    for item in &items {
        if !positions.contains_key(item) {
            return Err(json_error(
                400,
                &format!(
                    "orderItemReference {item} does not exist in order {}",
                    key.2
                ),
            ));
        }
    }
    // Listing every position is a full cancellation: positions cancelled
    // before may be among them. A partial one may only name open positions.
    let full = positions.keys().all(|position| items.contains(position));
    if full && positions.values().all(|cancelled| *cancelled) {
        return Err(json_error(
            409,
            &format!("order {} is already cancelled", key.2),
        ));
    }
    if !full && let Some(item) = items.iter().find(|item| positions[*item]) {
        return Err(json_error(
            409,
            &format!(
                "orderItemReference {item} of order {} is already cancelled",
                key.2
            ),
        ));
    }
    for item in &items {
        positions.insert(*item, true);
    }
    let id = random_uuid();
    if let Some(idempotency_key) = &idempotency_key {
        ledger
            .idempotency
            .insert(idempotency_key.clone(), (body.clone(), id.clone()));
    }
    ledger.accepted.push(AcceptedCancellation {
        internal_request_id: id.clone(),
        business_code: key.0,
        customer_number: key.1,
        order_reference: key.2,
        body,
        idempotency_key,
    });
    Ok(created(&id))
}

fn created(id: &str) -> Scripted {
    Scripted::json(201, &json!({ "internalRequestId": id }).to_string())
}

/// The decoded business code, customer number and order reference of a
/// cancellations path.
fn route(path: &str) -> Option<(String, String, String)> {
    let rest = path.strip_prefix(BASE_PATH)?;
    let segments: Vec<&str> = rest.strip_prefix('/')?.split('/').collect();
    match segments.as_slice() {
        [
            "businesses",
            business,
            "customers",
            customer,
            "orders",
            order,
            "cancellations",
        ] if !business.is_empty() && !customer.is_empty() && !order.is_empty() => Some((
            decode_segment(business)?,
            decode_segment(customer)?,
            decode_segment(order)?,
        )),
        _ => None,
    }
}

/// Checks the body field by field, as the API explorer documents it; answers
/// the positions to cancel or the first problem found.
fn validate(body: &Value) -> Result<BTreeSet<u32>, String> {
    let object = body.as_object().ok_or("the body must be a JSON object")?;
    only_fields(
        object,
        &[
            "items",
            "cancellationDate",
            "cancellationReason",
            "invoiceReference",
            "bankDetails",
        ],
        "",
    )?;

    let items = object
        .get("items")
        .ok_or("items is required")?
        .as_array()
        .ok_or("items must be an array")?;
    if items.is_empty() {
        return Err("items must name at least one orderItemReference".into());
    }
    let mut positions = BTreeSet::new();
    for (index, item) in items.iter().enumerate() {
        let item = item
            .as_object()
            .ok_or_else(|| format!("items[{index}] must be an object"))?;
        only_fields(item, &["orderItemReference"], &format!("items[{index}]."))?;
        let position = item
            .get("orderItemReference")
            .ok_or_else(|| format!("items[{index}].orderItemReference is required"))?
            .as_u64()
            .filter(|position| *position >= 1)
            .and_then(|position| u32::try_from(position).ok())
            .ok_or_else(|| {
                format!("items[{index}].orderItemReference must be a positive integer")
            })?;
        if !positions.insert(position) {
            return Err(format!("orderItemReference {position} is listed twice"));
        }
    }

    let date = required_string(object, "cancellationDate", "")?;
    if !is_date(date) {
        return Err(format!(
            "cancellationDate `{date}` is not a date of the form YYYY-MM-DD"
        ));
    }
    let reason = required_string(object, "cancellationReason", "")?;
    if !REASONS.contains(&reason) {
        return Err(format!(
            "cancellationReason `{reason}` is not one of {}",
            REASONS.join(", ")
        ));
    }
    if object.contains_key("invoiceReference") {
        required_string(object, "invoiceReference", "")?;
    }
    if let Some(bank) = object.get("bankDetails") {
        let bank = bank.as_object().ok_or("bankDetails must be an object")?;
        only_fields(bank, &["accountOwner", "iban", "bic"], "bankDetails.")?;
        required_string(bank, "accountOwner", "bankDetails.")?;
        let iban = required_string(bank, "iban", "bankDetails.")?;
        if !is_iban(iban) {
            return Err(format!("bankDetails.iban `{iban}` is not a valid IBAN"));
        }
        let bic = if bank.contains_key("bic") {
            Some(required_string(bank, "bic", "bankDetails.")?)
        } else {
            None
        };
        match bic {
            Some(bic) if !is_bic(bic) => {
                return Err(format!("bankDetails.bic `{bic}` is not a valid BIC"));
            }
            None if !SEPA.contains(&&iban[..2]) => {
                return Err(format!(
                    "bankDetails.bic is required for an account outside the SEPA area ({})",
                    &iban[..2]
                ));
            }
            _ => {}
        }
    }
    Ok(positions)
}

fn only_fields(object: &Map<String, Value>, allowed: &[&str], prefix: &str) -> Result<(), String> {
    match object.keys().find(|key| !allowed.contains(&key.as_str())) {
        Some(unknown) => Err(format!("unknown field {prefix}{unknown}")),
        None => Ok(()),
    }
}

/// A present, non-empty string; `null` is refused like any other type.
fn required_string<'a>(
    object: &'a Map<String, Value>,
    field: &str,
    prefix: &str,
) -> Result<&'a str, String> {
    match object.get(field) {
        None => Err(format!("{prefix}{field} is required")),
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(text),
        Some(Value::String(_)) => Err(format!("{prefix}{field} must not be empty")),
        Some(other) => Err(format!("{prefix}{field} must be a string, not {other}")),
    }
}

fn is_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let [year, month, day] = parts.as_slice() else {
        return false;
    };
    if year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return false;
    }
    let (Ok(year), Ok(month), Ok(day)) = (
        year.parse::<u32>(),
        month.parse::<u32>(),
        day.parse::<u32>(),
    ) else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// ISO 13616: country letters, check digits, length by country (for the
/// countries the tests use), and mod 97 = 1.
fn is_iban(iban: &str) -> bool {
    let bytes = iban.as_bytes();
    if !(15..=34).contains(&bytes.len())
        || !bytes[..2].iter().all(u8::is_ascii_uppercase)
        || !bytes[2..4].iter().all(u8::is_ascii_digit)
        || !bytes
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return false;
    }
    let length = match &iban[..2] {
        "DE" | "GB" => Some(22),
        "AT" => Some(20),
        "CH" => Some(21),
        "FR" | "IT" => Some(27),
        "NL" => Some(18),
        "NO" => Some(15),
        "BR" => Some(29),
        _ => None,
    };
    if length.is_some_and(|length| length != bytes.len()) {
        return false;
    }
    let rearranged = iban[4..].chars().chain(iban[..4].chars());
    let remainder = rearranged.fold(0u32, |remainder, c| {
        let value = c.to_digit(36).expect("checked alphanumeric");
        if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        }
    });
    remainder == 1
}

/// ISO 9362: 4 letters (bank), 2 letters (country), 2 alphanumerics
/// (location), optionally 3 alphanumerics (branch).
fn is_bic(bic: &str) -> bool {
    let bytes = bic.as_bytes();
    (bytes.len() == 8 || bytes.len() == 11)
        && bytes[..6].iter().all(u8::is_ascii_uppercase)
        && bytes[6..]
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibans_bics_and_dates() {
        for iban in [
            "DE89370400440532013000",
            "CH9300762011623852957",
            "BR1800360305000010009795493C1",
        ] {
            assert!(is_iban(iban), "{iban}");
        }
        for iban in [
            "DE89370400440532013001",
            "DE8937040044053201300",
            "de89370400440532013000",
            "XX",
        ] {
            assert!(!is_iban(iban), "{iban}");
        }
        assert!(is_bic("COBADEFFXXX") && is_bic("GENODEM1"));
        assert!(!is_bic("COBADEFF1") && !is_bic("cobadeff"));
        assert!(is_date("2024-02-29") && !is_date("2023-02-29") && !is_date("2024-9-9"));
    }

    #[test]
    fn the_body_is_checked_field_by_field() {
        let ok = json!({"items": [{"orderItemReference": 3}], "cancellationDate": "2024-09-09",
                        "cancellationReason": "NO_PAYMENT"});
        assert_eq!(validate(&ok), Ok(BTreeSet::from([3])));
        for (body, expected) in [
            (
                json!({"items": [], "cancellationDate": "2024-09-09", "cancellationReason": "NO_PAYMENT"}),
                "items must name at least one orderItemReference",
            ),
            (
                json!({"items": [{"orderItemReference": 1}, {"orderItemReference": 1}],
                    "cancellationDate": "2024-09-09", "cancellationReason": "NO_PAYMENT"}),
                "orderItemReference 1 is listed twice",
            ),
            (
                json!({"items": [{"orderItemReference": 1}], "cancellationDate": "2024-09-09",
                    "cancellationReason": "LOST"}),
                "cancellationReason `LOST` is not one of OUT_OF_STOCK, CUSTOMER_CANCELLATION, NO_PAYMENT, CUSTOMER_SERVICE",
            ),
            (
                json!({"items": [{"orderItemReference": 1}], "cancellationDate": "2024-09-09",
                    "cancellationReason": "NO_PAYMENT", "invoiceReference": null}),
                "invoiceReference must be a string, not null",
            ),
            (
                json!({"items": [{"orderItemReference": 1}], "cancellationDate": "09.09.2024",
                    "cancellationReason": "NO_PAYMENT"}),
                "cancellationDate `09.09.2024` is not a date of the form YYYY-MM-DD",
            ),
            (
                json!({"items": [{"orderItemReference": 1}], "cancellationDate": "2024-09-09",
                    "cancellationReason": "NO_PAYMENT", "orderNumber": "1001"}),
                "unknown field orderNumber",
            ),
            (
                json!({"items": [{"orderItemReference": 1}], "cancellationDate": "2024-09-09",
                    "cancellationReason": "NO_PAYMENT",
                    "bankDetails": {"accountOwner": "A", "iban": "BR1800360305000010009795493C1"}}),
                "bankDetails.bic is required for an account outside the SEPA area (BR)",
            ),
        ] {
            assert_eq!(validate(&body), Err(expected.to_owned()), "{body}");
        }
    }
}
