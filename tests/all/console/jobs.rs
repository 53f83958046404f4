//! The console's jobs over plain HTTP: the creation-time filter, a job
//! definition run now through the API's run route (its refusal next to the
//! parameter, the CSRF token required), and sign-in refused past its limit
//! of failures from one address.

use reqwest::header::{LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{cancel_new_order, csrf_of, form, page, session_of, sign_in, with_session};
use crate::service::{ADMIN, TestService, webhook_connection};

/// `YYYY-MM-DDTHH:MM` (UTC) `offset` from now.
fn local(offset: time::Duration) -> String {
    let t = time::OffsetDateTime::now_utc() + offset;
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_filtered_by_time_and_a_definition_runs_now() {
    let service = TestService::start_without_workers().await;
    service.configure_insite().await;
    service
        .configure_erp_job(
            &webhook_connection("http://127.0.0.1:9", "127.0.0.1:9", "k"),
            "webhook",
            json!({"maxAttempts": 1, "initialBackoffMs": 10, "maxBackoffMs": 20}),
        )
        .await;
    let first = cancel_new_order(&service, "SO-RUN").await;
    let key = service.key("service", None).await;
    let session = session_of(&service, &key).await;

    // The time filter: the job is in the last hour, not in the next.
    let hour = time::Duration::hours(1);
    let (status, html) = page(
        &service,
        &session,
        &format!("/console/jobs?from={}", local(-hour)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("/console/jobs/{first}")), "{html}");
    let (_, html) = page(
        &service,
        &session,
        &format!("/console/jobs?from={}", local(hour)),
    )
    .await;
    assert!(html.contains("No jobs match."));
    let (_, html) = page(
        &service,
        &session,
        &format!("/console/jobs?until={}", local(-hour)),
    )
    .await;
    assert!(html.contains("No jobs match."));
    let (status, html) = page(&service, &session, "/console/jobs?until=yesterday").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains(r#"aria-describedby="until-error""#), "{html}");
    assert!(html.contains("is not a date and time"));

    // Run now: the definition's parameters asked by their prompts.
    let (status, html) = page(&service, &session, "/console/jobs/run").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"<option value="OrderCancel">"#), "{html}");
    let (_, html) = page(
        &service,
        &session,
        "/console/jobs/run?definition=OrderCancel",
    )
    .await;
    assert!(html.contains(r#"name="parameter.OrderNumber""#), "{html}");
    let csrf = csrf_of(&html);
    let run = |fields: Vec<(&'static str, String)>| {
        let service = &service;
        let session = session.clone();
        async move {
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            with_session(
                service,
                Method::POST,
                "/console/jobs/run",
                &session,
                Some(form(&pairs)),
            )
            .await
        }
    };
    // An order without a cancellation: refused next to the parameter.
    let refused = run(vec![
        ("csrf", csrf.clone()),
        ("definition", "OrderCancel".to_owned()),
        ("parameter.OrderNumber", "SO-NONE".to_owned()),
    ])
    .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.expect("page");
    assert!(html.contains(r#"id="parameter-0-error""#), "{html}");
    // Without the CSRF token: refused, no job.
    let refused = run(vec![
        ("definition", "OrderCancel".to_owned()),
        ("parameter.OrderNumber", "SO-RUN".to_owned()),
    ])
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let jobs = service
        .call(
            Method::GET,
            "/v1/admin/jobs?orderNumber=SO-RUN",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(jobs.body.as_array().map(Vec::len), Some(1));
    // Run: a second job for the order, and its page.
    let ran = run(vec![
        ("csrf", csrf.clone()),
        ("definition", "OrderCancel".to_owned()),
        ("parameter.OrderNumber", "SO-RUN".to_owned()),
    ])
    .await;
    assert_eq!(ran.status(), StatusCode::SEE_OTHER);
    let location = ran.headers()[LOCATION].to_str().unwrap().to_owned();
    let jobs = service
        .call(
            Method::GET,
            "/v1/admin/jobs?orderNumber=SO-RUN",
            Some(ADMIN),
            None,
        )
        .await;
    let ids: Vec<&str> = jobs
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|j| j["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 2, "{}", jobs.body);
    let second = ids.iter().find(|id| **id != first).expect("the new job");
    assert_eq!(location, format!("/console/jobs/{second}?ran=1"));
    let (_, html) = page(&service, &session, &location).await;
    assert!(html.contains("The run is queued as this job."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_is_refused_after_ten_failures_from_one_address() {
    let service = TestService::start_without_workers().await;
    let key = service.key("admin", None).await;
    for n in 0..10 {
        let wrong = sign_in(&service, &format!("rsk_wrong-{n}"), &[]).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "failure {n}");
    }
    // Now even the right key is refused, with how long to wait.
    let limited = sign_in(&service, &key, &[]).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    assert!(
        limited
            .body
            .contains("Too many failed sign-ins from your address")
    );
    assert!(limited.body.contains(r#"id="key-error""#));
    let wait: u64 = limited.headers[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .expect("seconds");
    assert!(wait > 0 && wait <= 300, "{wait}");
    assert!(
        limited
            .headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .all(|c| !c.to_str().unwrap_or("").starts_with("rescind_console=")),
        "no session"
    );
}
