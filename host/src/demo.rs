//! `rescind serve --demo`: a fresh data directory filled with the insite
//! preset, a website that lets customers cancel, a few realistic orders, an
//! `OrderCancel` job definition bound to the bundled `webhook` plugin, a
//! `PersonalizationCancel` definition bound to the bundled `personalization`
//! plugin with `appliesTo: full` (a cancellation that ends an order fans out
//! to both; one that leaves lines active reaches the webhook only, since
//! Optimizely cancels whole orders), and a demo ERP on 127.0.0.1
//! that checks each webhook request's signature, records every request and
//! answers with a reference. `GET /demo/erp/requests` shows what it received.
//!
//! The service knows nothing of it: [`enable`] composes the demo into a
//! service's configuration as a [`Companion`], which is this module's one
//! entry point.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context;
use futures_util::future::BoxFuture;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::{any, get};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::api::AppState;
use crate::domain::{
    Allocation, AllocationKind, AllocationState, Approval, ApprovalState, Channel, Currency, Line,
    LineKind, LineState, Order, Payment, Preset, Tracking, WebsiteSettings,
};
use crate::service::{Companion, ServiceConfig};
use crate::store::{
    AppliesTo, Connection, JobDefinition, JobParameter, RetryPolicy, Store, StoreError,
};

/// Turns a service configuration into the demo's: an admin token is
/// generated unless one is configured (the running service shows it), the
/// plugins folder `<data-dir>/plugins` is watched unless another is named,
/// and once the store is open the demo ERP starts, an empty store is filled
/// with the demo data, and `GET /demo/erp/requests` is served beside the API.
pub fn enable(config: &mut ServiceConfig) {
    config
        .admin_token
        .get_or_insert_with(crate::keys::new_token);
    let watched = config.data_dir.join("plugins");
    config.plugins.watch_dir.get_or_insert(watched);
    config.companions.push(Arc::new(Demo::default()));
}

/// The demo as a part of the service: its ERP, started with the service and
/// kept as long as the service runs.
#[derive(Debug, Default)]
struct Demo {
    erp: OnceLock<Arc<DemoErp>>,
}

impl Companion for Demo {
    fn name(&self) -> &str {
        "demo ERP"
    }

    fn start<'a>(&'a self, store: &'a Store) -> BoxFuture<'a, anyhow::Result<Router<AppState>>> {
        Box::pin(async move {
            let erp = Arc::new(DemoErp::start().await.context("starting the demo ERP")?);
            if store.order_count().await? == 0 {
                erp.seed(store).await.context("seeding the demo data")?;
            }
            let routes = erp.routes();
            if self.erp.set(erp).is_err() {
                anyhow::bail!("the demo ERP was started twice");
            }
            Ok(routes)
        })
    }
}

/// The website of the demo orders.
const DEMO_WEBSITE: &str = "main";
/// The demo connection's name.
const DEMO_CONNECTION: &str = "demo-erp";
/// The demo job definition's name.
const DEMO_DEFINITION: &str = "OrderCancel";
/// The plugin the demo definition runs.
const DEMO_PROCESSOR: &str = "webhook";
/// The demo connection to the personalization service (the same demo server).
const DEMO_PERSONALIZATION_CONNECTION: &str = "demo-personalization";
/// The demo job definition that tells the personalization service.
const DEMO_PERSONALIZATION_DEFINITION: &str = "PersonalizationCancel";
/// The plugin the personalization definition runs.
const DEMO_PERSONALIZATION_PROCESSOR: &str = "personalization";
/// Paths of the Optimizely Personalization API that the demo server accepts
/// (online and offline order cancellation).
const PERSONALIZATION_PATHS: [&str; 2] = ["/tracker/api/", "/smart-api/orders/offline/"];

/// A request the demo ERP received.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct ErpRequest {
    /// Arrival order, from 1.
    pub sequence: usize,
    /// The HTTP method the plugin used, e.g. `POST`.
    pub method: String,
    /// The path the plugin called on the demo ERP, without the query.
    pub path: String,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// The `X-Rescind-Attempt` header.
    pub attempt: Option<String>,
    /// Whether `X-Rescind-Signature` matched the body.
    pub signature_valid: bool,
    /// Whether the idempotency key had been seen before.
    pub duplicate: bool,
    /// The reference the ERP answered with.
    pub erp_reference: Option<String>,
    /// The body (JSON when it parses, else the text).
    pub body: Value,
}

#[derive(Debug, Default)]
struct Ledger {
    requests: Vec<ErpRequest>,
    references: HashMap<String, String>,
}

/// The demo ERP: a real HTTP endpoint on 127.0.0.1.
#[derive(Debug)]
struct DemoErp {
    /// Where it listens.
    pub addr: SocketAddr,
    signing_key: String,
    ledger: Arc<Mutex<Ledger>>,
    server: JoinHandle<()>,
}

#[derive(Clone)]
struct ErpState {
    signing_key: Arc<String>,
    ledger: Arc<Mutex<Ledger>>,
}

impl DemoErp {
    /// Starts the demo ERP on a free loopback port.
    pub async fn start() -> std::io::Result<DemoErp> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let addr = listener.local_addr()?;
        let signing_key = crate::api::new_token();
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let app = Router::new().fallback(any(receive)).with_state(ErpState {
            signing_key: Arc::new(signing_key.clone()),
            ledger: Arc::clone(&ledger),
        });
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "demo ERP stopped");
            }
        });
        tracing::info!(%addr, "demo ERP listening");
        Ok(DemoErp {
            addr,
            signing_key,
            ledger,
            server,
        })
    }

    /// What it received, oldest first.
    pub fn requests(&self) -> Vec<ErpRequest> {
        self.ledger
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .requests
            .clone()
    }

    /// The routes that show the demo ERP's ledger on the main API.
    pub fn routes(self: &Arc<Self>) -> Router<AppState> {
        let erp = Arc::clone(self);
        Router::new().route(
            "/demo/erp/requests",
            get(move || {
                let erp = Arc::clone(&erp);
                async move { Json(erp.requests()) }
            }),
        )
    }

    /// Fills an empty store with the demo configuration and orders.
    pub async fn seed(&self, store: &Store) -> Result<(), StoreError> {
        store.put_settings(&Preset::Insite.settings()).await?;
        store
            .put_website(
                DEMO_WEBSITE,
                &WebsiteSettings {
                    allow_cancellation_request: true,
                },
            )
            .await?;
        store
            .put_website(
                "partners",
                &WebsiteSettings {
                    allow_cancellation_request: false,
                },
            )
            .await?;
        let host = self.addr.to_string();
        store
            .put_connection(
                &Connection {
                    name: DEMO_CONNECTION.to_owned(),
                    base_url: format!("http://{host}"),
                    allowed_hosts: vec![host.clone()],
                    allow_private_network: false,
                    ca_certificates: None,
                    settings: BTreeMap::from([(
                        "path".to_owned(),
                        "/erp/cancellations".to_owned(),
                    )]),
                    secrets: BTreeMap::from([("signingKey".to_owned(), self.signing_key.clone())]),
                },
                false,
            )
            .await?;
        let order_cancel = JobDefinition {
            name: DEMO_DEFINITION.to_owned(),
            job_type: "Execution".to_owned(),
            connection: DEMO_CONNECTION.to_owned(),
            preprocessor: None,
            integration_processor: DEMO_PROCESSOR.to_owned(),
            post_processor: None,
            parameters: vec![JobParameter {
                name: "OrderNumber".to_owned(),
                value_type: "String".to_owned(),
                default_value: String::new(),
                prompt: "Order Number".to_owned(),
            }],
            retry: RetryPolicy {
                max_attempts: 5,
                initial_backoff_ms: 500,
                max_backoff_ms: 30_000,
            },
            enabled: true,
            applies_to: AppliesTo::Any,
        };
        store.put_job_definition(&order_cancel).await?;
        store
            .put_connection(
                &Connection {
                    name: DEMO_PERSONALIZATION_CONNECTION.to_owned(),
                    base_url: format!("http://{host}"),
                    allowed_hosts: vec![host.clone()],
                    allow_private_network: false,
                    ca_certificates: None,
                    settings: BTreeMap::from([
                        ("siteName".to_owned(), "demo-site".to_owned()),
                        ("offlineChannel".to_owned(), "store".to_owned()),
                    ]),
                    secrets: BTreeMap::from([("siteToken".to_owned(), crate::api::new_token())]),
                },
                false,
            )
            .await?;
        store
            .put_job_definition(&JobDefinition {
                name: DEMO_PERSONALIZATION_DEFINITION.to_owned(),
                connection: DEMO_PERSONALIZATION_CONNECTION.to_owned(),
                integration_processor: DEMO_PERSONALIZATION_PROCESSOR.to_owned(),
                // Optimizely cancels whole orders only: a cancellation of
                // some lines must not reach it as the order's.
                applies_to: AppliesTo::Full,
                ..order_cancel
            })
            .await?;
        for order in demo_orders() {
            store.put_order(&order).await?;
        }
        Ok(())
    }
}

impl Drop for DemoErp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(
    State(state): State<ErpState>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let signature_valid = header("x-rescind-signature")
        .and_then(|s| s.strip_prefix("sha256=").map(str::to_owned))
        .and_then(|hex_sig| hex::decode(hex_sig).ok())
        .is_some_and(|sig| {
            Hmac::<Sha256>::new_from_slice(state.signing_key.as_bytes())
                .map(|mut mac| {
                    mac.update(&body);
                    mac.verify_slice(&sig).is_ok()
                })
                .unwrap_or(false)
        });
    let idempotency_key = header("idempotency-key");
    let personalization = PERSONALIZATION_PATHS
        .iter()
        .any(|prefix| uri.path().starts_with(prefix));
    let mut ledger = state.ledger.lock().unwrap_or_else(|p| p.into_inner());
    let sequence = ledger.requests.len() + 1;
    let (duplicate, reference) = match &idempotency_key {
        // The personalization service signs nothing and answers no reference.
        _ if personalization => (false, None),
        Some(key) if ledger.references.contains_key(key) => {
            (true, ledger.references.get(key).cloned())
        }
        Some(key) if signature_valid => {
            let reference = format!("ERP-CXL-{sequence:05}");
            ledger.references.insert(key.clone(), reference.clone());
            (false, Some(reference))
        }
        _ => (false, None),
    };
    ledger.requests.push(ErpRequest {
        sequence,
        method: method.to_string(),
        path: uri.path().to_owned(),
        idempotency_key,
        attempt: header("x-rescind-attempt"),
        signature_valid,
        duplicate,
        erp_reference: reference.clone(),
        body: serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())),
    });
    match reference {
        _ if personalization => (StatusCode::OK, Json(json!({"status": "cancelled"}))),
        Some(reference) => (
            StatusCode::CREATED,
            Json(json!({"id": reference, "duplicate": duplicate})),
        ),
        None => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "signature or Idempotency-Key missing or wrong"})),
        ),
    }
}

fn date(y: i32, m: u8, d: u8) -> time::Date {
    time::Date::from_calendar_date(
        y,
        time::Month::try_from(m).unwrap_or(time::Month::January),
        d,
    )
    .unwrap_or(time::Date::MIN)
}

fn eur() -> Currency {
    Currency::parse("EUR").unwrap_or_else(|_| unreachable!("EUR is a currency code"))
}

fn product(number: u32, sku: &str, quantity: u32, amount: i64, tax: i64) -> Line {
    Line {
        number,
        sku: sku.to_owned(),
        quantity,
        amount_minor: amount,
        tax_minor: tax,
        parent_line: None,
        kind: LineKind::Product,
        state: LineState::Active,
        erp_line_ref: None,
    }
}

fn allocation(line: u32, warehouse: &str, quantity: u32, kind: AllocationKind) -> Allocation {
    Allocation {
        line_number: line,
        warehouse: warehouse.to_owned(),
        quantity,
        kind,
        state: AllocationState::Allocated,
    }
}

/// The demo orders: each shows a different part of the rules.
fn demo_orders() -> Vec<Order> {
    let mut warranty = product(2, "WARRANTY-3Y", 1, 1500, 285);
    warranty.parent_line = Some(1);
    let mut promo = product(3, "PROMO10", 1, -2000, -380);
    promo.kind = LineKind::Discount {
        applies_to: vec![1],
    };
    vec![
        // Chair with a warranty and a discount, card authorised, one line
        // in stock and one backordered, a visitor session.
        Order {
            number: "SO-1001".to_owned(),
            business_code: "B1".to_owned(),
            customer_number: "C-1".to_owned(),
            website: DEMO_WEBSITE.to_owned(),
            status: "Submitted".to_owned(),
            order_date: date(2024, 9, 1),
            currency: eur(),
            erp_order_number: Some("ERP-1001".to_owned()),
            lines: vec![product(1, "CHAIR", 2, 20000, 3800), warranty, promo],
            payments: vec![Payment {
                id: "pay-1001".to_owned(),
                method: "card".to_owned(),
                authorized_minor: 23205,
                deposited_minor: 0,
                voided_minor: 0,
                refunded_minor: 0,
            }],
            allocations: vec![
                allocation(1, "W1", 2, AllocationKind::Existing),
                allocation(2, "W1", 1, AllocationKind::Expected),
            ],
            approval: None,
            tracking: Some(Tracking {
                channel: Channel::Online,
                session: Some("123|abc".to_owned()),
                cuid: Some("09|Z0".to_owned()),
                offline_channel: None,
            }),
        },
        // Paid in full (deposited): needs forcedCancel; with
        // forcedCancelWithRefund the money goes back.
        Order {
            number: "SO-1002".to_owned(),
            business_code: "B1".to_owned(),
            customer_number: "C-1".to_owned(),
            website: DEMO_WEBSITE.to_owned(),
            status: "Submitted".to_owned(),
            order_date: date(2024, 9, 2),
            currency: eur(),
            erp_order_number: Some("ERP-1002".to_owned()),
            lines: vec![
                product(1, "DESK", 1, 30000, 5700),
                product(2, "LAMP", 3, 6000, 1140),
            ],
            payments: vec![Payment {
                id: "pay-1002".to_owned(),
                method: "card".to_owned(),
                authorized_minor: 42840,
                deposited_minor: 42840,
                voided_minor: 0,
                refunded_minor: 0,
            }],
            allocations: vec![allocation(1, "W2", 1, AllocationKind::Existing)],
            approval: None,
            tracking: None,
        },
        // A B2B order waiting for approval, mostly backordered, placed in a
        // store.
        Order {
            number: "SO-1003".to_owned(),
            business_code: "B1".to_owned(),
            customer_number: "C-2".to_owned(),
            website: DEMO_WEBSITE.to_owned(),
            status: "Submitted".to_owned(),
            order_date: date(2024, 9, 3),
            currency: eur(),
            erp_order_number: None,
            lines: vec![
                product(1, "SHELF", 10, 50000, 9500),
                product(2, "BRACKET", 40, 8000, 1520),
            ],
            payments: vec![Payment {
                id: "pay-1003".to_owned(),
                method: "invoice".to_owned(),
                authorized_minor: 69020,
                deposited_minor: 0,
                voided_minor: 0,
                refunded_minor: 0,
            }],
            allocations: vec![
                allocation(1, "W1", 4, AllocationKind::Existing),
                allocation(1, "W3", 6, AllocationKind::Expected),
                allocation(2, "W3", 40, AllocationKind::Expected),
            ],
            approval: Some(Approval {
                state: ApprovalState::Pending,
            }),
            tracking: Some(Tracking {
                channel: Channel::Offline,
                session: None,
                cuid: None,
                offline_channel: Some("store".to_owned()),
            }),
        },
        // Already shipped: not cancellable.
        Order {
            number: "SO-1004".to_owned(),
            business_code: "B1".to_owned(),
            customer_number: "C-1".to_owned(),
            website: DEMO_WEBSITE.to_owned(),
            status: "Shipped".to_owned(),
            order_date: date(2024, 8, 20),
            currency: eur(),
            erp_order_number: Some("ERP-0998".to_owned()),
            lines: vec![product(1, "SOFA", 1, 90000, 17100)],
            payments: vec![Payment {
                id: "pay-1004".to_owned(),
                method: "card".to_owned(),
                authorized_minor: 107100,
                deposited_minor: 107100,
                voided_minor: 0,
                refunded_minor: 0,
            }],
            allocations: Vec::new(),
            approval: None,
            tracking: None,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_demo_order_is_consistent() {
        for order in demo_orders() {
            assert_eq!(order.validate(), Ok(()), "{}", order.number);
        }
    }
}
