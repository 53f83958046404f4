//! What the service benchmarks share: a service on loopback with a
//! temporary store, the admin calls that set it up, a sample order, and
//! the knobs and percentiles of the reports.

// Each benchmark uses a different subset.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};

use rescind_host::service::{self, RunningService, ServiceConfig};
use serde_json::{Value, json};

/// The admin token of every benchmarked service.
pub const ADMIN: &str = "bench-admin-token-0123456789abcdef0123";

/// The value of environment variable `name`, or `default` when it is unset
/// or does not parse.
pub fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p`-th percentile of `samples` (nearest rank); NaN when empty.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// A one-line order of customer `C-1` on website `main`, cancellable under
/// the insite preset.
pub fn order() -> Value {
    json!({
        "businessCode": "B1", "customerNumber": "C-1", "website": "main",
        "status": "Submitted", "orderDate": "2024-09-01", "currency": "EUR",
        "lines": [{"lineNumber": 1, "sku": "CHAIR", "quantity": 1,
                   "amountMinor": 10000, "taxMinor": 1900}],
        "payments": [{"id": "p", "method": "card", "authorizedMinor": 11900,
                      "depositedMinor": 0}]
    })
}

/// A running service on a temporary store.
pub struct Host {
    pub running: RunningService,
    pub base: String,
    pub client: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Host {
    /// Starts a service on loopback with the admin token and the settings
    /// `configure` makes, applies the insite preset and lets customers of
    /// website `main` cancel.
    pub async fn start(configure: impl FnOnce(&mut ServiceConfig)) -> Host {
        let data = tempfile::tempdir().expect("temp dir");
        let mut config =
            ServiceConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), data.path());
        config.admin_token = Some(ADMIN.to_owned());
        configure(&mut config);
        let running = service::start(config).await.expect("service");
        let host = Host {
            base: format!("http://{}", running.addr),
            running,
            client: reqwest::Client::new(),
            _data: data,
        };
        host.send(reqwest::Method::POST, "/v1/admin/presets/insite", None)
            .await;
        host.send(
            reqwest::Method::PUT,
            "/v1/admin/websites/main",
            Some(json!({"allowCancellationRequest": true})),
        )
        .await;
        host
    }

    /// An admin call that must succeed; answers its JSON body.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// Uploads and activates the component at `path` as plugin `name`.
    pub async fn upload(&self, name: &str, path: &str) {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let response = self
            .client
            .put(format!("{}/v1/admin/plugins/{name}", self.base))
            .bearer_auth(ADMIN)
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .expect("upload");
        assert!(response.status().is_success(), "{}", response.status());
    }

    /// Stores order `number` as [`order`].
    pub async fn put_order(&self, number: &str) {
        self.send(
            reqwest::Method::PUT,
            &format!("/v1/orders/{number}"),
            Some(order()),
        )
        .await;
    }
}
