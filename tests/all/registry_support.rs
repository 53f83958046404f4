//! What the registry tests share: a registry over a data directory, the
//! components they upload, and a job-like call through a loopback ERP.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rescind_host::plugins::registry::{DirectoryStore, PluginRegistry, RegistryConfig};
use rescind_host::plugins::{
    CallLimits, CallOutcome, Cancellation, ConnectionContext, Plugin, PluginRuntime, RuntimeConfig,
};
use rescind_tests::erp_server::{ErpServer, Scripted};
use rescind_tests::plugin_fixtures::sample_cancellation;
use sha2::{Digest, Sha256};

/// The plugin name every test uploads under.
pub const NAME: &str = "erp";

/// A compile cache shared by the tests of this binary (so that each
/// component is compiled once), unless a test brings its own.
pub fn shared_cache() -> PathBuf {
    static CACHE: OnceLock<tempfile::TempDir> = OnceLock::new();
    CACHE
        .get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
        .path()
        .to_owned()
}

/// A registry over `<data_dir>/plugins/store`, compiling into `cache`.
pub async fn open_registry(
    data_dir: &Path,
    cache: Option<PathBuf>,
    config: RegistryConfig,
) -> PluginRegistry {
    let runtime = PluginRuntime::new(RuntimeConfig {
        max_concurrent_calls: 8,
        cache_dir: cache,
        ..RuntimeConfig::default()
    })
    .expect("the runtime starts");
    let store = DirectoryStore::open(data_dir.join("plugins/store")).expect("the store opens");
    PluginRegistry::open(runtime, store.into(), config)
        .await
        .expect("the registry opens")
}

/// The bytes of a built component.
pub fn component(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// `sha256:<hex>` of `bytes`: the version they become.
pub fn version_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The webhook plugin: posts each cancellation to the ERP.
pub fn webhook() -> Vec<u8> {
    component(rescind_test_artifacts::WEBHOOK)
}

/// `bytes` with a custom section appended: another version (other bytes,
/// another digest) that behaves exactly the same.
pub fn same_code_other_bytes(mut bytes: Vec<u8>) -> Vec<u8> {
    let name = b"rescind-test-padding";
    let payload = b"a version that differs only in this section";
    let size = 1 + name.len() + payload.len();
    assert!(size < 128, "one-byte LEB128 sizes");
    bytes.push(0); // custom section
    bytes.push(size as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload);
    bytes
}

/// The trivial guest: accepts without calling the ERP (reference `trivial`).
pub fn trivial() -> Vec<u8> {
    component(rescind_test_artifacts::TRIVIAL)
}

/// The webhook signing key of [`connection`], which [`echoing_erp`] checks.
pub const SIGNING_KEY: &str = "k";

/// A loopback ERP that accepts every webhook delivery signed with
/// [`SIGNING_KEY`] (401 otherwise) and answers its `Idempotency-Key` as the
/// reference, so a call's reference tells which request the ERP received.
pub async fn echoing_erp() -> ErpServer {
    ErpServer::signed_with(SIGNING_KEY, |request| {
        let key = request.header("idempotency-key").unwrap_or_default();
        Scripted::json(201, &serde_json::json!({ "id": key }).to_string())
    })
    .await
}

/// The connection the webhook needs to reach `erp`.
pub fn connection(erp: &ErpServer) -> ConnectionContext {
    ConnectionContext {
        name: "erp".to_owned(),
        base_url: erp.url("/hooks/cancel"),
        allowed_hosts: vec![erp.authority()],
        settings: BTreeMap::new(),
        secrets: BTreeMap::from([("signingKey".to_owned(), SIGNING_KEY.to_owned())]),
        ..ConnectionContext::default()
    }
}

/// Job `n`'s cancellation: its own request id (`job-n`) and order number.
pub fn job(n: u32) -> Cancellation {
    Cancellation {
        request_id: format!("job-{n}"),
        order_number: (5000 + n).to_string(),
        ..sample_cancellation()
    }
}

/// Which behaviour a call showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted by the webhook: the ERP's reference (the request id).
    Webhook(String),
    /// Accepted by the trivial guest, without reaching the ERP.
    Trivial,
    /// Not accepted.
    Failed(CallOutcome),
}

/// Runs job `n` on `plugin` against `erp`.
pub async fn run(plugin: &Plugin, erp: &ErpServer, n: u32) -> Delivery {
    let report = plugin
        .submit(job(n), &connection(erp), &CallLimits::default())
        .await;
    match report.outcome {
        CallOutcome::Accepted {
            erp_reference: Some(reference),
            ..
        } if reference == "trivial" => Delivery::Trivial,
        CallOutcome::Accepted {
            erp_reference: Some(reference),
            ..
        } => Delivery::Webhook(reference),
        other => Delivery::Failed(other),
    }
}

/// The idempotency keys the ERP received, in order.
pub fn received_keys(erp: &ErpServer) -> Vec<String> {
    erp.requests()
        .iter()
        .filter_map(|r| r.header("idempotency-key").map(str::to_owned))
        .collect()
}

/// Every file under `dir`, relative, sorted (empty when it does not exist).
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
