//! The operator console at `/console`, against the real service on
//! 127.0.0.1: sign-in and its cookies, CSRF refusals and sign-out over
//! plain HTTP, and an operator's round in a real browser (headless
//! Chromium): sign in, the overview's queue, a failed job with its attempts
//! and ERP exchange, Retry, the state changing without a reload.

mod browser;
mod config;
mod jobs;
mod orders;
mod plugins;
mod round;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::service::{ADMIN, TestService, webhook_connection};
use browser::{Browser, CEILING};

/// A loopback ERP for the `webhook` plugin: while refusing it answers `400`
/// at once; otherwise each request waits for a permit the test hands out,
/// then gets `201` with reference `ERP-42`. A job delivered to it is held
/// `running` until the test lets it through.
struct GatedErp {
    addr: SocketAddr,
    refusing: Arc<AtomicBool>,
    gate: Arc<Semaphore>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Gate {
    refusing: Arc<AtomicBool>,
    gate: Arc<Semaphore>,
}

async fn gated_answer(State(gate): State<Gate>) -> axum::response::Response {
    if gate.refusing.load(Ordering::SeqCst) {
        return (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/json")],
            r#"{"message": "order ERP-1001 is unknown"}"#,
        )
            .into_response();
    }
    if let Ok(permit) = gate.gate.acquire().await {
        permit.forget();
    }
    (
        StatusCode::CREATED,
        [("content-type", "application/json")],
        r#"{"id": "ERP-42"}"#,
    )
        .into_response()
}

impl GatedErp {
    async fn start() -> GatedErp {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let gate = Gate {
            refusing: Arc::new(AtomicBool::new(true)),
            gate: Arc::new(Semaphore::new(0)),
        };
        let app = Router::new()
            .fallback(gated_answer)
            .with_state(gate.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        GatedErp {
            addr,
            refusing: gate.refusing,
            gate: gate.gate,
            task,
        }
    }
}

impl Drop for GatedErp {
    fn drop(&mut self) {
        self.gate.close();
        self.task.abort();
    }
}

/// A service whose plugin calls may wait on the gated ERP (the default
/// deadline is 10 s), the insite preset, and `OrderCancel` delivering
/// through the webhook to `base_url` with one attempt per round.
async fn service_with_one_attempt(base_url: &str, authority: &str) -> TestService {
    let service = TestService::start_configured(true, |config| {
        config.plugins.limits.deadline = Duration::from_secs(300);
    })
    .await;
    service.configure_insite().await;
    service
        .configure_erp_job(
            &webhook_connection(base_url, authority, "console-signing-key"),
            "webhook",
            json!({"maxAttempts": 1, "initialBackoffMs": 10, "maxBackoffMs": 20}),
        )
        .await;
    service
}

/// The job as the API shows it.
async fn job(service: &TestService, id: &str) -> Value {
    let a = service
        .call(
            Method::GET,
            &format!("/v1/admin/jobs/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a.body
}

/// Polls the API until the job is in `state` (bounded).
async fn wait_for_state(service: &TestService, id: &str, state: &str) -> Value {
    let started = Instant::now();
    loop {
        let job = job(service, id).await;
        if job["state"] == state {
            return job;
        }
        assert!(
            started.elapsed() < CEILING,
            "job {id} is {}, not {state}, after {CEILING:?}: {job}",
            job["state"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Cancels a new order; answers its job's id.
async fn cancel_new_order(service: &TestService, number: &str) -> String {
    crate::hotload_support::cancel_new_order(service, number).await
}

/// A client that shows redirects instead of following them, and keeps no
/// cookies of its own.
fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// The `Set-Cookie` header that sets `name`.
fn set_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
}

/// A cookie's value from its `Set-Cookie` header.
fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default()
}

/// The value of the first hidden `csrf` field of a page.
fn csrf_of(page: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = page.find(marker).expect("a CSRF field") + marker.len();
    page[start..]
        .split('"')
        .next()
        .expect("its value")
        .to_owned()
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// What a sign-in over plain HTTP answered: status, headers, body.
struct SignIn {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

/// Opens the sign-in page and posts `key` with the form's token, as a
/// browser would; `extra` headers go on both requests.
async fn sign_in(service: &TestService, key: &str, extra: &[(&str, &str)]) -> SignIn {
    let client = plain_client();
    let mut request = client.get(format!("{}/console/sign-in", service.base));
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let page = request.send().await.expect("sign-in page");
    assert_eq!(page.status(), StatusCode::OK);
    let token_cookie = cookie_value(
        set_cookie(page.headers(), "rescind_console_sign_in").expect("the sign-in cookie"),
    );
    let html = page.text().await.expect("page");
    let csrf = csrf_of(&html);
    assert_eq!(csrf, token_cookie, "the form carries the cookie's token");
    let mut request = client
        .post(format!("{}/console/sign-in", service.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("rescind_console_sign_in={token_cookie}"))
        .body(form(&[("key", key), ("csrf", &csrf)]));
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let answer = request.send().await.expect("sign in");
    SignIn {
        status: answer.status(),
        headers: answer.headers().clone(),
        body: answer.text().await.expect("body"),
    }
}

/// Signs in over plain HTTP; answers the session cookie's value.
async fn session_of(service: &TestService, key: &str) -> String {
    let signed_in = sign_in(service, key, &[]).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    cookie_value(set_cookie(&signed_in.headers, "rescind_console").expect("a session cookie"))
}

/// A console page with the session cookie: its status and text.
async fn page(service: &TestService, session: &str, path: &str) -> (StatusCode, String) {
    let answer = with_session(service, Method::GET, path, session, None).await;
    (answer.status(), answer.text().await.expect("page"))
}

/// What a console form post answered.
struct Posted {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Posted {
    /// Reads the answer: status, redirect target, page.
    async fn read(answer: reqwest::Response) -> Posted {
        Posted {
            status: answer.status(),
            location: answer
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|l| l.to_str().unwrap_or_default().to_owned()),
            body: answer.text().await.expect("page"),
        }
    }
}

/// Posts a console form with the session cookie.
async fn post(service: &TestService, session: &str, path: &str, fields: &[(&str, &str)]) -> Posted {
    Posted::read(with_session(service, Method::POST, path, session, Some(form(fields))).await).await
}

/// A console request with the session cookie.
async fn with_session(
    service: &TestService,
    method: Method,
    path: &str,
    session: &str,
    body: Option<String>,
) -> reqwest::Response {
    let mut request = plain_client()
        .request(method, format!("{}{path}", service.base))
        .header("cookie", format!("rescind_console={session}"));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
    }
    request.send().await.expect("console request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_http_only_strict_and_secure_only_over_tls() {
    let service = TestService::start_without_workers().await;
    let key = service.key("service", None).await;

    let plain = sign_in(&service, &key, &[]).await;
    assert_eq!(plain.status, StatusCode::SEE_OTHER, "{}", plain.body);
    assert_eq!(plain.headers[LOCATION], "/console");
    let cookie = set_cookie(&plain.headers, "rescind_console").expect("a session cookie");
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).skip(1).collect();
    assert!(attributes.contains(&"HttpOnly"), "{cookie}");
    assert!(attributes.contains(&"SameSite=Strict"), "{cookie}");
    assert!(attributes.contains(&"Path=/console"), "{cookie}");
    assert!(!attributes.contains(&"Secure"), "plain HTTP: {cookie}");
    // The key is nowhere in what the browser keeps.
    assert!(!cookie.contains(&key));

    let behind_tls = sign_in(&service, &key, &[("x-forwarded-proto", "https")]).await;
    assert_eq!(behind_tls.status, StatusCode::SEE_OTHER);
    let cookie = set_cookie(&behind_tls.headers, "rescind_console").expect("a session cookie");
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).skip(1).collect();
    assert!(attributes.contains(&"Secure"), "over TLS: {cookie}");
    assert!(attributes.contains(&"HttpOnly") && attributes.contains(&"SameSite=Strict"));

    // The overview answers to the session, and never shows the key.
    let session = cookie_value(set_cookie(&plain.headers, "rescind_console").unwrap());
    let overview = with_session(&service, Method::GET, "/console", &session, None).await;
    assert_eq!(overview.status(), StatusCode::OK);
    let csp = overview.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = overview.text().await.expect("page");
    assert!(html.contains(r#"<html lang="en">"#));
    assert!(!html.contains(&key));

    // `/console/` leads to the console too.
    let slash = plain_client()
        .get(format!("{}/console/", service.base))
        .send()
        .await
        .expect("request");
    assert_eq!(slash.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(slash.headers()[LOCATION], "/console");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_key_or_an_unknown_one_is_refused_at_sign_in() {
    let service = TestService::start_without_workers().await;
    let customer = service.key("customer", Some("C-1")).await;

    let refused = sign_in(&service, &customer, &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(set_cookie(&refused.headers, "rescind_console").is_none());
    assert!(
        refused
            .body
            .contains("A customer key cannot sign in to the console"),
        "{}",
        refused.body
    );
    assert!(!refused.body.contains(&customer), "the key is not echoed");

    let unknown = sign_in(&service, "rsk_not-a-key", &[]).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&unknown.headers, "rescind_console").is_none());
    assert!(
        unknown.body.contains("This key is not known"),
        "{}",
        unknown.body
    );

    // A sign-in without the form's token is refused before the key is read.
    let answer = plain_client()
        .post(format!("{}/console/sign-in", service.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("key", ADMIN)]))
        .send()
        .await
        .expect("sign in");
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(answer.headers(), "rescind_console").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_the_csrf_token_is_refused_and_changes_nothing() {
    // Nothing listens on the ERP's port: the one attempt fails.
    let closed = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let authority = closed.local_addr().expect("address").to_string();
    drop(closed);
    let service = service_with_one_attempt(&format!("http://{authority}"), &authority).await;
    let id = cancel_new_order(&service, "SO-CSRF").await;
    wait_for_state(&service, &id, "failed").await;
    let key = service.key("service", None).await;
    let session = session_of(&service, &key).await;
    let retry = format!("/console/jobs/{id}/retry");

    for body in [form(&[]), form(&[("csrf", "0123")])] {
        let answer = with_session(&service, Method::POST, &retry, &session, Some(body)).await;
        assert_eq!(answer.status(), StatusCode::FORBIDDEN);
        let text = answer.text().await.expect("page");
        assert!(text.contains("security token"), "{text}");
        assert_eq!(job(&service, &id).await["state"], "failed", "not retried");
    }
    // Sign-out without it does not end the session either.
    let answer = with_session(
        &service,
        Method::POST,
        "/console/sign-out",
        &session,
        Some(form(&[])),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    let still = with_session(&service, Method::GET, "/console/jobs", &session, None).await;
    assert_eq!(still.status(), StatusCode::OK);

    // With the page's token the same POST retries the job, and the audit
    // log records who did it.
    let page = with_session(
        &service,
        Method::GET,
        &format!("/console/jobs/{id}"),
        &session,
        None,
    )
    .await
    .text()
    .await
    .expect("page");
    let csrf = csrf_of(&page);
    let answer = with_session(
        &service,
        Method::POST,
        &retry,
        &session,
        Some(form(&[("csrf", &csrf)])),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    // A second attempt was made (it fails again: nothing listens).
    let started = Instant::now();
    while job(&service, &id).await["attempts"] != 2 {
        assert!(
            started.elapsed() < CEILING,
            "no second attempt after the retry"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let audit = service
        .call(Method::GET, "/v1/admin/audit", Some(ADMIN), None)
        .await;
    let entries = audit.body.to_string();
    assert!(entries.contains(&format!("retried job {id}")), "{entries}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_ends_its_console_session() {
    let service = TestService::start_without_workers().await;
    let created = service
        .call(
            Method::POST,
            "/v1/admin/api-keys",
            Some(ADMIN),
            Some(&json!({"name": "operator", "role": "service"})),
        )
        .await;
    let key = created.body["token"].as_str().expect("token").to_owned();
    let id = created.body["id"].as_str().expect("id").to_owned();
    let session = session_of(&service, &key).await;
    let page = with_session(&service, Method::GET, "/console", &session, None).await;
    assert_eq!(page.status(), StatusCode::OK);

    let revoked = service
        .call(
            Method::DELETE,
            &format!("/v1/admin/api-keys/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert!(revoked.status.is_success(), "{}", revoked.body);
    let page = with_session(&service, Method::GET, "/console", &session, None).await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()[LOCATION], "/console/sign-in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_finds_the_failed_job_retries_it_and_watches_it_succeed() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let erp = GatedErp::start().await;
    let service =
        service_with_one_attempt(&format!("http://{}", erp.addr), &erp.addr.to_string()).await;
    let id = cancel_new_order(&service, "SO-UI").await;
    wait_for_state(&service, &id, "failed").await;
    let service_key = service.key("service", None).await;
    let customer_key = service.key("customer", Some("C-1")).await;
    let base = &service.base;

    // Signed out, the console sends the browser to sign in.
    browser.goto(&format!("{base}/console")).await;
    assert_eq!(browser.path().await, "/console/sign-in");
    assert_eq!(
        browser.run("return document.documentElement.lang").await,
        "en"
    );
    assert_eq!(browser.text("label[for=key]").await, "API key");
    assert_eq!(browser.accessibility_gaps().await, Vec::<String>::new());

    // A wrong key: the refusal next to the field, which points at it.
    browser.type_into("#key", "rsk_wrong").await;
    browser
        .click_to_load("form[action='/console/sign-in'] button")
        .await;
    assert!(browser.text("#key-error").await.contains("not known"));
    assert_eq!(
        browser.attr("#key", "aria-describedby").await.as_deref(),
        Some("key-error")
    );
    assert_eq!(
        browser
            .run("return document.querySelector('#key').value")
            .await,
        ""
    );

    // A customer key is refused with its reason.
    browser.type_into("#key", &customer_key).await;
    browser
        .click_to_load("form[action='/console/sign-in'] button")
        .await;
    assert!(
        browser
            .text("#key-error")
            .await
            .contains("A customer key cannot sign in to the console")
    );
    assert_eq!(browser.path().await, "/console/sign-in");

    // The service key signs in, by keyboard (Enter in the field): the
    // overview shows the queue.
    browser.type_into("#key", &service_key).await;
    browser.press_to_load("#key", "\u{E007}").await;
    assert_eq!(browser.text("h1").await, "Overview");
    assert_eq!(browser.path().await, "/console");
    assert_eq!(
        browser.text("#queue-depth tr[data-state=failed] td").await,
        "1"
    );
    assert_eq!(
        browser.text("#queue-depth tr[data-state=queued] td").await,
        "0"
    );
    assert!(browser.text("#failed-last-hour").await.ends_with(": 1"));
    assert_eq!(browser.text("#health-status").await, "ok");
    let page = browser.client.source().await.expect("source");
    assert!(!page.contains(&service_key), "the key is not in the page");
    assert_eq!(browser.accessibility_gaps().await, Vec::<String>::new());
    // The first Tab reaches the skip link.
    browser.press("body", "\u{E004}").await;
    assert_eq!(
        browser
            .run("return document.activeElement.textContent")
            .await,
        "Skip to the content"
    );

    // Jobs, filtered to the failed ones, by keyboard-reachable controls.
    browser.click_to_load("nav a[href='/console/jobs']").await;
    assert_eq!(browser.text("h1").await, "Jobs");
    browser.click("#state option[value=failed]").await;
    browser.type_into("#definition", "OrderCancel").await;
    browser.click_to_load("form.filters button").await;
    assert!(
        browser
            .client
            .current_url()
            .await
            .expect("url")
            .query()
            .is_some_and(|q| q.contains("state=failed")),
    );
    assert_eq!(browser.accessibility_gaps().await, Vec::<String>::new());
    let row = format!("#jobs a[href='/console/jobs/{id}']");
    assert_eq!(browser.text(&row).await, id);
    browser.click_to_load(&row).await;

    // The job: its attempt, the plugin version, and the ERP exchange.
    browser
        .wait_for_text(&format!("[data-job-id='{id}']"), "failed")
        .await;
    assert_eq!(browser.text("#attempt-1").await, "Attempt 1");
    assert_eq!(browser.text(".attempt .outcome").await, "rejected");
    assert!(
        browser
            .text(".attempt code.version")
            .await
            .starts_with("sha256:")
    );
    assert!(browser.text(".exchange h4").await.contains("/hooks/cancel"));
    assert_eq!(browser.text(".exchange .erp-status").await, "HTTP 400");
    assert!(browser.text(".response-body").await.contains("is unknown"));
    assert_eq!(browser.accessibility_gaps().await, Vec::<String>::new());

    // Retry, the ERP now holding the delivery until the test lets it go.
    erp.refusing.store(false, Ordering::SeqCst);
    browser
        .click_to_load(&format!("form[data-retry-for='{id}'] button"))
        .await;
    assert!(browser.text(".notice").await.contains("queued again"));
    let retried = job(&service, &id).await;
    assert!(
        retried["state"] == "queued" || retried["state"] == "running",
        "{retried}"
    );
    // The page waits with the job running; mark this very page.
    let badge = format!("[data-job-id='{id}']");
    browser.wait_for_text(&badge, "running").await;
    browser
        .run("window.consoleMarker = 'the same page'; return null")
        .await;
    erp.gate.add_permits(1);
    wait_for_state(&service, &id, "succeeded").await;
    browser.wait_for_text(&badge, "succeeded").await;
    assert_eq!(
        browser.run("return window.consoleMarker || null").await,
        "the same page",
        "the state changed without a reload"
    );
    assert_eq!(
        browser
            .run(&format!(
                "return document.querySelector(\"form[data-retry-for='{id}']\").hidden"
            ))
            .await,
        true,
        "no Retry for a job that succeeded"
    );

    // Sign-out ends the session: the old cookie is refused.
    let old = browser
        .client
        .get_named_cookie("rescind_console")
        .await
        .expect("the session cookie")
        .value()
        .to_owned();
    browser.click_to_load(".who button").await;
    assert_eq!(browser.path().await, "/console/sign-in");
    browser.close().await;
    let page = with_session(&service, Method::GET, "/console", &old, None).await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()[LOCATION], "/console/sign-in");
    let poll = with_session(
        &service,
        Method::GET,
        &format!("/console/job-states?ids={id}"),
        &old,
        None,
    )
    .await;
    assert_eq!(poll.status(), StatusCode::UNAUTHORIZED);
}
