//! The console's plugin pages over plain HTTP: an upload as a browser
//! without scripts sends it (`multipart/form-data`), activation and
//! rollback, the registry's refusals next to their fields with nothing
//! stored, a shadow run started, reported and stopped, the CSRF token
//! required, and a service key kept out as the API keeps it out.

use reqwest::{Method, StatusCode};

use super::{Posted, csrf_of, page, post, session_of};
use crate::hotload_support::plugin;
use crate::registry_support::{trivial, version_of, webhook};
use crate::service::{ADMIN, TestService};

const NAME: &str = "console-erp";

/// The text of a page's element with this `id` (up to its closing tag).
fn element_text(page: &str, id: &str) -> Option<String> {
    let start = page.find(&format!("id=\"{id}\""))?;
    let open_end = start + page[start..].find('>')? + 1;
    let close = open_end + page[open_end..].find("</")?;
    Some(page[open_end..close].to_owned())
}

/// A `multipart/form-data` body of text fields and a `.wasm` file, as a
/// browser sends the upload form: its content type and bytes.
fn multipart(fields: &[(&str, &str)], file: Option<&[u8]>) -> (String, Vec<u8>) {
    let boundary = "----console-test-boundary-7d0c";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some(bytes) = file {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"plugin.wasm\"\r\nContent-Type: application/wasm\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(
    service: &TestService,
    session: &str,
    fields: &[(&str, &str)],
    file: Option<&[u8]>,
) -> Posted {
    let (content_type, body) = multipart(fields, file);
    let answer = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(format!("{}/console/plugins", service.base))
        .header("cookie", format!("rescind_console={session}"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("upload");
    Posted::read(answer).await
}

async fn plugin_count(service: &TestService) -> usize {
    let list = service
        .call(Method::GET, "/v1/admin/plugins", Some(ADMIN), None)
        .await;
    list.body.as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_uploads_activates_and_rolls_back_a_plugin_and_sees_refusals_by_their_fields() {
    let service = TestService::start_without_workers().await;
    let created = service
        .call(
            Method::POST,
            "/v1/admin/api-keys",
            Some(ADMIN),
            Some(&serde_json::json!({"name": "operator-ann", "role": "admin"})),
        )
        .await;
    let key = created.body["token"].as_str().expect("token").to_owned();
    let session = session_of(&service, &key).await;
    let before = plugin_count(&service).await;

    let (status, html) = page(&service, &session, "/console/plugins").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"<a href="/console/plugins" aria-current="page">Plugins</a>"#));
    assert!(html.contains(r#"enctype="multipart/form-data""#));
    let csrf = csrf_of(&html);
    let (v1, v2) = (version_of(&webhook()), version_of(&trivial()));

    // Refused uploads store nothing, each refusal by its field.
    let refused = upload(
        &service,
        &session,
        &[("csrf", &csrf), ("name", NAME), ("activate", "true")],
        Some(b"not a component"),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        element_text(&refused.body, "file-error").is_some(),
        "{}",
        refused.body
    );
    assert!(
        refused
            .body
            .contains(r#"aria-describedby="file-hint file-error""#)
    );
    assert!(
        refused.body.contains(&format!(r#"value="{NAME}""#)),
        "the name is kept"
    );
    let refused = upload(
        &service,
        &session,
        &[
            ("csrf", &csrf),
            ("name", "Not A Name!"),
            ("activate", "true"),
        ],
        Some(&webhook()),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        element_text(&refused.body, "name-error").is_some(),
        "{}",
        refused.body
    );
    let refused = upload(
        &service,
        &session,
        &[("csrf", &csrf), ("name", "")],
        Some(&webhook()),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        element_text(&refused.body, "name-error").as_deref(),
        Some("Enter the plugin's name.")
    );
    // Without the CSRF token: refused before anything is read into the
    // registry.
    for token in ["", "0123"] {
        let refused = upload(
            &service,
            &session,
            &[("csrf", token), ("name", NAME), ("activate", "true")],
            Some(&webhook()),
        )
        .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(refused.body.contains("security token"));
    }
    assert_eq!(plugin_count(&service).await, before, "nothing stored");

    // Two versions, the second active.
    for (bytes, version) in [(webhook(), &v1), (trivial(), &v2)] {
        let stored = upload(
            &service,
            &session,
            &[("csrf", &csrf), ("name", NAME), ("activate", "true")],
            Some(&bytes),
        )
        .await;
        assert_eq!(stored.status, StatusCode::SEE_OTHER, "{}", stored.body);
        assert_eq!(
            stored.location.as_deref(),
            Some(format!("/console/plugins/{NAME}?uploaded={version}").as_str())
        );
    }
    let view = plugin(&service, NAME).await.body;
    assert_eq!(view["active"], v2.as_str());
    assert_eq!(
        view["versions"][0]["uploadedBy"]
            .as_str()
            .map(|b| b.contains("operator-ann")),
        Some(true),
        "{view}"
    );

    // The plugin page: both versions with who, size and signature; the
    // older one offers the rollback.
    let path = format!("/console/plugins/{NAME}");
    let (status, html) = page(&service, &session, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!(r#"<tr data-version="{v1}">"#)));
    assert!(html.contains(&format!(r#"<td class="num">{}</td>"#, webhook().len())));
    assert!(html.contains("unsigned"));
    assert!(html.contains("operator-ann"));
    assert!(
        html.contains(r#"aria-label="Roll back to version 1""#),
        "{html}"
    );
    assert!(html.contains(r#"id="history""#));

    // The rollback: the API's activation, recorded as a rollback.
    let activate = format!("{path}/activate");
    let rolled = post(
        &service,
        &session,
        &activate,
        &[("csrf", &csrf), ("version", &v1)],
    )
    .await;
    assert_eq!(rolled.status, StatusCode::SEE_OTHER, "{}", rolled.body);
    let view = plugin(&service, NAME).await.body;
    assert_eq!(view["active"], v1.as_str());
    let last = view["history"]
        .as_array()
        .and_then(|h| h.last())
        .cloned()
        .expect("history");
    assert_eq!(last["action"], "rolled-back", "{view}");
    assert!(
        last["by"]
            .as_str()
            .is_some_and(|b| b.contains("operator-ann")),
        "{view}"
    );
    let (_, html) = page(
        &service,
        &session,
        rolled.location.as_deref().expect("location"),
    )
    .await;
    assert!(html.contains(&format!("Version {v1} is active.")));
    assert!(html.contains("rolled-back"));

    // Refusals of the activation by field; nothing switched.
    let unknown = format!("sha256:{}", "0".repeat(64));
    let refused = post(
        &service,
        &session,
        &activate,
        &[("csrf", &csrf), ("version", &unknown)],
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        element_text(&refused.body, "version-error").is_some(),
        "{}",
        refused.body
    );
    let refused = post(
        &service,
        &session,
        &activate,
        &[
            ("csrf", &csrf),
            ("version", &v2),
            ("observeJobs", "0"),
            ("maxFailureRate", "2"),
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
        element_text(&refused.body, "guard-error").is_some(),
        "{}",
        refused.body
    );
    let refused = post(&service, &session, &activate, &[("version", &v2)]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(plugin(&service, NAME).await.body["active"], v1.as_str());

    // The audit log names the operator's key for each write.
    let audit = service
        .call(Method::GET, "/v1/admin/audit", Some(ADMIN), None)
        .await
        .body
        .to_string();
    assert!(
        audit.contains(&format!("uploaded plugin \\\"{NAME}\\\"")),
        "{audit}"
    );
    assert!(
        audit.contains(&format!("activated plugin \\\"{NAME}\\\" version {v1}")),
        "{audit}"
    );
    assert!(audit.contains("operator-ann"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_key_cannot_reach_the_plugin_pages() {
    let service = TestService::start_without_workers().await;
    let key = service.key("service", None).await;
    let session = session_of(&service, &key).await;
    let (_, overview) = page(&service, &session, "/console").await;
    assert!(
        !overview.contains(r#"href="/console/plugins""#),
        "no link for a service key"
    );
    let csrf = csrf_of(&overview);
    let (status, html) = page(&service, &session, "/console/plugins").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        html.contains("A service key may not manage plugins"),
        "{html}"
    );
    let refused = upload(
        &service,
        &session,
        &[("csrf", &csrf), ("name", NAME), ("activate", "true")],
        Some(&webhook()),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let refused = post(
        &service,
        &session,
        &format!("/console/plugins/{NAME}/activate"),
        &[("csrf", &csrf), ("version", &version_of(&webhook()))],
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(plugin(&service, NAME).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_starts_a_shadow_run_reads_its_report_and_stops_the_next_one() {
    use crate::hotload_support::{PLUGIN, configure, echoing_erp, upload as api_upload};
    use crate::plugin_shadow::{compared, deliver, shadow};
    use crate::registry_support::component;

    let service = TestService::start().await;
    let erp = echoing_erp().await;
    let active = api_upload(&service, PLUGIN, webhook(), true).await;
    assert_eq!(active.status, StatusCode::CREATED, "{}", active.body);
    configure(&service, &erp, PLUGIN, 1).await;
    let other = api_upload(
        &service,
        PLUGIN,
        component(rescind_test_artifacts::PERSONALIZATION),
        false,
    )
    .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.body);
    let other = other.body["version"].as_str().expect("version").to_owned();
    let session = session_of(&service, ADMIN).await;
    let plugin_page = format!("/console/plugins/{PLUGIN}");

    let (status, html) = page(&service, &session, &plugin_page).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        element_text(&html, "shadow-none").as_deref(),
        Some("No shadow run yet.")
    );
    // Only the inactive version is offered.
    assert!(
        html.contains(&format!(r#"<option value="{other}""#)),
        "{html}"
    );
    let csrf = csrf_of(&html);

    // Refused: a job count out of range, next to its field; no run starts.
    let refused = post(
        &service,
        &session,
        &format!("{plugin_page}/shadow"),
        &[("csrf", &csrf), ("version", &other), ("jobs", "0")],
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = element_text(&refused.body, "shadow-jobs-error").expect("an error by the field");
    assert!(message.contains("1 to 1000"), "{message}");
    assert!(
        refused
            .body
            .contains(r#"aria-describedby="shadow-jobs-error""#)
    );
    let none = shadow(&service, Method::GET, None).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND, "{}", none.body);
    // Refused: no CSRF token.
    let refused = post(
        &service,
        &session,
        &format!("{plugin_page}/shadow"),
        &[("version", &other), ("jobs", "2")],
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let none = shadow(&service, Method::GET, None).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND, "{}", none.body);

    // Started from the page; two jobs later its report is on the page.
    let started = post(
        &service,
        &session,
        &format!("{plugin_page}/shadow"),
        &[("csrf", &csrf), ("version", &other), ("jobs", "2")],
    )
    .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let (_, html) = page(&service, &session, started.location.as_deref().unwrap()).await;
    assert!(html.contains("The shadow run started"), "{html}");
    assert_eq!(
        element_text(&html, "shadow-state").as_deref(),
        Some("running")
    );
    let jobs = deliver(&service, "CONSOLE-SHADOW", 2).await;
    compared(&service, 2).await;
    let (_, html) = page(&service, &session, &plugin_page).await;
    assert_eq!(
        element_text(&html, "shadow-state").as_deref(),
        Some("complete")
    );
    let summary = element_text(&html, "shadow-compared").expect("the counts");
    assert_eq!(
        summary.split_whitespace().collect::<Vec<_>>().join(" "),
        "2 of 2 jobs: 0 the same, 2 different"
    );
    for job in &jobs {
        assert!(
            html.contains(&format!(r#"<a href="/console/jobs/{job}">"#)),
            "each job links to its page: {html}"
        );
    }
    // What differs is shown, request by request.
    assert!(html.contains("<summary>different</summary>"), "{html}");
    assert!(html.contains("active: <code>POST "), "{html}");
    assert!(
        !html.contains("shadow-stop-form"),
        "a complete run has nothing to stop"
    );

    // A new run, stopped from the page: it takes no more jobs.
    let csrf = csrf_of(&html);
    let started = post(
        &service,
        &session,
        &format!("{plugin_page}/shadow"),
        &[("csrf", &csrf), ("version", &other), ("jobs", "5")],
    )
    .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let (_, html) = page(&service, &session, &plugin_page).await;
    assert!(html.contains("shadow-stop-form"), "{html}");
    let stopped = post(
        &service,
        &session,
        &format!("{plugin_page}/shadow/stop"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(stopped.status, StatusCode::SEE_OTHER, "{}", stopped.body);
    let (_, html) = page(&service, &session, stopped.location.as_deref().unwrap()).await;
    assert!(html.contains("The shadow run is stopped"), "{html}");
    assert_eq!(
        element_text(&html, "shadow-state").as_deref(),
        Some("stopped")
    );
    deliver(&service, "CONSOLE-SHADOW-AFTER", 1).await;
    let report = shadow(&service, Method::GET, None).await;
    assert_eq!(report.body["state"], "stopped", "{}", report.body);
    assert_eq!(
        report.body["results"],
        serde_json::json!([]),
        "{}",
        report.body
    );
}
