//! The console's configuration over plain HTTP: each form goes through the
//! API's route (its validation, its audit log under the operator's key),
//! its refusals shown by their fields; connection secrets never come back
//! to a page; a created key's token is shown once; a service key is kept
//! out of every configuration page and form; each form kind refuses a post
//! without the CSRF token.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{csrf_of, page, post, session_of};
use crate::service::{ADMIN, TestService};

async fn api(service: &TestService, path: &str) -> serde_json::Value {
    let answer = service.call(Method::GET, path, Some(ADMIN), None).await;
    assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
    answer.body
}

/// An admin key named `operator-cy`, signed in: the session.
async fn admin_session(service: &TestService) -> String {
    let created = service
        .call(
            Method::POST,
            "/v1/admin/api-keys",
            Some(ADMIN),
            Some(&json!({"name": "operator-cy", "role": "admin"})),
        )
        .await;
    let key = created.body["token"].as_str().expect("token").to_owned();
    session_of(service, &key).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presets_statuses_mappings_and_websites_are_set_through_the_api() {
    let service = TestService::start_without_workers().await;
    let session = admin_session(&service).await;
    let (status, html) = page(&service, &session, "/console/config").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(r#"href="/console/config" aria-current="page">Configuration</a>"#));
    let csrf = csrf_of(&html);

    // The websphere preset.
    let applied = post(
        &service,
        &session,
        "/console/config/preset",
        &[("csrf", &csrf), ("preset", "websphere")],
    )
    .await;
    assert_eq!(applied.status, StatusCode::SEE_OTHER, "{}", applied.body);
    let websphere = api(&service, "/v1/admin/settings").await;
    let (_, html) = page(&service, &session, applied.location.as_deref().unwrap()).await;
    assert!(html.contains("Saved: the websphere preset."));
    for status in websphere["cancellableOrderStatuses"].as_array().unwrap() {
        assert!(html.contains(status.as_str().unwrap()), "{html}");
    }
    let refused = post(
        &service,
        &session,
        "/console/config/preset",
        &[("csrf", &csrf), ("preset", "nope")],
    )
    .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert!(
        refused.body.contains(r#"id="preset-refused""#),
        "{}",
        refused.body
    );

    // Cancel settings: refused by field (a blank cancelled status), then set.
    let refused = post(
        &service,
        &session,
        "/console/config/settings",
        &[
            ("csrf", &csrf),
            ("cancellableOrderStatuses", "Submitted\nPending"),
            ("cancelledStatus", ""),
        ],
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains(r#"id="cancelledStatus-error""#),
        "{}",
        refused.body
    );
    assert_eq!(
        api(&service, "/v1/admin/settings").await,
        websphere,
        "nothing changed"
    );
    let saved = post(
        &service,
        &session,
        "/console/config/settings",
        &[
            ("csrf", &csrf),
            ("cancellableOrderStatuses", "Submitted\n\nPending "),
            ("cancelledStatus", "X"),
        ],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let settings = api(&service, "/v1/admin/settings").await;
    assert_eq!(
        settings["cancellableOrderStatuses"],
        json!(["Submitted", "Pending"])
    );
    assert_eq!(settings["cancelledStatus"], "X");

    // Status mappings: a row with a code and no status is refused next to
    // that row's field; blank rows are dropped.
    let refused = post(
        &service,
        &session,
        "/console/config/status-mappings",
        &[
            ("csrf", &csrf),
            ("rows", "2"),
            ("erpCode-0", "A"),
            ("status-0", ""),
            ("allow-0", "true"),
        ],
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("statusMappings[0].status"),
        "{}",
        refused.body
    );
    let saved = post(
        &service,
        &session,
        "/console/config/status-mappings",
        &[
            ("csrf", &csrf),
            ("rows", "3"),
            ("erpCode-0", "A"),
            ("status-0", "Open"),
            ("allow-0", "true"),
            ("erpCode-2", "S"),
            ("status-2", "Shipped"),
        ],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(
        api(&service, "/v1/admin/status-mappings").await,
        json!([
            {"erpCode": "A", "status": "Open", "allowCancellation": true},
            {"erpCode": "S", "status": "Shipped", "allowCancellation": false}
        ])
    );

    // A website, then its switch turned off.
    let refused = post(
        &service,
        &session,
        "/console/config/websites",
        &[("csrf", &csrf), ("website-name", " ")],
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains(r#"id="website-name-error""#));
    let saved = post(
        &service,
        &session,
        "/console/config/websites",
        &[
            ("csrf", &csrf),
            ("website-name", "shop-de"),
            ("website-allow", "true"),
        ],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(
        api(&service, "/v1/admin/websites/shop-de").await["allowCancellationRequest"],
        true
    );
    let (_, html) = page(&service, &session, "/console/config").await;
    assert!(html.contains(r#"<tr data-website="shop-de">"#));
    let saved = post(
        &service,
        &session,
        "/console/config/websites",
        &[("csrf", &csrf), ("name", "shop-de")],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert_eq!(
        api(&service, "/v1/admin/websites/shop-de").await["allowCancellationRequest"],
        false
    );

    // Each write is in the audit log under the operator's key, which the
    // console's audit page shows.
    let (status, html) = page(&service, &session, "/console/config/audit").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("applied the preset"), "{html}");
    assert!(
        html.contains("website &quot;shop-de&quot;") || html.contains("website \"shop-de\""),
        "{html}"
    );
    assert!(html.contains("operator-cy"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_keep_their_secrets_write_only_and_definitions_name_what_exists() {
    let service = TestService::start_without_workers().await;
    let session = admin_session(&service).await;
    let (_, html) = page(&service, &session, "/console/config/connections").await;
    let csrf = csrf_of(&html);

    let refused = post(
        &service,
        &session,
        "/console/config/connections",
        &[
            ("csrf", &csrf),
            ("name", "erp"),
            ("baseUrl", "ftp://x"),
            ("allowedHosts", ""),
        ],
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains(r#"id="baseUrl-error""#),
        "{}",
        refused.body
    );
    let secret = "s3cr3t-value-never-shown";
    let saved = post(
        &service,
        &session,
        "/console/config/connections",
        &[
            ("csrf", &csrf),
            ("name", "erp"),
            ("baseUrl", "http://127.0.0.1:9"),
            ("allowedHosts", "127.0.0.1:9"),
            ("settings", "path=/hooks/cancel"),
            ("secrets", &format!("signingKey={secret}")),
        ],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let connection = api(&service, "/v1/admin/connections/erp").await;
    assert_eq!(connection["secrets"], json!(["signingKey"]));
    assert_eq!(connection["settings"], json!({"path": "/hooks/cancel"}));
    let (_, html) = page(&service, &session, saved.location.as_deref().unwrap()).await;
    assert!(html.contains(r#"id="stored-secrets""#) && html.contains("signingKey"));
    assert!(
        !html.contains(secret),
        "a secret never comes back to a page"
    );
    // Saved again without secrets: the stored ones stay.
    let saved = post(
        &service,
        &session,
        "/console/config/connections",
        &[
            ("csrf", &csrf),
            ("name", "erp"),
            ("baseUrl", "http://127.0.0.1:9"),
            ("allowedHosts", "127.0.0.1:9"),
        ],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert_eq!(
        api(&service, "/v1/admin/connections/erp").await["secrets"],
        json!(["signingKey"])
    );

    // A job definition: an unknown plugin refused by its field; then one
    // naming the bundled webhook plugin, with its parameter.
    let (_, html) = page(&service, &session, "/console/config/job-definitions").await;
    assert!(
        html.contains(r#"value="OrderNumber""#),
        "a new definition starts with OrderNumber"
    );
    let fields = |processor: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("name", "OrderCancel".to_owned()),
            ("jobType", "Execution".to_owned()),
            ("connection", "erp".to_owned()),
            ("integrationProcessor", processor.to_owned()),
            ("appliesTo", "any".to_owned()),
            ("enabled", "true".to_owned()),
            ("maxAttempts", "3".to_owned()),
            ("initialBackoffMs", "10".to_owned()),
            ("maxBackoffMs", "20".to_owned()),
            ("params", "1".to_owned()),
            ("paramName-0", "OrderNumber".to_owned()),
            ("valueType-0", "String".to_owned()),
            ("prompt-0", "Order Number".to_owned()),
        ]
    };
    let sent = fields("no-such-plugin");
    let pairs: Vec<(&str, &str)> = sent.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = post(
        &service,
        &session,
        "/console/config/job-definitions",
        &pairs,
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains(r#"id="integrationProcessor-error""#),
        "{}",
        refused.body
    );
    let sent = fields("webhook");
    let pairs: Vec<(&str, &str)> = sent.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let saved = post(
        &service,
        &session,
        "/console/config/job-definitions",
        &pairs,
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let definition = api(&service, "/v1/admin/job-definitions/OrderCancel").await;
    assert_eq!(definition["integrationProcessor"], "webhook");
    assert_eq!(definition["retry"]["maxAttempts"], 3);
    assert_eq!(definition["parameters"][0]["prompt"], "Order Number");
    let (_, html) = page(&service, &session, saved.location.as_deref().unwrap()).await;
    assert!(html.contains("Edit job definition OrderCancel"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_key_is_shown_once_and_revoked_from_the_console() {
    let service = TestService::start_without_workers().await;
    let session = admin_session(&service).await;
    let (_, html) = page(&service, &session, "/console/config/api-keys").await;
    let csrf = csrf_of(&html);
    let refused = post(
        &service,
        &session,
        "/console/config/api-keys",
        &[("csrf", &csrf), ("keyName", "shop"), ("role", "customer")],
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains(r#"id="customerNumber-error""#),
        "{}",
        refused.body
    );
    let created = post(
        &service,
        &session,
        "/console/config/api-keys",
        &[
            ("csrf", &csrf),
            ("keyName", "shop"),
            ("role", "customer"),
            ("customerNumber", "C-9"),
        ],
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let start = created
        .body
        .find(r#"<code id="new-token">"#)
        .expect("the token")
        + r#"<code id="new-token">"#.len();
    let token = &created.body[start..start + created.body[start..].find('<').unwrap()];
    // The token works, and is not on the next page.
    let mine = service
        .call(Method::GET, "/v1/orders/SO-X", Some(token), None)
        .await;
    assert_eq!(
        mine.status,
        StatusCode::FORBIDDEN,
        "a customer key: {}",
        mine.body
    );
    let (_, html) = page(&service, &session, "/console/config/api-keys").await;
    assert!(!html.contains(token));
    let keys = api(&service, "/v1/admin/api-keys").await;
    let id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "shop")
        .and_then(|k| k["id"].as_str())
        .expect("the key")
        .to_owned();
    let revoked = post(
        &service,
        &session,
        &format!("/console/config/api-keys/{id}/revoke"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
    let after = service
        .call(Method::GET, "/v1/orders/SO-X", Some(token), None)
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_key_is_kept_out_and_every_form_needs_its_csrf_token() {
    let service = TestService::start_without_workers().await;
    let key = service.key("service", None).await;
    let session = session_of(&service, &key).await;
    let (_, overview) = page(&service, &session, "/console").await;
    assert!(!overview.contains(r#"href="/console/config""#));
    let csrf = csrf_of(&overview);
    for path in [
        "/console/config",
        "/console/config/connections",
        "/console/config/connections?name=erp",
        "/console/config/job-definitions",
        "/console/config/api-keys",
        "/console/config/audit",
    ] {
        let (status, html) = page(&service, &session, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(
            html.contains("A service key may not change the configuration"),
            "{path}: {html}"
        );
    }
    let writes: &[(&str, &[(&str, &str)])] = &[
        ("/console/config/preset", &[("preset", "websphere")]),
        (
            "/console/config/settings",
            &[("cancellableOrderStatuses", "A"), ("cancelledStatus", "X")],
        ),
        (
            "/console/config/status-mappings",
            &[("rows", "1"), ("erpCode-0", "A"), ("status-0", "A")],
        ),
        ("/console/config/websites", &[("website-name", "w")]),
        (
            "/console/config/connections",
            &[
                ("name", "erp"),
                ("baseUrl", "http://127.0.0.1:9"),
                ("allowedHosts", "127.0.0.1:9"),
            ],
        ),
        (
            "/console/config/job-definitions",
            &[
                ("name", "D"),
                ("connection", "erp"),
                ("integrationProcessor", "webhook"),
            ],
        ),
        (
            "/console/config/api-keys",
            &[("keyName", "k"), ("role", "admin")],
        ),
        ("/console/config/api-keys/some-id/revoke", &[]),
    ];
    let audit_before = api(&service, "/v1/admin/audit").await;
    for (path, fields) in writes {
        let mut with = vec![("csrf", csrf.as_str())];
        with.extend_from_slice(fields);
        let refused = post(&service, &session, path, &with).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            refused.body
        );
        assert!(
            refused.body.contains("may not change the configuration"),
            "{path}"
        );
    }
    // An admin's session without the token: every form kind refused.
    let admin = admin_session(&service).await;
    for (path, fields) in writes {
        for token in ["", "0123"] {
            let mut with = vec![("csrf", token)];
            with.extend_from_slice(fields);
            let refused = post(&service, &admin, path, &with).await;
            assert_eq!(
                refused.status,
                StatusCode::FORBIDDEN,
                "{path}: {}",
                refused.body
            );
            assert!(refused.body.contains("security token"), "{path}");
        }
    }
    // Nothing was written by any of them (the admin key's creation aside).
    let audit_after = api(&service, "/v1/admin/audit").await;
    assert_eq!(
        audit_after.as_array().unwrap().len(),
        audit_before.as_array().unwrap().len() + 1,
        "{audit_after}"
    );
}
