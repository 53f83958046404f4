//! Hot-loading through the running service's HTTP API: upload, activate,
//! run jobs on the version in force, roll back; refusals that store
//! nothing; a restart that keeps every version without compiling; the
//! `rescind plugin push` command.

use reqwest::{Method, StatusCode};
use rescind_host::cli::plugin::{PushArgs, push};
use rescind_host::plugins::registry::PluginSigningKey;
use serde_json::{Value, json};

use crate::hotload_support::{
    PLUGIN, activate, cancel_new_order, configure, echoing_erp, last_version, metric, plugin,
    settled_job, upload, upload_with,
};
use crate::registry_support::{component, trivial, version_of, webhook};
use crate::service::{ADMIN, TestService};

fn versions(view: &Value) -> Vec<String> {
    view["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| v["version"].as_str().expect("version").to_owned())
        .collect()
}

fn actions(view: &Value) -> Vec<String> {
    view["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["action"].as_str().expect("action").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_activate_run_a_new_version_and_roll_back_over_http() {
    let erp = echoing_erp().await;
    let service = TestService::start().await;
    let (v1, v2) = (version_of(&webhook()), version_of(&trivial()));

    let a = upload(&service, PLUGIN, webhook(), true).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.body["name"], PLUGIN);
    assert_eq!(a.body["version"], v1.as_str());
    assert_eq!(a.body["world"], "integration-processor");
    assert_eq!(a.body["active"], true);
    assert_eq!(a.body["wit"], "rescind:erp@0.1.0");
    assert!(a.body["sdk"].is_string(), "{}", a.body);
    assert_eq!(a.body["size"], webhook().len());
    assert_eq!(a.body["uploadedBy"], "admin token");
    // Once the plugin exists, a job definition may name it.
    configure(&service, &erp, PLUGIN, 3).await;

    // A job runs on the active version: the ERP receives the webhook.
    let first = settled_job(&service, &cancel_new_order(&service, "SO-1").await).await;
    assert_eq!(first["state"], "succeeded", "{first}");
    assert_eq!(last_version(&first), v1);
    assert_eq!(first["erpReference"], first["requestId"]);

    // A second version, stored without activating: jobs stay on v1.
    let a = upload(&service, PLUGIN, trivial(), false).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.body["active"], false);
    let second = settled_job(&service, &cancel_new_order(&service, "SO-2").await).await;
    assert_eq!(last_version(&second), v1);

    // Activated: the next job runs it, and the ERP hears nothing.
    let a = activate(&service, PLUGIN, &v2, None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["active"], v2.as_str());
    let third = settled_job(&service, &cancel_new_order(&service, "SO-3").await).await;
    assert_eq!(third["state"], "succeeded", "{third}");
    assert_eq!(last_version(&third), v2);
    assert_eq!(third["erpReference"], "trivial");
    assert_eq!(erp.requests().len(), 2);

    // A definition may pin a version: it runs whatever is active.
    let pin = |processor: String| {
        json!({"jobType": "Execution", "connection": "erp", "integrationProcessor": processor,
               "retry": {"maxAttempts": 3, "initialBackoffMs": 10, "maxBackoffMs": 20},
               "enabled": true})
    };
    let put_definition = |body: Value| {
        let service = &service;
        async move {
            service
                .call(
                    Method::PUT,
                    "/v1/admin/job-definitions/OrderCancel",
                    Some(ADMIN),
                    Some(&body),
                )
                .await
        }
    };
    let a = put_definition(pin(format!("{PLUGIN}@{v1}"))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let pinned = settled_job(&service, &cancel_new_order(&service, "SO-P").await).await;
    assert_eq!(last_version(&pinned), v1, "{pinned}");
    let a = put_definition(pin(format!("{PLUGIN}@sha256:beef"))).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert_eq!(a.body["errors"][0]["field"], "integrationProcessor");
    let a = put_definition(pin(PLUGIN.to_owned())).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(erp.requests().len(), 3);

    // Rolling back is activating the previous version.
    let a = activate(&service, PLUGIN, &v1, None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let fourth = settled_job(&service, &cancel_new_order(&service, "SO-4").await).await;
    assert_eq!(last_version(&fourth), v1);
    assert_eq!(fourth["erpReference"], fourth["requestId"]);
    assert_eq!(erp.requests().len(), 4);

    let view = plugin(&service, PLUGIN).await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.body);
    assert_eq!(view.body["active"], v1.as_str());
    assert_eq!(versions(&view.body), [v1.clone(), v2.clone()]);
    assert_eq!(
        actions(&view.body),
        ["activated", "activated", "rolled-back"]
    );
    assert_eq!(view.body["versions"][0]["active"], true);
    assert_eq!(view.body["versions"][1]["active"], false);

    // The list has it beside the plugins bundled in the binary.
    let list = service
        .call(Method::GET, "/v1/admin/plugins", Some(ADMIN), None)
        .await;
    let names: Vec<&str> = list
        .body
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&PLUGIN) && names.contains(&"webhook"),
        "{names:?}"
    );

    // Every switch is a metric.
    let switches = |action: &str| format!("rescind_plugin_switches_total{{action=\"{action}\"}}");
    assert_eq!(metric(&service, &switches("rolled-back")).await, Some(1.0));
    assert!(metric(&service, &switches("activated")).await >= Some(2.0));

    // Activating an unknown version or plugin changes nothing.
    let a = activate(&service, PLUGIN, &version_of(b"nothing"), None).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert_eq!(a.body["errors"][0]["field"], "version");
    let a = activate(&service, "no-such-plugin", &v1, None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
    assert_eq!(a.code(), "plugin-not-found");
    assert_eq!(plugin(&service, PLUGIN).await.body["active"], v1.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_uploads_answer_why_and_store_nothing() {
    let service = TestService::start_configured(false, |config| {
        // Smaller than the webhook plugin, larger than the other bodies.
        config.plugins.registry.max_component_bytes = 64 * 1024;
    })
    .await;
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let wrong_world = component(rescind_test_artifacts::WRONG_WORLD);
    assert!(wrong_world.len() < 64 * 1024);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("garbage", b"this is not webassembly".to_vec(), "not"),
        ("a core module", core_module, "core"),
        ("a component of another world", wrong_world, "world"),
    ];
    for (what, bytes, says) in cases {
        let a = upload(&service, PLUGIN, bytes, true).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {}",
            a.body
        );
        assert_eq!(a.code(), "validation-failed", "{what}");
        assert_eq!(a.body["errors"][0]["field"], "body", "{what}");
        let detail = a.body["detail"].as_str().unwrap().to_lowercase();
        assert!(detail.contains(says), "{what}: {detail}");
    }
    let a = upload(&service, PLUGIN, webhook(), true).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", a.body);
    assert_eq!(a.code(), "payload-too-large");
    // A small body, so that the name is what is refused.
    let a = upload(&service, "not a name!", b"\0asm\x0d\0\x01\0".to_vec(), true).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert_eq!(a.body["errors"][0]["field"], "name");
    let a = service
        .raw(
            Method::PUT,
            &format!("/v1/admin/plugins/{PLUGIN}"),
            Some(ADMIN),
            "application/json",
            trivial(),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", a.body);
    let service_key = service.key("service", None).await;
    let a = service
        .raw(
            Method::PUT,
            &format!("/v1/admin/plugins/{PLUGIN}"),
            Some(&service_key),
            "application/wasm",
            trivial(),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);

    // Nothing of any of them was kept.
    let view = plugin(&service, PLUGIN).await;
    assert_eq!(view.status, StatusCode::NOT_FOUND, "{}", view.body);
    assert_eq!(view.code(), "plugin-not-found");
    let refused = metric(
        &service,
        "rescind_plugin_uploads_total{outcome=\"refused\"}",
    )
    .await;
    assert_eq!(refused, Some(4.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_with_trusted_keys_takes_only_uploads_signed_by_them() {
    let trusted = PluginSigningKey::parse(&hex::encode([7u8; 32])).unwrap();
    let stranger = PluginSigningKey::parse(&hex::encode([9u8; 32])).unwrap();
    let public = trusted.public_key();
    let service = TestService::start_configured(false, move |config| {
        config.plugins = config.plugins.clone().trust([public.clone()]);
    })
    .await;
    let bytes = trivial();
    let sign = |key: &PluginSigningKey, bytes: &[u8]| key.sign(PLUGIN, bytes);
    let mut altered = bytes.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;

    let unsigned = upload(&service, PLUGIN, bytes.clone(), true).await;
    let by_stranger = upload_with(
        &service,
        PLUGIN,
        bytes.clone(),
        true,
        &[("x-plugin-signature", &sign(&stranger, &bytes))],
    )
    .await;
    let altered_bytes = upload_with(
        &service,
        PLUGIN,
        altered,
        true,
        &[("x-plugin-signature", &sign(&trusted, &bytes))],
    )
    .await;
    let unreadable = upload_with(
        &service,
        PLUGIN,
        bytes.clone(),
        true,
        &[("x-plugin-signature", "not a signature")],
    )
    .await;
    // Signed, but for another plugin name: a signed `aaas` is not a
    // `webhook`.
    let other_name = upload_with(
        &service,
        PLUGIN,
        bytes.clone(),
        true,
        &[("x-plugin-signature", &trusted.sign("aaas", &bytes))],
    )
    .await;
    assert!(
        other_name.body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("for another plugin name")),
        "{}",
        other_name.body
    );
    for (what, a) in [
        ("unsigned", &unsigned),
        ("signed for another plugin name", &other_name),
        ("signed by another key", &by_stranger),
        ("altered after signing", &altered_bytes),
        ("unreadable signature", &unreadable),
    ] {
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {}",
            a.body
        );
        assert_eq!(a.body["errors"][0]["field"], "X-Plugin-Signature", "{what}");
    }
    assert_eq!(plugin(&service, PLUGIN).await.status, StatusCode::NOT_FOUND);

    let signed = upload_with(
        &service,
        PLUGIN,
        bytes.clone(),
        true,
        &[("x-plugin-signature", &sign(&trusted, &bytes))],
    )
    .await;
    assert_eq!(signed.status, StatusCode::CREATED, "{}", signed.body);
    assert_eq!(signed.body["signedBy"], trusted.public_key().id());
    // The bundled plugins are as trusted as the binary: installed unsigned.
    assert_eq!(
        plugin(&service, "webhook").await.body["versions"][0]["uploadedBy"],
        "bundled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_versions_and_the_active_choice_and_compiles_nothing() {
    // Its own compile cache (in the data directory), and no bundled
    // plugins, so that the compile counter speaks of these uploads only.
    let service = TestService::start_configured(false, |config| {
        config.plugins.cache_dir = None;
        config.plugins.install_bundled = false;
    })
    .await;
    let (v1, v2) = (version_of(&webhook()), version_of(&trivial()));
    assert_eq!(
        upload(&service, PLUGIN, webhook(), true).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        upload(&service, PLUGIN, trivial(), true).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        activate(&service, PLUGIN, &v1, None).await.status,
        StatusCode::OK
    );
    let compiled = |s: &TestService| {
        s.running
            .as_ref()
            .expect("running")
            .plugins
            .runtime()
            .compilations()
    };
    assert_eq!(compiled(&service), 2);
    let before = plugin(&service, PLUGIN).await.body;

    let service = service.restart().await;
    let after = plugin(&service, PLUGIN).await.body;
    assert_eq!(after, before);
    assert_eq!(after["active"], v1.as_str());
    assert_eq!(versions(&after), [v1.clone(), v2.clone()]);
    // The active version came from the on-disk cache.
    assert_eq!(compiled(&service), 0);
    assert_eq!(
        metric(&service, "rescind_plugin_compilations_total").await,
        Some(0.0)
    );
    // So does one activated later.
    assert_eq!(
        activate(&service, PLUGIN, &v2, None).await.status,
        StatusCode::OK
    );
    assert_eq!(compiled(&service), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_push_uploads_a_file_and_reports_the_hosts_refusal() {
    let service = TestService::start_without_workers().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("erp.wasm");
    std::fs::write(&file, trivial()).unwrap();
    let args = PushArgs {
        name: PLUGIN.to_owned(),
        file: file.clone(),
        host: service.base.clone(),
        token: ADMIN.to_owned(),
        signature: None,
        no_activate: true,
        quiet: true,
    };
    let pushed = push(&args).await.expect("pushed");
    assert_eq!(pushed.version, version_of(&trivial()));
    assert!(!pushed.active && !pushed.already_stored);
    let again = push(&PushArgs {
        no_activate: false,
        ..args.clone()
    })
    .await
    .expect("pushed again");
    assert!(again.active && again.already_stored);
    assert_eq!(
        plugin(&service, PLUGIN).await.body["active"],
        version_of(&trivial()).as_str()
    );

    std::fs::write(&file, b"not a component").unwrap();
    let refused = push(&args).await.expect_err("refused");
    let message = refused.to_string();
    assert!(
        message.contains("422") && message.contains("validation-failed"),
        "{message}"
    );
    let wrong_token = push(&PushArgs {
        token: "wrong".to_owned(),
        ..args.clone()
    })
    .await
    .expect_err("unauthenticated");
    assert!(wrong_token.to_string().contains("401"), "{wrong_token}");
    assert_eq!(versions(&plugin(&service, PLUGIN).await.body).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_names_are_lowercase_everywhere() {
    let service = TestService::start_without_workers().await;

    // An upload under a name with capitals is refused, saying which name
    // to use, and stores nothing.
    let a = upload(&service, "Webhook", trivial(), true).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert_eq!(a.code(), "validation-failed");
    assert_eq!(a.body["errors"][0]["field"], "name");
    let message = a.body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("plugin names are lowercase: use `webhook`"),
        "{message}"
    );
    let view = plugin(&service, "Webhook").await;
    assert_eq!(view.status, StatusCode::NOT_FOUND, "{}", view.body);
    // The bundled `webhook` is untouched: still one version.
    assert_eq!(versions(&plugin(&service, "webhook").await.body).len(), 1);

    // A job definition naming it with capitals is refused the same way.
    let a = put_definition(&service, "erp", "Webhook").await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert_eq!(a.body["errors"][0]["field"], "integrationProcessor");
    let message = a.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("use `webhook`"), "{message}");
}

/// `PUT /v1/admin/job-definitions/OrderCancel` on `connection` running
/// `processor`.
async fn put_definition(
    service: &TestService,
    connection: &str,
    processor: &str,
) -> crate::service::Answer {
    service
        .call(
            Method::PUT,
            "/v1/admin/job-definitions/OrderCancel",
            Some(ADMIN),
            Some(&json!({"jobType": "Execution", "connection": connection,
                         "integrationProcessor": processor, "enabled": true})),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_definition_must_name_a_plugin_that_exists_as_it_must_a_connection() {
    let service = TestService::start_without_workers().await;
    let a = service
        .call(
            Method::PUT,
            "/v1/admin/connections/erp",
            Some(ADMIN),
            Some(&json!({"baseUrl": "http://127.0.0.1:9", "allowedHosts": ["127.0.0.1:9"]})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let webhook_version = plugin(&service, "webhook").await.body["active"]
        .as_str()
        .unwrap()
        .to_owned();
    let unknown_version = format!("sha256:{}", "0".repeat(64));

    let cases = [
        // (connection, processor, field refused, what its message says)
        (
            "erp",
            "nosuch".to_owned(),
            "integrationProcessor",
            "there is no plugin `nosuch`",
        ),
        (
            "nowhere",
            "webhook".to_owned(),
            "connection",
            "no connection named \"nowhere\"",
        ),
        (
            "erp",
            format!("webhook@{unknown_version}"),
            "integrationProcessor",
            "plugin `webhook` has no version",
        ),
    ];
    for (connection, processor, field, says) in cases {
        let a = put_definition(&service, connection, &processor).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{processor}: {}",
            a.body
        );
        assert_eq!(a.code(), "validation-failed");
        assert_eq!(a.body["errors"][0]["field"], field, "{}", a.body);
        let message = a.body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    // Both unknown: both named, in one answer.
    let a = put_definition(&service, "nowhere", "nosuch").await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    let fields: Vec<&str> = a.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["connection", "integrationProcessor"]);
    // Nothing was stored.
    let a = service
        .call(
            Method::GET,
            "/v1/admin/job-definitions/OrderCancel",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);

    // What exists is accepted: by name, and pinned to a stored version.
    for processor in ["webhook".to_owned(), format!("webhook@{webhook_version}")] {
        let a = put_definition(&service, "erp", &processor).await;
        assert_eq!(a.status, StatusCode::OK, "{processor}: {}", a.body);
    }
}
