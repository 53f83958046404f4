//! `rescind plugin new` to a job that succeeded, the path a new plugin
//! author follows: the crate it writes (with its own copy of the SDK) passes
//! its tests, builds as a component, passes `rescind plugin test` against a
//! scripted ERP that wants a login first (accepted, and the exit statuses of
//! a refusal and an outage), is pushed to a running host, and delivers a
//! real cancellation with its ERP exchange recorded; a changed build is
//! then replayed against that job and shadow-run on the next five, the
//! differences shown while the ERP hears only the active version.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser as _;
use reqwest::{Method, StatusCode};
use rescind_host::cli::plugin::{
    NewArgs, PushArgs, Script, ScriptedErp, ShadowArgs, TestArgs, new_plugin, push, render_shadow,
    replay, sample_json, shadow, test_plugin,
};
use rescind_host::cli::{Cli, Exit};
use rescind_host::plugins::CallOutcome;
use serde_json::json;

use crate::hotload_support::{cancel_new_order, settled_job};
use crate::service::{ADMIN, TestService};

/// Where the test guests are built: the nested builds below share its
/// compiled dependencies.
pub fn components_dir() -> PathBuf {
    Path::new(rescind_test_artifacts::WEBHOOK)
        .ancestors()
        .nth(3)
        .expect("<target>/wasm-components")
        .to_owned()
}

/// A fresh folder for scaffolds at a fixed place under the shared target
/// directory, so that each run reuses the last one's work. (Cargo keys a
/// workspace's own crate by its name and its path inside the workspace, not
/// by where the workspace is: two scaffolds of one name would share, and
/// confuse, their build state; the plugin guide's test scaffolds
/// `acme-erp`, this one `initech-erp`.)
pub fn scaffold_dir(test: &str) -> PathBuf {
    let dir = components_dir().join("scaffolds").join(test);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("last run's scaffold removed");
    }
    std::fs::create_dir_all(&dir).expect("scaffold folder");
    dir
}

/// Runs cargo in `dir` with the shared target directory, offline.
pub fn cargo(dir: &Path, args: &[&str]) {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(dir)
        .args(args)
        // Only what the workspace already downloaded: no network needed.
        .arg("--offline")
        .env("CARGO_TARGET_DIR", components_dir());
    let output = command.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `rescind plugin test …` as the command line runs it, on a thread of its
/// own (the command starts its own async runtime).
async fn plugin_test(arguments: Vec<String>) -> Exit {
    tokio::task::spawn_blocking(move || {
        let mut line = vec!["rescind".to_owned(), "plugin".to_owned(), "test".to_owned()];
        line.extend(arguments);
        Cli::try_parse_from(line).expect("valid arguments").run()
    })
    .await
    .expect("ran")
}

fn text(path: &Path) -> String {
    path.to_str().expect("UTF-8 path").to_owned()
}

/// An ERP that wants a login: the login answers a session cookie, the
/// cancellation `answer` (when the cookie came back).
fn login_then(answer: &str) -> String {
    format!(
        r#"{{"steps": [
            {{"request": {{"method": "POST", "path": "/login"}},
              "headers": {{"Set-Cookie": ["SID=s3ss10n; Path=/; HttpOnly", "theme=dark; Path=/account"]}}}},
            {{"request": {{"method": "POST", "path": "/cancellations", "headers": {{"cookie": "SID=s3ss10n"}}}},
              {answer}}}
        ]}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_plugin_goes_from_scaffold_to_a_delivered_cancellation() {
    let dir = scaffold_dir("plugin-new");
    let args = NewArgs {
        name: "initech-erp".to_owned(),
        dir: dir.clone(),
        sdk: None,
    };
    let root = new_plugin(&args).expect("created");
    assert_eq!(root, dir.join("initech-erp"));
    // The scaffold's Cargo.lock holds the workspace's versions: the build
    // works offline and reuses what the workspace compiled.
    let built = root.clone();
    tokio::task::spawn_blocking(move || {
        cargo(&built, &["test", "--quiet"]);
        cargo(
            &built,
            &[
                "build",
                "--quiet",
                "--target",
                "wasm32-wasip2",
                "--profile",
                "plugin",
            ],
        );
    })
    .await
    .expect("built");
    let component = components_dir().join("wasm32-wasip2/plugin/initech_erp.wasm");

    // The scaffold's own script, and a cancellation of our own.
    let mut cancellation: serde_json::Value = serde_json::from_str(&sample_json()).unwrap();
    cancellation["order-number"] = "WEB-9".into();
    cancellation["erp-order-number"] = "ERP-9".into();
    let cancellation_file = root.join("cancellation.json");
    std::fs::write(&cancellation_file, cancellation.to_string()).unwrap();
    let session = [
        "--setting",
        "loginPath=/login",
        "--secret",
        "username=rescind",
        "--secret",
        "password=s3cret",
    ]
    .map(str::to_owned);
    let run = |script: &Path, expect: Option<&str>| {
        let mut line = vec![
            text(&component),
            "--script".to_owned(),
            text(script),
            "--cancellation".to_owned(),
            text(&cancellation_file),
        ];
        line.extend(session.iter().cloned());
        if let Some(expect) = expect {
            line.extend(["--expect".to_owned(), expect.to_owned()]);
        }
        plugin_test(line)
    };
    let scaffold_script = root.join("scripts/login-cancel.json");
    assert_eq!(run(&scaffold_script, Some("accepted")).await, Exit::SUCCESS);

    // What that run did, in detail.
    let report = test_plugin(&TestArgs {
        file: Some(component.clone()),
        script: Some(scaffold_script),
        cancellation: Some(cancellation_file.clone()),
        settings: vec![("loginPath".into(), "/login".into())],
        secrets: vec![
            ("username".into(), "rescind".into()),
            ("password".into(), "s3cret".into()),
        ],
        ..TestArgs::default()
    })
    .await
    .expect("runs");
    assert_eq!(
        report.outcome,
        CallOutcome::Accepted {
            erp_reference: Some("ERP-CANCEL-1".into()),
            message: None
        }
    );
    assert_eq!(report.requests.len(), 2, "{}", report.render());
    let cancel: serde_json::Value = serde_json::from_str(&report.requests[1].body).unwrap();
    assert_eq!(cancel["orderNumber"], "WEB-9");
    assert_eq!(cancel["erpOrderNumber"], "ERP-9");
    assert!(report.off_script().is_empty(), "{}", report.render());

    // A refusal in OData's shape, and an outage: each exits 0 only when
    // expected.
    let refused = root.join("refused.json");
    std::fs::write(
        &refused,
        login_then(
            r#""status": 422, "body": {"error": {"code": "SO/12", "message": {"lang": "en", "value": "order ERP-9 is shipped"}}}"#,
        ),
    )
    .unwrap();
    let down = root.join("down.json");
    std::fs::write(&down, login_then(r#""status": 503, "body": "maintenance""#)).unwrap();
    assert_eq!(run(&refused, Some("rejected")).await, Exit::SUCCESS);
    assert_eq!(run(&refused, None).await, Exit::FAILURE);
    assert_eq!(run(&refused, Some("transient")).await, Exit::FAILURE);
    assert_eq!(run(&down, Some("transient")).await, Exit::SUCCESS);
    assert_eq!(run(&down, Some("accepted")).await, Exit::FAILURE);
    let report = test_plugin(&TestArgs {
        file: Some(component.clone()),
        script: Some(refused),
        settings: vec![("loginPath".into(), "/login".into())],
        secrets: vec![
            ("username".into(), "rescind".into()),
            ("password".into(), "s3cret".into()),
        ],
        ..TestArgs::default()
    })
    .await
    .expect("runs");
    assert_eq!(
        report.outcome,
        CallOutcome::Rejected(
            "the ERP answered 422 Unprocessable Content: order ERP-9 is shipped".into()
        )
    );

    // Pushed to a running host, it delivers a real cancellation.
    let service = TestService::start().await;
    let push_args = |token: &str| PushArgs {
        name: "initech-erp".to_owned(),
        file: component.clone(),
        host: service.base.clone(),
        token: token.to_owned(),
        signature: None,
        no_activate: false,
        quiet: true,
    };
    let service_key = service.key("service", None).await;
    for (token, expected) in [
        ("not-a-token", "the host refused the token (HTTP 401"),
        (service_key.as_str(), "may not upload plugins (HTTP 403"),
        ("  ", "the admin token is empty"),
    ] {
        let error = push(&push_args(token)).await.expect_err("refused");
        let error = format!("{error:#}");
        assert!(error.contains(expected), "{error}");
        assert!(error.contains("nothing was uploaded"), "{error}");
    }
    let none = service
        .call(
            Method::GET,
            "/v1/admin/plugins/initech-erp",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND, "{}", none.body);
    let pushed = push(&push_args(ADMIN)).await.expect("pushed");
    assert!(pushed.active);

    let erp = ScriptedErp::start(
        Script::parse(
            r#"{"routes": [
                {"request": {"method": "POST", "path": "/login"},
                 "headers": {"Set-Cookie": "SID=live-1; Path=/"}},
                {"request": {"method": "POST", "path": "/cancellations", "headers": {"cookie": "SID=live-1"}},
                 "status": 201, "body": {"id": "INITECH-77"}}
            ]}"#,
        )
        .unwrap(),
    )
    .await
    .unwrap();
    service.configure_insite().await;
    service
        .configure_erp_job(
            &json!({"baseUrl": format!("http://{}", erp.addr()),
                    "allowedHosts": [erp.addr().to_string()],
                    "settings": {"loginPath": "/login"},
                    "secrets": {"username": "rescind", "password": "s3cret"}}),
            "initech-erp",
            json!({"maxAttempts": 2, "initialBackoffMs": 10, "maxBackoffMs": 20}),
        )
        .await;
    let job = settled_job(&service, &cancel_new_order(&service, "SO-77").await).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["erpReference"], "INITECH-77", "{job}");
    let received = erp.received();
    let paths: Vec<&str> = received.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/login", "/cancellations"]);
    assert!(
        received.iter().all(|r| r.off_script.is_none()),
        "{received:?}"
    );
    let body: serde_json::Value = serde_json::from_str(&received[1].body).unwrap();
    assert_eq!(body["orderNumber"], "SO-77");
    // The job shows what was sent and answered, the session cookie redacted.
    let exchange = job["attemptHistory"][0]["exchange"]
        .as_array()
        .expect("the exchange is recorded");
    let urls: Vec<&str> = exchange
        .iter()
        .map(|e| e["url"].as_str().unwrap())
        .collect();
    assert!(
        urls[0].ends_with("/login") && urls[1].ends_with("/cancellations"),
        "{urls:?}"
    );
    assert_eq!(exchange[1]["status"], 201);
    assert!(!job.to_string().contains("live-1"), "{job}");
    let job_id = job["id"].as_str().unwrap().to_owned();

    // A changed build: the reason under another name.
    let source = root.join("src/lib.rs");
    let code = std::fs::read_to_string(&source).unwrap();
    let changed = code.replace(
        r#""reason": cancellation.reason.code(),"#,
        r#""reasonCode": cancellation.reason.code(),"#,
    );
    assert_ne!(changed, code, "the scaffold sends the reason as `reason`");
    std::fs::write(&source, changed).unwrap();
    let built = root.clone();
    tokio::task::spawn_blocking(move || {
        cargo(
            &built,
            &[
                "build",
                "--quiet",
                "--target",
                "wasm32-wasip2",
                "--profile",
                "plugin",
            ],
        );
    })
    .await
    .expect("built again");

    // Replayed against the job, it shows the difference (exit status 1).
    let replay_line = vec![
        text(&component),
        "--replay".to_owned(),
        job_id.clone(),
        "--host".to_owned(),
        service.base.clone(),
        "--token".to_owned(),
        ADMIN.to_owned(),
        "--secret".to_owned(),
        "username=rescind".to_owned(),
        "--secret".to_owned(),
        "password=s3cret".to_owned(),
    ];
    assert_eq!(plugin_test(replay_line).await, Exit::FAILURE);
    let replayed = replay(
        &TestArgs {
            file: Some(component.clone()),
            replay: Some(job_id.clone()),
            host: service.base.clone(),
            token: Some(ADMIN.to_owned()),
            secrets: vec![
                ("username".into(), "rescind".into()),
                ("password".into(), "s3cret".into()),
            ],
            ..TestArgs::default()
        },
        &job_id,
    )
    .await
    .expect("replayed");
    let shown = replayed.render();
    assert!(!replayed.identical(), "{shown}");
    assert!(
        shown.contains("request 1: POST /login: identical"),
        "{shown}"
    );
    assert!(
        shown.contains("request 2: POST /cancellations: differs"),
        "{shown}"
    );
    assert!(shown.contains("-  \"reason\": "), "{shown}");
    assert!(shown.contains("+  \"reasonCode\": "), "{shown}");

    // Shadow-run over the next 5 jobs: the report shows the difference
    // while the ERP hears the active version only.
    let changed_version = push(&PushArgs {
        no_activate: true,
        ..push_args(ADMIN)
    })
    .await
    .expect("pushed, not activated");
    assert!(!changed_version.active);
    let shadow_args = |version: Option<String>, jobs: Option<u32>| ShadowArgs {
        name: "initech-erp".to_owned(),
        version,
        jobs,
        stop: false,
        host: service.base.clone(),
        token: ADMIN.to_owned(),
    };
    let started = shadow(&shadow_args(Some(changed_version.version.clone()), Some(5)))
        .await
        .expect("started");
    assert_eq!(started.state, "running");
    for n in 1..=5 {
        let job = settled_job(
            &service,
            &cancel_new_order(&service, &format!("SO-8{n}")).await,
        )
        .await;
        assert_eq!(job["state"], "succeeded", "{job}");
    }
    let mut report = None;
    for _ in 0..1200 {
        let run = shadow(&shadow_args(None, None)).await.expect("read");
        if run.state == "complete" {
            report = Some(run);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let report = report.expect("the shadow run completed within 60 s");
    let shown = render_shadow(&report);
    assert_eq!((report.compared, report.different), (5, 5), "{shown}");
    assert!(
        shown.contains("5 of 5 jobs compared, 0 identical, 5 different"),
        "{shown}"
    );
    for result in &report.results {
        assert_eq!(
            result.shadow_outcome.as_deref(),
            Some("accepted"),
            "{shown}"
        );
        let cancel = &result.requests[1];
        assert_eq!(cancel.active.as_deref(), Some("POST /cancellations"));
        let differences = cancel.differences.join("\n");
        assert!(differences.contains("\"reasonCode\""), "{shown}");
        assert!(
            cancel.skipped.iter().any(|s| s.contains("cookie")),
            "{shown}"
        );
    }
    let received = erp.received();
    assert_eq!(received.len(), 12, "2 requests for each of 6 jobs");
    assert!(
        received.iter().all(|r| !r.body.contains("reasonCode")),
        "the changed build reached the ERP: {received:?}"
    );

    // Never over an existing crate, never a name cargo would refuse.
    let again = new_plugin(&args).expect_err("exists");
    assert!(again.to_string().contains("already exists"), "{again}");
    let bad = new_plugin(&NewArgs {
        name: "Acme ERP".to_owned(),
        ..args.clone()
    })
    .expect_err("bad name");
    assert!(bad.to_string().contains("lower-case"), "{bad}");
}
