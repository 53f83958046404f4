#![doc = include_str!("../README.md")]

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use rescind_guest::http::{Request, Response};
use rescind_guest::{Ack, Cancellation, IntegrationProcessor, SubmitError, config, log};
use serde::Serialize;
use sha2::Sha256;

/// The secret that keys the body's signature.
pub const SIGNING_KEY_SECRET: &str = "signingKey";

/// The optional setting whose value is appended to the base URL.
pub const PATH_SETTING: &str = "path";

/// The header carrying `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Rescind-Signature";

/// The header carrying the attempt number. It is kept out of the body so that
/// every attempt of a job sends the very same bytes under the same
/// `Idempotency-Key`: a receiver that refuses a reused key with a different
/// body still recognises a retry.
pub const ATTEMPT_HEADER: &str = "X-Rescind-Attempt";

/// The webhook integration processor.
pub struct Webhook;

impl IntegrationProcessor for Webhook {
    fn submit_cancellation(cancellation: &Cancellation) -> Result<Ack, SubmitError> {
        let signing_key = config::required_secret(SIGNING_KEY_SECRET)?;
        let url = match config::setting(PATH_SETTING) {
            Some(path) => config::url(&path),
            None => config::base_url(),
        };
        log::info!(
            "posting the cancellation of order {} to {url} (attempt {})",
            cancellation.order_number,
            cancellation.attempt
        );

        let request = Request::post(&url).json(&Payload::from(cancellation))?;
        let signature = sign(signing_key.as_bytes(), request.body_bytes());
        let answer = request
            .header("Idempotency-Key", &cancellation.request_id)
            .header(SIGNATURE_HEADER, signature)
            .header(ATTEMPT_HEADER, cancellation.attempt.to_string())
            .send()?
            .error_for_status()?;

        let erp_reference = reference(&answer);
        log::info!(
            "the receiver accepted it: HTTP {}{}",
            answer.status,
            erp_reference
                .as_deref()
                .map(|r| format!(", reference {r}"))
                .unwrap_or_default()
        );
        Ok(Ack {
            erp_reference,
            message: Some(format!("delivered to {url}: HTTP {}", answer.status)),
        })
    }
}

rescind_guest::register_integration_processor!(Webhook);

/// `sha256=` and the lower-case hex HMAC-SHA256 of `body` keyed by `key`: the
/// value of the `X-Rescind-Signature` header.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The receiver's reference for the delivery: a JSON `id` or `reference`
/// field (string or number), else an `X-Request-Id` header.
fn reference(answer: &Response) -> Option<String> {
    let from_body = answer.json::<serde_json::Value>().ok().and_then(|body| {
        ["id", "reference"]
            .into_iter()
            .find_map(|key| match body.get(key)? {
                serde_json::Value::String(text) if !text.is_empty() => Some(text.clone()),
                serde_json::Value::Number(number) => Some(number.to_string()),
                _ => None,
            })
    });
    from_body.or_else(|| answer.header("x-request-id").map(str::to_owned))
}

/// The JSON body: the cancellation with rescind API's camelCase names.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Payload<'a> {
    request_id: &'a str,
    order_number: &'a str,
    erp_order_number: Option<&'a str>,
    business_code: &'a str,
    customer_number: &'a str,
    website: &'a str,
    order_date: &'a str,
    full: bool,
    lines: Vec<Line<'a>>,
    all_line_numbers: &'a [u32],
    cancellation_reason: &'static str,
    cancellation_date: &'a str,
    invoice_reference: Option<&'a str>,
    forced_cancel: bool,
    forced_cancel_with_refund: bool,
    refund: Option<RefundBody<'a>>,
    bank_details: Option<BankDetailsBody<'a>>,
    for_user: Option<&'a str>,
    tracking_data: Option<TrackingBody<'a>>,
    parameters: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Line<'a> {
    line_number: u32,
    sku: &'a str,
    quantity: u32,
    kind: &'static str,
    amount_minor: i64,
    tax_minor: i64,
    currency: &'a str,
    parent_line: Option<u32>,
    erp_line_ref: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RefundBody<'a> {
    amount_minor: i64,
    currency: &'a str,
    to: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BankDetailsBody<'a> {
    account_owner: &'a str,
    iban: &'a str,
    bic: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TrackingBody<'a> {
    channel: &'static str,
    session: Option<&'a str>,
    cuid: Option<&'a str>,
    offline_channel: Option<&'a str>,
}

impl<'a> From<&'a Cancellation> for Payload<'a> {
    fn from(c: &'a Cancellation) -> Self {
        Payload {
            request_id: &c.request_id,
            order_number: &c.order_number,
            erp_order_number: c.erp_order_number.as_deref(),
            business_code: &c.business_code,
            customer_number: &c.customer_number,
            website: &c.website,
            order_date: &c.order_date,
            full: c.full,
            lines: c
                .lines
                .iter()
                .map(|line| Line {
                    line_number: line.line_number,
                    sku: &line.sku,
                    quantity: line.quantity,
                    kind: line.kind.as_str(),
                    amount_minor: line.amount.amount_minor,
                    tax_minor: line.tax.amount_minor,
                    currency: &line.amount.currency,
                    parent_line: line.parent_line,
                    erp_line_ref: line.erp_line_ref.as_deref(),
                })
                .collect(),
            all_line_numbers: &c.all_line_numbers,
            cancellation_reason: c.reason.code(),
            cancellation_date: &c.date,
            invoice_reference: c.invoice_reference.as_deref(),
            forced_cancel: c.forced_cancel,
            forced_cancel_with_refund: c.forced_cancel_with_refund,
            refund: c.refund.as_ref().map(|refund| RefundBody {
                amount_minor: refund.amount.amount_minor,
                currency: &refund.amount.currency,
                to: refund.to.as_str(),
            }),
            bank_details: c.bank_details.as_ref().map(|bank| BankDetailsBody {
                account_owner: &bank.account_owner,
                iban: &bank.iban,
                bic: bank.bic.as_deref(),
            }),
            for_user: c.for_user.as_deref(),
            tracking_data: c.tracking.as_ref().map(|tracking| TrackingBody {
                channel: tracking.channel.as_str(),
                session: tracking.session.as_deref(),
                cuid: tracking.cuid.as_deref(),
                offline_channel: tracking.offline_channel.as_deref(),
            }),
            parameters: c
                .parameters
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rescind_guest::http;
    use rescind_guest::testing::{Connection, sample_cancellation};
    use serde_json::json;

    const BASE: &str = "https://erp.example.com/hooks";

    fn erp() -> Connection {
        Connection::new(BASE).secret(SIGNING_KEY_SECRET, "s3cret")
    }

    #[test]
    fn posts_the_exact_body_with_its_headers() {
        let erp = erp().respond_with(Response::new(201).with_json(&json!({"id": "wh-42"})));
        let ack = erp.submit::<Webhook>(&sample_cancellation()).unwrap();
        assert_eq!(ack.erp_reference.as_deref(), Some("wh-42"));
        assert_eq!(
            ack.message.as_deref(),
            Some("delivered to https://erp.example.com/hooks: HTTP 201")
        );

        let [request] = <[_; 1]>::try_from(erp.requests()).unwrap();
        assert_eq!(request.method, http::Method::Post);
        assert_eq!(request.url, BASE);
        let expected = json!({
            "requestId": "6f1d2c3e-8a4b-4c5d-9e6f-0a1b2c3d4e5f",
            "orderNumber": "1001",
            "erpOrderNumber": "ERP-1001",
            "businessCode": "B1",
            "customerNumber": "C-1",
            "website": "main",
            "orderDate": "2024-09-01",
            "full": true,
            "lines": [
                {"lineNumber": 1, "sku": "CHAIR", "quantity": 2, "kind": "product",
                 "amountMinor": 20000, "taxMinor": 3800, "currency": "EUR",
                 "parentLine": null, "erpLineRef": "ERP-1001-1"},
                {"lineNumber": 2, "sku": "WARRANTY", "quantity": 1, "kind": "product",
                 "amountMinor": 1500, "taxMinor": 285, "currency": "EUR",
                 "parentLine": 1, "erpLineRef": null},
                {"lineNumber": 3, "sku": "PROMO10", "quantity": 1, "kind": "discount",
                 "amountMinor": -2000, "taxMinor": -380, "currency": "EUR",
                 "parentLine": null, "erpLineRef": null}
            ],
            "allLineNumbers": [1, 2, 3],
            "cancellationReason": "OUT_OF_STOCK",
            "cancellationDate": "2024-09-09",
            "invoiceReference": "IDE12345678901",
            "forcedCancel": true,
            "forcedCancelWithRefund": true,
            "refund": {"amountMinor": 23205, "currency": "EUR", "to": "bankAccount"},
            "bankDetails": {"accountOwner": "Max Mustermann", "iban": "DE89370400440532013000", "bic": "COBADEFFXXX"},
            "forUser": null,
            "trackingData": {"channel": "online", "session": "123|abc", "cuid": "09|Z0", "offlineChannel": null},
            "parameters": {"OrderNumber": "1001"}
        });
        assert_eq!(request.json::<serde_json::Value>().unwrap(), expected);
        // The exact bytes, in the plugin's field order: what gets signed.
        assert_eq!(
            request.text(),
            concat!(
                r#"{"requestId":"6f1d2c3e-8a4b-4c5d-9e6f-0a1b2c3d4e5f","orderNumber":"1001","#,
                r#""erpOrderNumber":"ERP-1001","businessCode":"B1","customerNumber":"C-1","#,
                r#""website":"main","orderDate":"2024-09-01","full":true,"lines":["#,
                r#"{"lineNumber":1,"sku":"CHAIR","quantity":2,"kind":"product","amountMinor":20000,"#,
                r#""taxMinor":3800,"currency":"EUR","parentLine":null,"erpLineRef":"ERP-1001-1"},"#,
                r#"{"lineNumber":2,"sku":"WARRANTY","quantity":1,"kind":"product","amountMinor":1500,"#,
                r#""taxMinor":285,"currency":"EUR","parentLine":1,"erpLineRef":null},"#,
                r#"{"lineNumber":3,"sku":"PROMO10","quantity":1,"kind":"discount","amountMinor":-2000,"#,
                r#""taxMinor":-380,"currency":"EUR","parentLine":null,"erpLineRef":null}],"#,
                r#""allLineNumbers":[1,2,3],"cancellationReason":"OUT_OF_STOCK","#,
                r#""cancellationDate":"2024-09-09","invoiceReference":"IDE12345678901","#,
                r#""forcedCancel":true,"forcedCancelWithRefund":true,"#,
                r#""refund":{"amountMinor":23205,"currency":"EUR","to":"bankAccount"},"#,
                r#""bankDetails":{"accountOwner":"Max Mustermann","iban":"DE89370400440532013000","bic":"COBADEFFXXX"},"#,
                r#""forUser":null,"#,
                r#""trackingData":{"channel":"online","session":"123|abc","cuid":"09|Z0","offlineChannel":null},"#,
                r#""parameters":{"OrderNumber":"1001"}}"#,
            )
        );

        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(
            request.header("idempotency-key"),
            Some("6f1d2c3e-8a4b-4c5d-9e6f-0a1b2c3d4e5f")
        );
        assert_eq!(request.header("x-rescind-attempt"), Some("1"));
        assert_eq!(
            request.header("content-length"),
            Some(request.body.len().to_string().as_str())
        );
    }

    #[test]
    fn every_attempt_sends_the_same_bytes() {
        let erp = erp().respond_with(Response::new(204));
        let first = sample_cancellation();
        let retry = Cancellation {
            attempt: 3,
            ..sample_cancellation()
        };
        erp.submit::<Webhook>(&first).unwrap();
        erp.submit::<Webhook>(&retry).unwrap();
        let requests = erp.requests();
        assert_eq!(requests[0].body, requests[1].body);
        assert_eq!(
            requests[0].header(SIGNATURE_HEADER),
            requests[1].header(SIGNATURE_HEADER)
        );
        assert_eq!(requests[1].header(ATTEMPT_HEADER), Some("3"));
    }

    #[test]
    fn the_signature_verifies_with_the_shared_key() {
        let erp = erp().respond_with(Response::new(200));
        erp.submit::<Webhook>(&sample_cancellation()).unwrap();
        let request = &erp.requests()[0];
        let header = request.header(SIGNATURE_HEADER).unwrap();
        let hex_mac = header.strip_prefix("sha256=").unwrap();

        // What a receiver does: recompute over the raw body and compare.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(&request.body);
        mac.verify_slice(&hex::decode(hex_mac).unwrap()).unwrap();

        let mut wrong = Hmac::<Sha256>::new_from_slice(b"other key").unwrap();
        wrong.update(&request.body);
        assert!(wrong.verify_slice(&hex::decode(hex_mac).unwrap()).is_err());
    }

    #[test]
    fn sign_matches_rfc_4231_test_case_2() {
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_path_setting_is_appended_to_the_base_url() {
        let erp = Connection::new("http://127.0.0.1:9000/")
            .setting(PATH_SETTING, "/erp/cancellations")
            .secret(SIGNING_KEY_SECRET, "k")
            .respond_with(Response::new(202));
        erp.submit::<Webhook>(&sample_cancellation()).unwrap();
        assert_eq!(
            erp.requests()[0].url,
            "http://127.0.0.1:9000/erp/cancellations"
        );
    }

    #[test]
    fn the_reference_comes_from_id_reference_or_request_id() {
        let cases = [
            (Response::new(201).with_json(&json!({"id": 17})), Some("17")),
            (
                Response::new(200).with_json(&json!({"reference": "R-9", "id": ""})),
                Some("R-9"),
            ),
            (
                Response::new(202).with_header("X-Request-Id", "hdr-1"),
                Some("hdr-1"),
            ),
            (
                Response::new(200)
                    .with_header("X-Request-Id", "hdr-2")
                    .with_json(&json!({"id": "body-wins"})),
                Some("body-wins"),
            ),
            (Response::new(204), None),
            (Response::new(200).with_text("thanks"), None),
        ];
        for (answer, expected) in cases {
            let erp = erp().respond_with(answer.clone());
            let ack = erp.submit::<Webhook>(&sample_cancellation()).unwrap();
            assert_eq!(ack.erp_reference.as_deref(), expected, "{answer:?}");
        }
    }

    #[test]
    fn failure_statuses_map_to_the_shared_outcomes() {
        for status in [408, 429, 500, 502, 503] {
            let erp = erp().respond_with(Response::new(status).with_text("busy"));
            let error = erp.submit::<Webhook>(&sample_cancellation()).unwrap_err();
            assert!(error.is_transient(), "{status}: {error}");
        }
        for (status, reason) in [
            (400, "Bad Request"),
            (404, "Not Found"),
            (422, "Unprocessable Content"),
        ] {
            let erp = erp().respond_with(
                Response::new(status).with_json(&json!({"message": "order 1001 unknown"})),
            );
            let error = erp.submit::<Webhook>(&sample_cancellation()).unwrap_err();
            assert_eq!(
                error,
                SubmitError::Rejected(format!(
                    "the ERP answered {status} {reason}: order 1001 unknown"
                ))
            );
        }
    }

    #[test]
    fn transport_failures_map_to_the_shared_outcomes() {
        let refused = erp().respond(|_| {
            Err(http::Error::Connection {
                host: "erp.example.com".into(),
                detail: "connection refused".into(),
            })
        });
        let error = refused
            .submit::<Webhook>(&sample_cancellation())
            .unwrap_err();
        assert!(error.is_transient(), "{error}");

        let timeout = erp().respond(|_| {
            Err(http::Error::Timeout {
                host: "erp.example.com".into(),
                detail: "the answer did not start in time".into(),
            })
        });
        assert!(
            timeout
                .submit::<Webhook>(&sample_cancellation())
                .unwrap_err()
                .is_transient()
        );

        // The host refuses a host outside the connection's allowedHosts.
        let denied = erp().respond(|_| {
            Err(http::Error::Denied {
                host: "erp.example.com".into(),
            })
        });
        let error = denied
            .submit::<Webhook>(&sample_cancellation())
            .unwrap_err();
        assert!(
            matches!(&error, SubmitError::Misconfigured(m) if m.contains("`erp.example.com`") && m.contains("allowedHosts")),
            "{error}"
        );
    }

    #[test]
    fn a_missing_signing_key_is_misconfigured_and_sends_nothing() {
        let erp = Connection::new(BASE).respond_with(Response::new(200));
        let error = erp.submit::<Webhook>(&sample_cancellation()).unwrap_err();
        assert_eq!(
            error,
            SubmitError::Misconfigured(
                "the connection has no secret `signingKey`: add it to the connection's \"secrets\""
                    .into()
            )
        );
        assert!(erp.requests().is_empty());
    }

    #[test]
    fn the_signing_key_never_reaches_the_log() {
        let erp = erp().respond_with(Response::new(200));
        erp.submit::<Webhook>(&sample_cancellation()).unwrap();
        let logs = erp.logs();
        assert!(!logs.is_empty());
        assert!(logs.iter().all(|line| !line.message.contains("s3cret")));
    }
}
