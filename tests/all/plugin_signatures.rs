//! Plugin signatures through the running service, on every path to active
//! code once the host trusts a key: activation of a stored version, a
//! pinned `name@sha256` in a job definition (at `PUT` and when a job runs),
//! the restore at start; versions stored before keys were configured run
//! only once signed (an upload of the same bytes with a signature attaches
//! it). Without keys, `/readyz` says plugins run unsigned. The upload and
//! watched-folder paths are in `hotload_api.rs` and `registry_watch.rs`;
//! `rescind plugin keygen`, `sign` and `push` are run here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser as _;
use reqwest::{Method, StatusCode};
use rescind_host::cli::plugin::{PushArgs, push};
use rescind_host::cli::{Cli, Exit};
use rescind_host::plugins::registry::{PluginSigningKey, TrustedKey};
use serde_json::{Value, json};

use crate::hotload_support::{
    activate, cancel_new_order, echoing_erp, plugin, settled_job, upload, upload_with,
};
use crate::registry_support::{trivial, version_of, webhook};
use crate::service::{ADMIN, TestService, webhook_connection};

const NAME: &str = "erp";

fn operator() -> PluginSigningKey {
    PluginSigningKey::parse(&hex::encode([21u8; 32])).unwrap()
}

/// A service that trusts the operator's key once `trust` is set (a restart
/// reads it again).
async fn service(workers: bool, trust: &Arc<AtomicBool>) -> TestService {
    let trust = Arc::clone(trust);
    TestService::start_configured(workers, move |config| {
        if trust.load(Ordering::SeqCst) {
            config.plugins = config.plugins.clone().trust([operator().public_key()]);
        }
    })
    .await
}

/// The `/readyz` warnings' codes and details.
async fn readiness_warnings(service: &TestService) -> Vec<(String, String)> {
    let a = service.call(Method::GET, "/readyz", None, None).await;
    a.body["warnings"]
        .as_array()
        .map(|warnings| {
            warnings
                .iter()
                .map(|w| {
                    (
                        w["code"].as_str().unwrap().to_owned(),
                        w["detail"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn field_message(answer: &Value) -> (String, String) {
    (
        answer["errors"][0]["field"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        answer["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
    )
}

async fn put_definition(service: &TestService, processor: &str) -> crate::service::Answer {
    service
        .call(
            Method::PUT,
            "/v1/admin/job-definitions/OrderCancel",
            Some(ADMIN),
            Some(&json!({"jobType": "Execution", "connection": "erp",
                         "integrationProcessor": processor, "enabled": true,
                         "retry": {"maxAttempts": 1, "initialBackoffMs": 10, "maxBackoffMs": 20}})),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_stored_before_keys_were_configured_runs_only_once_signed() {
    let trust = Arc::new(AtomicBool::new(false));
    let service = service(false, &trust).await;
    // Without keys the host says so.
    let warnings = readiness_warnings(&service).await;
    assert!(
        warnings
            .iter()
            .any(|(code, detail)| code == "plugin-signatures-not-checked"
                && detail.contains("--trusted-key")),
        "{warnings:?}"
    );
    let (old, other) = (trivial(), webhook());
    let (v_old, v_other) = (version_of(&old), version_of(&other));
    assert_eq!(
        upload(&service, NAME, old.clone(), true).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        upload(&service, NAME, other.clone(), false).await.status,
        StatusCode::CREATED
    );

    // The operator starts trusting a key.
    trust.store(true, Ordering::SeqCst);
    let service = service.restart().await;
    // The restore at start refused the unsigned active version.
    let view = plugin(&service, NAME).await;
    assert_eq!(view.body["active"], Value::Null, "{}", view.body);
    let warnings = readiness_warnings(&service).await;
    assert!(
        !warnings
            .iter()
            .any(|(code, _)| code == "plugin-signatures-not-checked"),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|(code, detail)| code == "plugin-version-withheld"
                && detail.contains(&v_old)
                && detail.contains("rescind plugin sign")),
        "{warnings:?}"
    );

    // Activation of a stored, unsigned version: refused.
    for version in [&v_old, &v_other] {
        let a = activate(&service, NAME, version, None).await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
        let (field, message) = field_message(&a.body);
        assert_eq!(field, "version");
        assert!(
            message.contains("carries no signature by a trusted key"),
            "{message}"
        );
    }
    // A pinned reference to it in a job definition: refused.
    let a = service
        .call(
            Method::PUT,
            "/v1/admin/connections/erp",
            Some(ADMIN),
            Some(&json!({"baseUrl": "http://127.0.0.1:9", "allowedHosts": ["127.0.0.1:9"]})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let pinned = format!("{NAME}@{v_old}");
    let a = put_definition(&service, &pinned).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    let (field, message) = field_message(&a.body);
    assert_eq!(field, "integrationProcessor");
    assert!(message.contains("carries no signature"), "{message}");

    // Re-signing: the same bytes, with a signature for another name, are
    // refused; with the signature for this name it is attached (200: the
    // bytes were stored), without activating.
    let wrong = upload_with(
        &service,
        NAME,
        old.clone(),
        false,
        &[("x-plugin-signature", &operator().sign("webhook", &old))],
    )
    .await;
    assert_eq!(
        wrong.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong.body
    );
    let signed = upload_with(
        &service,
        NAME,
        old.clone(),
        false,
        &[("x-plugin-signature", &operator().sign(NAME, &old))],
    )
    .await;
    assert_eq!(signed.status, StatusCode::OK, "{}", signed.body);
    assert_eq!(signed.body["signedBy"], operator().public_key().id());
    assert_eq!(plugin(&service, NAME).await.body["active"], Value::Null);

    let a = activate(&service, NAME, &v_old, None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(
        !readiness_warnings(&service)
            .await
            .iter()
            .any(|(code, _)| code == "plugin-version-withheld")
    );
    let a = put_definition(&service, &pinned).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // The other version is still unsigned.
    let a = activate(&service, NAME, &v_other, None).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);

    // The restore at start takes the signed version.
    let service = service.restart().await;
    assert_eq!(plugin(&service, NAME).await.body["active"], json!(v_old));
    assert!(readiness_warnings(&service).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_pinned_to_an_unsigned_version_fails_once_keys_are_configured() {
    let trust = Arc::new(AtomicBool::new(false));
    let erp = echoing_erp().await;
    let service = service(true, &trust).await;
    assert_eq!(
        upload(&service, NAME, webhook(), true).await.status,
        StatusCode::CREATED
    );
    let pinned = format!("{NAME}@{}", version_of(&webhook()));
    service.configure_insite().await;
    service
        .configure_erp_job(
            &webhook_connection(
                &erp.url(""),
                &erp.authority(),
                crate::hotload_support::SIGNING_KEY,
            ),
            &pinned,
            json!({"maxAttempts": 1, "initialBackoffMs": 10, "maxBackoffMs": 20}),
        )
        .await;
    // Before: the pinned version delivers.
    let job = settled_job(&service, &cancel_new_order(&service, "SO-P1").await).await;
    assert_eq!(job["state"], "succeeded", "{job}");

    trust.store(true, Ordering::SeqCst);
    let service = service.restart().await;
    let job = settled_job(&service, &cancel_new_order(&service, "SO-P2").await).await;
    assert_eq!(job["state"], "failed", "{job}");
    let error = job["lastError"].as_str().unwrap_or_default();
    assert!(
        error.contains("carries no signature by a trusted key"),
        "{job}"
    );
    assert_eq!(erp.requests().len(), 1, "the unsigned version sent nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watched_folder_is_off_unless_named_and_on_in_the_demo() {
    let service = TestService::start_without_workers().await;
    let running = service.running.as_ref().unwrap();
    assert!(running.plugin_watch.is_none());

    let demo = TestService::start_configured(false, rescind_host::demo::enable).await;
    let watch = demo
        .running
        .as_ref()
        .unwrap()
        .plugin_watch
        .as_ref()
        .expect("the demo watches a folder");
    assert_eq!(watch.dir(), demo.dir.path().join("plugins"));
}

/// `rescind …` in-process.
async fn rescind(args: Vec<String>) -> Exit {
    tokio::task::spawn_blocking(move || {
        Cli::try_parse_from(std::iter::once("rescind".to_owned()).chain(args))
            .expect("valid arguments")
            .run()
    })
    .await
    .expect("ran")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_sign_and_push_take_a_plugin_to_a_host_that_trusts_the_key() {
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("signing.key");
    let path = |p: &std::path::Path| p.display().to_string();
    assert_eq!(
        rescind(vec![
            "plugin".into(),
            "keygen".into(),
            "--out".into(),
            path(&key)
        ])
        .await,
        Exit::SUCCESS
    );
    // Never overwritten.
    assert_eq!(
        rescind(vec![
            "plugin".into(),
            "keygen".into(),
            "--out".into(),
            path(&key)
        ])
        .await,
        Exit::FAILURE
    );
    let public = PluginSigningKey::read(&key).unwrap().public_key();
    let public_text = public.id();
    let service = TestService::start_configured(false, move |config| {
        let key = TrustedKey::parse(&public_text).unwrap();
        config.plugins = config.plugins.clone().trust([key]);
    })
    .await;
    let file = work.path().join("erp.wasm");
    std::fs::write(&file, trivial()).unwrap();
    let push_args = |name: &str, signature: Option<std::path::PathBuf>| PushArgs {
        name: name.to_owned(),
        file: file.clone(),
        host: service.base.clone(),
        token: ADMIN.to_owned(),
        signature,
        no_activate: false,
        quiet: true,
    };

    // Signed for `aaas`, pushed as `erp`: refused.
    let for_aaas = work.path().join("aaas.sig");
    assert_eq!(
        rescind(vec![
            "plugin".into(),
            "sign".into(),
            "aaas".into(),
            path(&file),
            "--key".into(),
            path(&key),
            "--out".into(),
            path(&for_aaas),
        ])
        .await,
        Exit::SUCCESS
    );
    let error = push(&push_args(NAME, Some(for_aaas)))
        .await
        .expect_err("the name is not the signed one");
    assert!(
        format!("{error:#}").contains("for another plugin name"),
        "{error:#}"
    );

    // Signed for `erp`: FILE.sig, which push sends by default.
    assert_eq!(
        rescind(vec![
            "plugin".into(),
            "sign".into(),
            NAME.into(),
            path(&file),
            "--key".into(),
            path(&key),
        ])
        .await,
        Exit::SUCCESS
    );
    assert!(work.path().join("erp.wasm.sig").is_file());
    let pushed = push(&push_args(NAME, None)).await.expect("accepted");
    assert!(pushed.active);
    assert_eq!(pushed.version, version_of(&trivial()));
    let view = plugin(&service, NAME).await;
    assert_eq!(view.body["versions"][0]["signedBy"], public.id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_planted_in_the_plugin_store_is_not_restored() {
    let trust = Arc::new(AtomicBool::new(true));
    let service = service(false, &trust).await;
    let signed = trivial();
    let a = upload_with(
        &service,
        NAME,
        signed.clone(),
        true,
        &[("x-plugin-signature", &operator().sign(NAME, &signed))],
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let mut service = service;
    service
        .running
        .take()
        .unwrap()
        .shutdown(std::time::Duration::from_secs(10))
        .await
        .unwrap();

    // Someone with the data directory plants other bytes under `erp`, with
    // the metadata (and signature) of the signed version, and makes them
    // active.
    let store = service.dir.path().join("plugins/store").join(NAME);
    let planted = webhook();
    let (v_signed, v_planted) = (version_of(&signed), version_of(&planted));
    let hex = |v: &str| v.trim_start_matches("sha256:").to_owned();
    std::fs::write(store.join(format!("{}.wasm", hex(&v_planted))), &planted).unwrap();
    let mut info: Value = serde_json::from_slice(
        &std::fs::read(store.join(format!("{}.json", hex(&v_signed)))).unwrap(),
    )
    .unwrap();
    info["version"] = json!(v_planted);
    info["sequence"] = json!(2);
    let planted_json = store.join(format!("{}.json", hex(&v_planted)));
    std::fs::write(&planted_json, serde_json::to_vec(&info).unwrap()).unwrap();
    std::fs::write(store.join("active"), &v_planted).unwrap();

    let service = service.restart().await;
    assert_eq!(plugin(&service, NAME).await.body["active"], Value::Null);
    let warnings = readiness_warnings(&service).await;
    assert!(
        warnings
            .iter()
            .any(|(code, detail)| code == "plugin-version-withheld" && detail.contains(&v_planted)),
        "{warnings:?}"
    );

    // Bytes with no metadata at all, made active: not restored either.
    std::fs::remove_file(&planted_json).unwrap();
    let service = service.restart().await;
    assert_eq!(plugin(&service, NAME).await.body["active"], Value::Null);
    // The signed version can still be activated.
    let a = activate(&service, NAME, &v_signed, None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}
