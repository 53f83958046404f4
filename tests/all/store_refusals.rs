//! "A refused request changes nothing" (the API contract), checked where something
//! could change: refused cancellations go through the real service and its
//! store (idempotency claims, the group commit, the outbox), and the
//! database file is compared before and after each, table by table. A job
//! definition is enabled, so a refusal that queued a job would show.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api_cancel::configure_job;
use crate::service::{ADMIN, TestService, deposited_order, sample_order};

/// Every row of every table but `api_keys` (credentials, which a request
/// may mark as used without changing anything it asked for), in a stable
/// order, as text.
fn database(service: &TestService) -> Vec<(String, Vec<String>)> {
    let connection = rusqlite::Connection::open_with_flags(
        service.dir.path().join("rescind.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the database read-only");
    let tables: Vec<String> = connection
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table'
               AND name NOT LIKE 'sqlite_%' AND name <> 'api_keys' ORDER BY name",
        )
        .expect("list tables")
        .query_map([], |row| row.get(0))
        .expect("tables")
        .collect::<Result<_, _>>()
        .expect("table names");
    tables
        .into_iter()
        .map(|table| {
            let mut statement = connection
                .prepare(&format!("SELECT * FROM \"{table}\""))
                .expect("select");
            let columns = statement.column_count();
            let mut rows: Vec<String> = statement
                .query_map([], |row| {
                    (0..columns)
                        .map(|i| {
                            row.get::<_, rusqlite::types::Value>(i)
                                .map(|v| format!("{v:?}"))
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map(|values| values.join(" | "))
                })
                .expect("rows")
                .collect::<Result<_, _>>()
                .expect("row values");
            rows.sort();
            (table, rows)
        })
        .collect()
}

/// Fails with the tables that differ, their rows before and after.
fn assert_unchanged(before: &[(String, Vec<String>)], after: &[(String, Vec<String>)], what: &str) {
    let changed: Vec<String> = before
        .iter()
        .zip(after)
        .filter(|(b, a)| b != a)
        .map(|((table, rows_before), (_, rows_after))| {
            format!("{table}:\n  before {rows_before:?}\n  after  {rows_after:?}")
        })
        .collect();
    assert!(
        changed.is_empty() && before.len() == after.len(),
        "{what} changed the database:\n{}",
        changed.join("\n")
    );
}

fn jobs(database: &[(String, Vec<String>)]) -> usize {
    database
        .iter()
        .find(|(table, _)| table == "jobs")
        .map_or(0, |(_, rows)| rows.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_cancellation_writes_nothing_and_queues_no_job() {
    // No workers: nothing but the requests writes.
    let service = TestService::start_without_workers().await;
    service.configure_insite().await;
    configure_job(
        &service,
        "http://127.0.0.1:9",
        "127.0.0.1:9",
        json!({"maxAttempts": 1, "initialBackoffMs": 1, "maxBackoffMs": 1}),
    )
    .await;
    service.put_order("SO-1", &sample_order("C-1")).await;
    service.put_order("SO-2", &deposited_order("C-1")).await;
    service.put_order("SO-3", &sample_order("C-2")).await;
    let mut shipped = sample_order("C-1");
    shipped["status"] = json!("Shipped");
    service.put_order("SO-4", &shipped).await;
    let mut partly = deposited_order("C-1");
    partly["website"] = json!("closed");
    service.put_order("SO-5", &partly).await;
    // SO-5 has line 2 cancelled already (and one job queued for it).
    let a = service
        .cancel(
            "SO-5",
            &json!({"cancellationReason": "OUT_OF_STOCK", "forcedCancel": true,
                    "items": [{"orderItemReference": 2}]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let customer = service.key("customer", Some("C-1")).await;
    let staff = |extra: Value| {
        let mut body = json!({"cancellationReason": "OUT_OF_STOCK"});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    };
    let bank = |iban: &str, bic: Option<&str>| {
        json!({"forcedCancel": true, "forcedCancelWithRefund": true,
               "bankDetails": {"accountOwner": "Max Mustermann", "iban": iban, "bic": bic}})
    };

    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (ADMIN, "NOPE", staff(json!({})), "order-not-found"),
        (&customer, "SO-3", json!({}), "order-not-found"),
        (
            &customer,
            "SO-1",
            json!({"forUser": "x@example.com"}),
            "forbidden",
        ),
        (&customer, "SO-5", json!({}), "cancellation-not-allowed"),
        (ADMIN, "SO-4", staff(json!({})), "order-not-cancellable"),
        (ADMIN, "SO-2", staff(json!({})), "forced-cancel-required"),
        (
            ADMIN,
            "SO-5",
            staff(json!({"forcedCancel": true, "items": [{"orderItemReference": 2}]})),
            "line-already-cancelled",
        ),
        (
            ADMIN,
            "SO-2",
            staff(json!({"forcedCancelWithRefund": true})),
            "refund-requires-forced-cancel",
        ),
        (
            ADMIN,
            "SO-1",
            staff(json!({"forcedCancel": true, "forcedCancelWithRefund": true})),
            "nothing-to-refund",
        ),
        (
            ADMIN,
            "SO-1",
            staff(json!({"items": [{"orderItemReference": 9}]})),
            "unknown-line",
        ),
        (
            ADMIN,
            "SO-1",
            staff(json!({"items": [{"orderItemReference": 2}, {"orderItemReference": 2}]})),
            "duplicate-line",
        ),
        (
            ADMIN,
            "SO-1",
            staff(json!({"items": [{"orderItemReference": 1, "quantity": 1}]})),
            "partial-line-not-supported",
        ),
        (ADMIN, "SO-1", json!({}), "invalid-reason"),
        (
            &customer,
            "SO-1",
            json!({"cancellationReason": "NO_PAYMENT"}),
            "reason-not-allowed",
        ),
        (
            ADMIN,
            "SO-1",
            staff(json!({"cancellationDate": "2999-01-01"})),
            "invalid-date",
        ),
        (
            ADMIN,
            "SO-2",
            staff(bank("DE89370400440532013001", None)),
            "invalid-iban",
        ),
        (
            ADMIN,
            "SO-2",
            staff(bank("DE89370400440532013000", Some("CO"))),
            "invalid-bic",
        ),
        (
            ADMIN,
            "SO-2",
            staff(bank("TR330006100519786457841326", None)),
            "bic-required",
        ),
        (
            ADMIN,
            "SO-1",
            staff(json!({"items": [{"orderItemReference": 3}]})),
            "validation-failed",
        ),
        (
            ADMIN,
            "SO-1",
            staff(json!({"forcedCancle": true})),
            "malformed-request",
        ),
    ];
    let before = database(&service);
    assert_eq!(jobs(&before), 1);
    for (n, (token, order, body, code)) in cases.into_iter().enumerate() {
        // Without a key, then with a fresh one: its claim must not outlive
        // the refusal either.
        let key = format!("refused-{n}");
        for headers in [vec![], vec![("idempotency-key", key.as_str())]] {
            let answer = service
                .send(
                    Method::POST,
                    &format!("/v1/orders/{order}/cancellations"),
                    Some(token),
                    Some(&body),
                    &headers,
                )
                .await;
            assert_eq!(answer.code(), code, "{order} {body}: {}", answer.body);
            assert_unchanged(
                &before,
                &database(&service),
                &format!("{code} ({order}, {headers:?})"),
            );
        }
    }

    // The same key reused with another body, and one still held by a
    // request in flight: refused, nothing written either.
    let body = staff(json!({"items": [{"orderItemReference": 2}]}));
    let a = service
        .send(
            Method::POST,
            "/v1/orders/SO-1/cancellations",
            Some(ADMIN),
            Some(&body),
            &[("idempotency-key", "used")],
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let before = database(&service);
    assert_eq!(jobs(&before), 2, "the accepted one queued its job");
    let a = service
        .send(
            Method::POST,
            "/v1/orders/SO-1/cancellations",
            Some(ADMIN),
            Some(&staff(json!({}))),
            &[("idempotency-key", "used")],
        )
        .await;
    assert_eq!(a.code(), "idempotency-key-reused", "{}", a.body);
    assert_unchanged(&before, &database(&service), "idempotency-key-reused");
    let a = service
        .call(Method::GET, "/v1/orders/SO-1", Some(ADMIN), None)
        .await;
    assert_eq!(a.body["cancellations"].as_array().map(Vec::len), Some(1));
}
