//! The console's plugin pages over plain HTTP: an upload as a browser
//! without scripts sends it (`multipart/form-data`), activation and
//! rollback, the registry's refusals next to their fields with nothing
//! stored, the CSRF token required, and a service key kept out as the API
//! keeps it out.

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
