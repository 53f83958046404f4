#![doc = include_str!("../README.md")]

use rescind_guest::http::{Request, encode_path_segment};
use rescind_guest::{
    Ack, Cancellation, IntegrationProcessor, RefundDestination, SubmitError, config, log,
};
use serde::{Deserialize, Serialize};

/// The optional setting naming the business at Accounting as a Service; when
/// set it wins over the order's own business code.
pub const BUSINESS_CODE_SETTING: &str = "businessCode";

/// The setting choosing how to authenticate: `bearer` (the default) or
/// `basic`.
pub const AUTH_SETTING: &str = "auth";

/// The secret holding the bearer token (`auth` = `bearer`).
pub const API_TOKEN_SECRET: &str = "apiToken";

/// The secret holding the user name (`auth` = `basic`).
pub const USERNAME_SECRET: &str = "username";

/// The secret holding the password (`auth` = `basic`).
pub const PASSWORD_SECRET: &str = "password";

/// The Accounting-as-a-Service integration processor.
pub struct Aaas;

impl IntegrationProcessor for Aaas {
    fn submit_cancellation(cancellation: &Cancellation) -> Result<Ack, SubmitError> {
        // Configuration first: a connection that cannot work should say so
        // before anything is sent.
        let credentials = Credentials::from_connection()?;
        let business_code = business_code(cancellation)?;
        let body = CancelOrder::from_cancellation(cancellation)?;
        let order_reference = order_reference(cancellation);
        let url = config::url(&cancellations_path(
            &business_code,
            &cancellation.customer_number,
            order_reference,
        ));
        let items = body
            .items
            .iter()
            .map(|item| item.order_item_reference.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        log::info!(
            "cancelling {} of order {order_reference} (items {items}, {}) at {url}, attempt {}",
            if cancellation.full { "all" } else { "part" },
            cancellation.reason,
            cancellation.attempt
        );

        let request = Request::post(&url)
            .header("Accept", "application/json")
            // Stable across attempts: AaaS sees a retried job once.
            .header("Idempotency-Key", &cancellation.request_id);
        let answer = credentials
            .authorize(request)
            .json(&body)?
            .send()?
            .error_for_status()?;

        let accepted: Accepted = answer.json()?;
        let reference = accepted.internal_request_id.trim();
        if reference.is_empty() {
            return Err(SubmitError::rejected(format!(
                "AaaS answered {} without an internalRequestId",
                answer.status
            )));
        }
        log::info!("AaaS accepted it: internalRequestId {reference}");
        Ok(Ack::with_reference(reference).with_message(format!(
            "AaaS accepted the cancellation of order {order_reference} (items {items})"
        )))
    }
}

rescind_guest::register_integration_processor!(Aaas);

/// `/businesses/{businessCode}/customers/{customerNumber}/orders/{orderReference}/cancellations`,
/// each value percent-encoded as one path segment, so that a `/` or `?` in an
/// order number cannot change the path.
pub fn cancellations_path(
    business_code: &str,
    customer_number: &str,
    order_reference: &str,
) -> String {
    format!(
        "/businesses/{}/customers/{}/orders/{}/cancellations",
        encode_path_segment(business_code),
        encode_path_segment(customer_number),
        encode_path_segment(order_reference)
    )
}

/// The order as AaaS knows it: the ERP's order number when the order has
/// one (the number the Create Order request used), else rescind's.
pub fn order_reference(cancellation: &Cancellation) -> &str {
    cancellation
        .erp_order_number
        .as_deref()
        .map(str::trim)
        .filter(|number| !number.is_empty())
        .unwrap_or(&cancellation.order_number)
}

/// The connection's `businessCode` setting, else the order's business code.
fn business_code(cancellation: &Cancellation) -> Result<String, SubmitError> {
    if let Some(code) = config::setting(BUSINESS_CODE_SETTING)
        && !code.trim().is_empty()
    {
        return Ok(code.trim().to_owned());
    }
    if !cancellation.business_code.trim().is_empty() {
        return Ok(cancellation.business_code.trim().to_owned());
    }
    Err(SubmitError::misconfigured(format!(
        "order {} has no business code and the connection has no setting `{BUSINESS_CODE_SETTING}`: \
         add it to the connection's \"settings\"",
        cancellation.order_number
    )))
}

/// How the plugin proves who it is to AaaS.
enum Credentials {
    Bearer(String),
    Basic { username: String, password: String },
}

impl Credentials {
    fn from_connection() -> Result<Self, SubmitError> {
        match config::setting_one_of(AUTH_SETTING, &["bearer", "basic"], "bearer")?.as_str() {
            "basic" => Ok(Credentials::Basic {
                username: config::required_secret(USERNAME_SECRET)?,
                password: config::required_secret(PASSWORD_SECRET)?,
            }),
            _ => Ok(Credentials::Bearer(config::required_secret(
                API_TOKEN_SECRET,
            )?)),
        }
    }

    fn authorize(&self, request: Request) -> Request {
        match self {
            Credentials::Bearer(token) => request.bearer_auth(token),
            Credentials::Basic { username, password } => request.basic_auth(username, password),
        }
    }
}

/// The Cancel Order request body. Optional fields are left out rather than
/// sent as `null`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CancelOrder<'a> {
    items: Vec<Item>,
    cancellation_date: &'a str,
    cancellation_reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    invoice_reference: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bank_details: Option<BankDetails<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    order_item_reference: u32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BankDetails<'a> {
    account_owner: &'a str,
    iban: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    bic: Option<&'a str>,
}

impl<'a> CancelOrder<'a> {
    fn from_cancellation(c: &'a Cancellation) -> Result<Self, SubmitError> {
        // AaaS: "for full cancellations, you have to provide all line items
        // ... that have been provided in the create order request
        // originally"; a partial one names just the cancelled positions.
        let lines = if c.full && !c.all_line_numbers.is_empty() {
            c.all_line_numbers.clone()
        } else {
            c.cancelled_line_numbers()
        };
        if lines.is_empty() {
            return Err(SubmitError::rejected(format!(
                "the cancellation of order {} names no line, and AaaS needs at least one orderItemReference",
                c.order_number
            )));
        }
        Ok(CancelOrder {
            items: lines
                .into_iter()
                .map(|order_item_reference| Item {
                    order_item_reference,
                })
                .collect(),
            cancellation_date: &c.date,
            cancellation_reason: c.reason.code(),
            invoice_reference: c
                .invoice_reference
                .as_deref()
                .filter(|reference| !reference.trim().is_empty()),
            bank_details: alternative_account(c)?,
        })
    }
}

/// The bank details, only when the refund goes to an alternative account;
/// otherwise AaaS refunds (or not) as agreed at onboarding.
fn alternative_account(c: &Cancellation) -> Result<Option<BankDetails<'_>>, SubmitError> {
    let to_bank_account = c
        .refund
        .as_ref()
        .is_some_and(|refund| refund.to == RefundDestination::BankAccount);
    if !to_bank_account {
        return Ok(None);
    }
    let Some(bank) = &c.bank_details else {
        // Sending the cancellation without them would refund to the original
        // payment method: never move money somewhere else than asked.
        return Err(SubmitError::rejected(format!(
            "the refund of order {} goes to a bank account but the cancellation carries no bank details",
            c.order_number
        )));
    };
    Ok(Some(BankDetails {
        account_owner: &bank.account_owner,
        iban: &bank.iban,
        bic: bank.bic.as_deref().filter(|bic| !bic.trim().is_empty()),
    }))
}

/// The Cancel Order answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Accepted {
    internal_request_id: String,
}

#[cfg(test)]
mod tests;
