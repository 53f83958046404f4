//! The documents in `docs/` hold what they say: the plugin guide and the
//! operating guide are run command by command against this build's
//! `rescind` (every block of the plugin guide is run, written or checked),
//! and the API reference names every route, field and error code the API
//! has.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use utoipa::OpenApi as _;

use crate::runner::{self, Block};

/// A generous ceiling for a whole document: builds and host starts on a
/// loaded two-core machine. A run that works ends far earlier.
const CEILING: Duration = Duration::from_secs(1200);

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the host crate is in the workspace")
        .to_owned()
}

fn document(name: &str) -> String {
    std::fs::read_to_string(repository().join("docs").join(name))
        .unwrap_or_else(|e| panic!("docs/{name}: {e}"))
}

const ADMIN_TOKEN: &str = "docs-test-admin-token-0123456789abcdef";

/// Starts a host for the document to talk to, as `$RESCIND_HOST` with the
/// admin token in `$TOKEN`: the guide assumes one is running.
const HOST_FOR_THE_DOCUMENT: &str = r#"
rescind serve --listen 127.0.0.1:0 --data-dir host-data > host.log 2>&1 &
for _ in $(seq 1 1200); do grep -q '^rescind listening on' host.log && break; sleep 0.5; done
RESCIND_HOST=$(sed -n 's/^rescind listening on \(http:[^ ]*\).*/\1/p' host.log)
test -n "$RESCIND_HOST" || { cat host.log; exit 1; }
export RESCIND_HOST TOKEN="$RESCIND_ADMIN_TOKEN"
"#;

#[test]
fn the_plugin_guide_runs_from_an_empty_folder_to_an_uploaded_plugin() {
    let guide = document("plugin-guide.md");
    let blocks = runner::blocks(&guide);
    let wit = std::fs::read_to_string(repository().join("wit/v0.1.0/rescind-erp.wit")).unwrap();
    for block in &blocks {
        match block {
            Block { lang, .. } if lang == "wit" => assert!(
                wit.contains(&block.text),
                "line {}: this WIT is not in wit/v0.1.0/rescind-erp.wit:\n{}",
                block.line,
                block.text
            ),
            _ if block.is_run() => {}
            _ => panic!(
                "line {} ({} {:?}): every block of the guide is run, written or checked",
                block.line, block.lang, block.attributes
            ),
        }
    }
    let files: Vec<&str> = blocks.iter().filter_map(Block::file).collect();
    assert!(files.contains(&"src/lib.rs"), "{files:?}");

    let dir = runner::workdir("plugin-guide");
    let script = runner::script(HOST_FOR_THE_DOCUMENT, &blocks);
    let run = runner::run(
        &dir,
        &script,
        &[("RESCIND_ADMIN_TOKEN", ADMIN_TOKEN.to_owned())],
        CEILING,
    );
    run.assert_success("docs/plugin-guide.md");
    // What the reader is told happens, happened.
    for expected in [
        "test result: ok. 3 passed",
        "as expected: accepted",
        "as expected: rejected",
        "as expected: transient",
        "as expected: misconfigured",
        "the plugin sent nothing to the ERP",
        "outcome: accepted (ERP reference CX-4711-1)",
        "the ERP answered 422 Unprocessable Content: order ERP-4711 is already shipped",
        "\"integrationProcessor\":\"acme-erp\"",
        "trust it with: rescind serve --trusted-key ",
        "signed acme-erp (sha256:",
    ] {
        assert!(
            run.stdout.contains(expected),
            "{expected:?} not in the output:\n{}",
            run.stdout
        );
    }
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("acme-erp sha256:") && l.ends_with(" active")),
        "{}",
        run.stdout
    );
    let sample: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("acme-erp/sample.json")).unwrap())
            .unwrap();
    assert_eq!(sample["order-number"], "SO-1001");
}

#[test]
fn the_operating_guide_sets_up_a_host_from_nothing() {
    let guide = document("operating.md");
    let blocks = runner::blocks(&guide);
    // The guide's port, moved to a free one so that tests run side by side.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let script =
        runner::script("", &blocks).replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    assert!(
        script.contains("rescind serve"),
        "the guide starts a host: {script}"
    );
    let dir = runner::workdir("operating");
    let run = runner::run(&dir, &script, &[], CEILING);
    run.assert_success("docs/operating.md");
    for expected in [
        "\"preset\":\"insite\"",
        "\"allowCancellationRequest\":true",
        "\"secrets\":[\"signingKey\"]",
        "\"appliesTo\":\"any\"",
        "\"role\":\"service\"",
        "\"state\":\"queued\"",
        // `rescind jobs show` of the check's job
        "(OrderCancel for order SO-1): ",
        // `rescind jobs prune`: the guide's jobs are young
        "pruned 0 finished jobs older than 30d (0 attempts)",
        // the key `rescind keys create` made before the first start works
        "\"name\":\"ops\",\"role\":\"admin\"",
        "\"expiresAt\":\"2099-01-01T00:00:00Z\"",
        "cs-tool keys: 1",
        "\"actor\":\"admin-token\"",
        "\"code\":\"plugin-signatures-not-checked\"",
        "sealed 1 secret value again",
    ] {
        assert!(
            run.stdout.contains(expected),
            "{expected:?} not in the output:\n{}",
            run.stdout
        );
    }
    // The backup the guide makes is a data directory a host opens.
    let backups: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("rescind-backup-")
        })
        .collect();
    assert_eq!(backups.len(), 1, "one backup made");
    assert!(backups[0].path().join("rescind.db").is_file());
}

/// Every error code the API can answer: the problem snapshots of the API's
/// own tests (one per code) and the codes the handlers name.
fn error_codes() -> BTreeSet<String> {
    let mut codes = BTreeSet::new();
    let snapshots = repository().join("host/src/api/snapshots");
    for entry in std::fs::read_dir(snapshots).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(code) = name
            .strip_prefix("rescind_host__api__tests__problem-")
            .and_then(|rest| rest.strip_suffix(".snap"))
        {
            let text =
                std::fs::read_to_string(repository().join("host/src/api/snapshots").join(&name))
                    .unwrap();
            // The snapshot's own `code` (a name may carry a variant suffix).
            let code_line = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("\"code\": \""))
                .unwrap_or(code);
            codes.insert(
                code_line
                    .trim_end_matches("\",")
                    .trim_end_matches('"')
                    .to_owned(),
            );
        }
    }
    for file in std::fs::read_dir(repository().join("host/src/api")).unwrap() {
        let path = file.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for piece in text.split("code: \"").skip(1) {
                codes.insert(piece.split('"').next().unwrap().to_owned());
            }
        }
    }
    codes
}

#[test]
fn the_api_reference_names_every_route_field_and_error_code() {
    let reference = document("api.md");
    let openapi = serde_json::to_value(rescind_host::api::ApiDoc::openapi()).unwrap();
    let mut missing = Vec::new();
    for (path, operations) in openapi["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            let method = method.to_ascii_uppercase();
            // Headings name routes as `METHOD /path` or `GET | PUT /path`.
            let named = reference.lines().any(|line| {
                line.starts_with('#') && line.contains(path.as_str()) && line.contains(&method)
            }) || reference.contains(&format!("`{method} {path}`"));
            if !named {
                missing.push(format!("route {method} {path}"));
            }
        }
    }
    for (schema, definition) in openapi["components"]["schemas"].as_object().unwrap() {
        for field in definition["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            if !reference.contains(&format!("`{field}`"))
                && !reference.contains(&format!("\"{field}\""))
            {
                missing.push(format!("field {schema}.{field}"));
            }
        }
    }
    let codes = error_codes();
    assert!(codes.len() > 30, "{codes:?}");
    for code in &codes {
        if !reference.contains(&format!("`{code}`")) {
            missing.push(format!("error code {code}"));
        }
    }
    assert!(missing.is_empty(), "docs/api.md lacks: {missing:#?}");
}

#[test]
fn the_product_docs_point_to_documents_the_repository_has() {
    let mut texts = vec![
        (
            "README.md".to_owned(),
            std::fs::read_to_string(repository().join("README.md")).unwrap(),
        ),
        (
            "guest-sdk/README.md".to_owned(),
            std::fs::read_to_string(repository().join("guest-sdk/README.md")).unwrap(),
        ),
        (
            "OpenAPI".to_owned(),
            serde_json::to_string(&rescind_host::api::ApiDoc::openapi()).unwrap(),
        ),
    ];
    for name in ["api.md", "operating.md", "plugin-guide.md"] {
        texts.push((format!("docs/{name}"), document(name)));
    }
    for (name, text) in &texts {
        for dangling in ["API.md", "SPEC.md"] {
            assert!(!text.contains(dangling), "{name} points to {dangling}");
        }
        // Relative links resolve to files of the repository.
        let base = if name.starts_with("docs/") {
            repository().join("docs")
        } else if name.starts_with("guest-sdk/") {
            repository().join("guest-sdk")
        } else {
            repository()
        };
        for piece in text.split("](").skip(1) {
            let target = piece.split(')').next().unwrap();
            let file = target.split('#').next().unwrap();
            if file.is_empty() || file.contains("://") {
                continue;
            }
            assert!(
                base.join(file).exists(),
                "{name} links to {target}, which is not there"
            );
        }
    }
    let openapi = serde_json::to_value(rescind_host::api::ApiDoc::openapi()).unwrap();
    assert!(
        openapi["info"]["description"]
            .as_str()
            .unwrap()
            .contains("docs/api.md"),
        "the OpenAPI info points to the reference"
    );
}
