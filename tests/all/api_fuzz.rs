//! Parser fuzzing of the API in-process (the real router over a real store,
//! no socket): random JSON — known field names with values of every type,
//! unknown fields, nesting, huge numbers, odd strings — and random bytes as
//! the body of a cancellation and of an order. Must hold for every case: no
//! 500; every refusal is `application/problem+json` with a code the API
//! documents; a refused cancellation changes nothing.
//!
//! CI runs `CASES` cases per target; a long run sets `PROPTEST_CASES`, e.g.
//! `PROPTEST_CASES=100000 cargo test -p rescind-tests --test all api_fuzz`.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use axum::Router;
use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rescind_host::api::{AppState, router};
use rescind_host::store::{Store, StoreOptions};
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use crate::service::sample_order;

/// Cases per target in an ordinary run.
const CASES: u32 = 300;
const ADMIN: &str = "fuzz-admin-token-0123456789abcdef";

/// The codes a refusal of these two endpoints may carry: the contract's
/// table, plus `unsupported-media-type` for a body that is not JSON.
const DOCUMENTED: &[&str] = &[
    "malformed-request",
    "unauthenticated",
    "forbidden",
    "cancellation-not-allowed",
    "order-not-found",
    "order-not-cancellable",
    "forced-cancel-required",
    "line-already-cancelled",
    "request-in-progress",
    "payload-too-large",
    "refund-requires-forced-cancel",
    "nothing-to-refund",
    "unknown-line",
    "duplicate-line",
    "partial-line-not-supported",
    "invalid-reason",
    "reason-not-allowed",
    "invalid-date",
    "invalid-iban",
    "invalid-bic",
    "bic-required",
    "idempotency-key-reused",
    "validation-failed",
    "unsupported-media-type",
];

/// Field names of the cancel and order bodies, for the untyped values.
const FIELDS: &[&str] = &[
    "items",
    "orderItemReference",
    "quantity",
    "cancellationReason",
    "cancellationDate",
    "invoiceReference",
    "bankDetails",
    "accountOwner",
    "iban",
    "bic",
    "forcedCancel",
    "forcedCancelWithRefund",
    "forUser",
    "businessCode",
    "customerNumber",
    "website",
    "status",
    "orderDate",
    "currency",
    "erpOrderNumber",
    "lines",
    "lineNumber",
    "sku",
    "amountMinor",
    "taxMinor",
    "parentLine",
    "kind",
    "appliesTo",
    "payments",
    "id",
    "method",
    "authorizedMinor",
    "depositedMinor",
    "allocations",
    "warehouse",
    "approval",
    "state",
    "tracking",
    "channel",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-3i64..5).prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
        prop_oneof![
            Just("OUT_OF_STOCK"),
            Just("CUSTOMER_CANCELLATION"),
            Just("2024-09-09"),
            Just("2999-01-01"),
            Just("DE89370400440532013000"),
            Just("COBADEFFXXX"),
            Just("Submitted"),
            Just("discount"),
            Just("EUR"),
            Just(""),
        ]
        .prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(FIELDS).prop_map(str::to_owned),
                        "[a-z]{1,8}"
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Either a value of the field's own type (mostly, so that the bodies
/// reach the rules) or anything at all (type confusion).
fn typed(own: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
    prop_oneof![30 => own, 1 => json_value()].boxed()
}

fn some_string() -> impl Strategy<Value = Value> {
    prop_oneof![".{0,12}", "[A-Za-z0-9 -]{0,120}", Just(String::new())].prop_map(Value::from)
}

fn line_reference() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u32..6).prop_map(Value::from),
        any::<u32>().prop_map(Value::from)
    ]
}

fn date() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just("2024-09-09"),
        Just("2024-08-31"),
        Just("2999-01-01"),
        Just("2024-02-30"),
        Just("09/09/2024"),
    ]
    .prop_map(Value::from)
}

fn reason() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just("OUT_OF_STOCK"),
        Just("CUSTOMER_CANCELLATION"),
        Just("NO_PAYMENT"),
        Just("CUSTOMER_SERVICE"),
        Just("out_of_stock"),
        Just("BORED"),
    ]
    .prop_map(Value::from)
}

fn bank_details() -> impl Strategy<Value = Value> {
    (
        some_string(),
        prop_oneof![
            Just("DE89370400440532013000"),
            Just("DE89370400440532013001"),
            Just("TR330006100519786457841326"),
            Just("GB82WEST12345698765432"),
            Just("XX00"),
        ],
        prop::option::of(prop_oneof![
            Just("COBADEFFXXX"),
            Just("COBADEFF"),
            Just("COBA"),
        ]),
    )
        .prop_map(|(owner, iban, bic)| {
            let mut details = json!({"accountOwner": owner, "iban": iban});
            if let Some(bic) = bic {
                details["bic"] = json!(bic);
            }
            details
        })
}

/// A cancel body: each field of the contract present or not, with a value
/// of its type or not, sometimes an unknown field; now and then any JSON or
/// any bytes at all.
fn cancel_body() -> impl Strategy<Value = Vec<u8>> {
    let items = prop::collection::vec(
        (line_reference(), prop::option::of(0u32..4)).prop_map(|(reference, quantity)| {
            let mut item = json!({ "orderItemReference": reference });
            if let Some(quantity) = quantity {
                item["quantity"] = json!(quantity);
            }
            item
        }),
        0..4,
    )
    .prop_map(Value::Array);
    let fields = (
        prop::option::of(typed(items)),
        prop::option::of(typed(reason())),
        prop::option::of(typed(date())),
        prop::option::of(typed(some_string())),
        prop::option::of(typed(bank_details())),
        prop::option::of(typed(any::<bool>().prop_map(Value::from))),
        prop::option::of(typed(any::<bool>().prop_map(Value::from))),
        prop::option::of(typed(some_string())),
        prop::option::weighted(0.05, ("[a-z]{1,8}", json_value())),
    );
    let object = fields.prop_map(
        |(items, reason, date, invoice, bank, forced, refund, for_user, unknown)| {
            let mut body = Map::new();
            for (name, value) in [
                ("items", items),
                ("cancellationReason", reason),
                ("cancellationDate", date),
                ("invoiceReference", invoice),
                ("bankDetails", bank),
                ("forcedCancel", forced),
                ("forcedCancelWithRefund", refund),
                ("forUser", for_user),
            ] {
                if let Some(value) = value {
                    body.insert(name.to_owned(), value);
                }
            }
            if let Some((name, value)) = unknown {
                body.insert(name, value);
            }
            Value::Object(body).to_string().into_bytes()
        },
    );
    prop_oneof![
        18 => object,
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// One change to the sample order: a field, somewhere in it, given a value
/// of its type (mostly) or anything.
fn order_change() -> impl Strategy<Value = (Vec<&'static str>, Value)> {
    let amount = prop_oneof![
        (-30_000i64..30_000).prop_map(Value::from),
        any::<i64>().prop_map(Value::from)
    ];
    let count = prop_oneof![
        (0u32..4).prop_map(Value::from),
        any::<u32>().prop_map(Value::from)
    ];
    prop_oneof![
        typed(some_string()).prop_map(|v| (vec!["status"], v)),
        typed(some_string()).prop_map(|v| (vec!["website"], v)),
        typed(some_string()).prop_map(|v| (vec!["customerNumber"], v)),
        typed(date()).prop_map(|v| (vec!["orderDate"], v)),
        typed("[A-Z]{2,4}".prop_map(Value::from)).prop_map(|v| (vec!["currency"], v)),
        typed(count.clone()).prop_map(|v| (vec!["lines", "quantity"], v)),
        typed(count.clone()).prop_map(|v| (vec!["lines", "lineNumber"], v)),
        typed(count.clone()).prop_map(|v| (vec!["lines", "parentLine"], v)),
        typed(amount.clone()).prop_map(|v| (vec!["lines", "amountMinor"], v)),
        typed(amount.clone()).prop_map(|v| (vec!["lines", "taxMinor"], v)),
        typed(prop_oneof![Just("product"), Just("discount"), Just("gift")].prop_map(Value::from))
            .prop_map(|v| (vec!["lines", "kind"], v)),
        typed(prop::collection::vec(count.clone(), 0..3).prop_map(Value::Array))
            .prop_map(|v| (vec!["lines", "appliesTo"], v)),
        typed(amount.clone()).prop_map(|v| (vec!["payments", "authorizedMinor"], v)),
        typed(amount.clone()).prop_map(|v| (vec!["payments", "depositedMinor"], v)),
        typed(some_string()).prop_map(|v| (vec!["payments", "id"], v)),
        typed(count.clone()).prop_map(|v| (vec!["allocations", "quantity"], v)),
        typed(count).prop_map(|v| (vec!["allocations", "lineNumber"], v)),
        typed(
            prop_oneof![Just("existing"), Just("expected"), Just("borrowed")].prop_map(Value::from)
        )
        .prop_map(|v| (vec!["allocations", "kind"], v)),
        typed(
            prop_oneof![Just("pending"), Just("approved"), Just("lost")]
                .prop_map(|state| json!({ "state": state }))
        )
        .prop_map(|v| (vec!["approval"], v)),
        json_value().prop_map(|v| (vec!["lines"], v)),
        ("[a-z]{1,8}", json_value()).prop_map(|(_, v)| (vec!["unexpected"], v)),
    ]
}

/// An order body: the sample order with a few changes; now and then any
/// JSON or any bytes at all.
fn order_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        18 => prop::collection::vec(order_change(), 1..4).prop_map(|changes| {
            let mut order = sample_order("C-1");
            for (path, value) in changes {
                set_somewhere(&mut order, &path, value);
            }
            order.to_string().into_bytes()
        }),
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// Sets `value` at `path` (into arrays' first element), or as far as the
/// path reaches.
fn set_somewhere(target: &mut Value, path: &[&str], value: Value) {
    let Some((key, rest)) = path.split_first() else {
        return;
    };
    let target = match target {
        Value::Array(items) if !items.is_empty() => &mut items[0],
        other => other,
    };
    let Value::Object(object) = target else {
        return;
    };
    match object.get_mut(*key) {
        Some(inner) if !rest.is_empty() => set_somewhere(inner, rest, value),
        _ => {
            object.insert((*key).to_owned(), value);
        }
    }
}

/// A runtime and a router over a fresh store, the insite preset, website
/// `main` open to customers and order `SO-1`.
struct Api {
    runtime: tokio::runtime::Runtime,
    app: Router,
    _dir: tempfile::TempDir,
}

impl Api {
    fn new() -> Api {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let app = runtime.block_on(async {
            let store = Store::open(&StoreOptions::new(dir.path()))
                .await
                .expect("the store opens");
            router(AppState::new(store, Some(ADMIN)))
        });
        let api = Api {
            runtime,
            app,
            _dir: dir,
        };
        api.expect_ok(Method::POST, "/v1/admin/presets/insite", b"");
        api.expect_ok(
            Method::PUT,
            "/v1/admin/websites/main",
            json!({"allowCancellationRequest": true})
                .to_string()
                .as_bytes(),
        );
        api.put_sample();
        api
    }

    fn put_sample(&self) {
        self.expect_ok(
            Method::PUT,
            "/v1/orders/SO-1",
            sample_order("C-1").to_string().as_bytes(),
        );
    }

    fn send(&self, method: Method, path: &str, body: &[u8]) -> (StatusCode, String, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_vec()))
            .expect("a request");
        self.runtime.block_on(async {
            let response = self.app.clone().oneshot(request).await.expect("an answer");
            let status = response.status();
            let content_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("the body");
            (
                status,
                content_type,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        })
    }

    fn expect_ok(&self, method: Method, path: &str, body: &[u8]) -> Value {
        let (status, _, answer) = self.send(method, path, body);
        assert!(status.is_success(), "{path}: {status} {answer}");
        answer
    }

    fn order(&self) -> Value {
        self.expect_ok(Method::GET, "/v1/orders/SO-1", b"")
    }
}

/// Checks an answer that is not a success.
fn check_refusal(
    status: StatusCode,
    content_type: &str,
    answer: &Value,
) -> Result<(), TestCaseError> {
    prop_assert!(
        status.is_client_error(),
        "a server error: {status} {answer}"
    );
    prop_assert_eq!(content_type, "application/problem+json");
    let code = answer["code"].as_str().unwrap_or_default();
    prop_assert!(
        DOCUMENTED.contains(&code),
        "undocumented code {code:?}: {answer}"
    );
    prop_assert_eq!(answer["status"].as_u64(), Some(u64::from(status.as_u16())));
    Ok(())
}

/// A runner with a fixed seed, so that an ordinary run is the same every
/// time (and its coverage check below cannot depend on luck).
fn runner() -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(CASES);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

/// What the answers were, so that a run that never got past the parser
/// (or never succeeded) is noticed.
#[derive(Default)]
struct Seen(Mutex<BTreeMap<String, usize>>);

impl Seen {
    fn note(&self, what: &str) {
        *self.0.lock().unwrap().entry(what.to_owned()).or_default() += 1;
    }

    fn check(&self, must_include: &[&str], at_least_kinds: usize) {
        let seen = self.0.lock().unwrap();
        for what in must_include {
            assert!(seen.contains_key(*what), "never saw {what}: {seen:?}");
        }
        assert!(
            seen.len() >= at_least_kinds,
            "too few kinds of answer: {seen:?}"
        );
    }
}

fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(Api::new)
}

#[test]
fn random_cancellation_bodies_are_answered_or_refused_with_a_documented_code() {
    let api = api();
    let seen = Seen::default();
    runner()
        .run(&cancel_body(), |body| {
            let before = api.order();
            let (status, content_type, answer) =
                api.send(Method::POST, "/v1/orders/SO-1/cancellations", &body);
            if status == StatusCode::CREATED {
                seen.note("created");
                // Accepted: put the order back for the next case.
                api.put_sample();
            } else {
                check_refusal(status, &content_type, &answer)?;
                seen.note(answer["code"].as_str().unwrap_or_default());
                prop_assert_eq!(api.order(), before, "a refusal changed the order");
            }
            Ok(())
        })
        .unwrap();
    // The bodies reached the rules, not only the parser.
    seen.check(
        &[
            "created",
            "malformed-request",
            "validation-failed",
            "invalid-reason",
            "unknown-line",
            "invalid-date",
        ],
        8,
    );
}

#[test]
fn random_order_bodies_are_stored_or_refused_with_a_documented_code() {
    let api = api();
    let seen = Seen::default();
    runner()
        .run(&order_body(), |body| {
            let (status, content_type, answer) = api.send(Method::PUT, "/v1/orders/FZ-1", &body);
            if status.is_success() {
                seen.note("stored");
            } else {
                check_refusal(status, &content_type, &answer)?;
                seen.note(answer["code"].as_str().unwrap_or_default());
            }
            Ok(())
        })
        .unwrap();
    seen.check(&["stored", "malformed-request", "validation-failed"], 3);
}
