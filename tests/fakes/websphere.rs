//! A fake of WebSphere Commerce's `OrderCancel` URL command at
//! `/webapp/wcs/stores/servlet/OrderCancel`.
//!
//! Parameters come from the query (`GET`) or, for a `POST`, from an
//! `application/x-www-form-urlencoded` body as well. The command checks them
//! as the documentation describes: `orderId`, `URL` and `storeId` required
//! (a URL command runs in a store; the order must belong to it), `langId` a
//! number, one of `forUser` / `forUserId`, `forcedCancel` and
//! `forcedCancelWithRefund` booleans with the refund needing the forced
//! cancel, and no parameter the command does not define (a misspelt one
//! would otherwise be ignored silently). The order must exist with a status
//! of A, B, C, I, L, M, N or W, and deposited payment needs
//! `forcedCancel=true`. Then the order's status and every one of its order
//! items become `X` (never deleted: a second `OrderCancel` of it fails, its
//! status no longer being cancellable), the payment is refunded when asked,
//! and the answer is `302` to `URL`. `OrderCancel` has no parameter naming
//! order items: it always cancels every item.
//!
//! A failing command renders the store's error view: WebSphere's JSON error
//! document inside its `/* … */` guard, with status 200 by default (as a
//! store's error view answers) or another status chosen with
//! [`WebSphereFake::error_status`]. With credentials set, a request without
//! the right basic-auth header gets 401 before the command runs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::{basic_credentials, lock, media_type, path_of, query_of, with_header};
use rescind_host::plugins::ConnectionContext;

use crate::erp_server::{ErpServer, RecordedRequest, Scripted};

/// The command's path.
pub const COMMAND_PATH: &str = "/webapp/wcs/stores/servlet/OrderCancel";

/// The statuses `OrderCancel` can cancel (the behaviour section of the
/// documentation, which lists `W` too).
pub const CANCELLABLE: &str = "ABCILMNW";

/// The parameters `OrderCancel` defines; any other is refused.
pub const PARAMETERS: [&str; 8] = [
    "langId",
    "forUser",
    "forUserId",
    "URL",
    "storeId",
    "orderId",
    "forcedCancel",
    "forcedCancelWithRefund",
];

/// The store the fake's orders belong to unless said otherwise.
pub const STORE_ID: &str = "10101";

/// An order as WebSphere keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WcsOrder {
    /// The store it belongs to.
    pub store_id: String,
    /// The order status, e.g. `M`; `X` once cancelled.
    pub status: char,
    /// Its order items by rescind line number, with each item's status
    /// (`X` once cancelled).
    pub items: BTreeMap<u32, char>,
    /// Whether the order has deposited payment.
    pub deposited: bool,
    /// Whether the cancellation refunded the deposited payment.
    pub refunded: bool,
    /// The `forUser` / `forUserId` of the cancellation, as given.
    pub cancelled_for: Option<String>,
}

impl WcsOrder {
    /// Whether the order and every item are cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.status == 'X' && self.items.values().all(|status| *status == 'X')
    }

    /// Whether nothing of the order is cancelled.
    pub fn is_untouched(&self) -> bool {
        self.status != 'X' && self.items.values().all(|status| *status != 'X')
    }
}

#[derive(Debug)]
struct Store {
    orders: BTreeMap<String, WcsOrder>,
    stores: Vec<String>,
    credentials: Option<String>,
    error_status: u16,
}

/// The running fake; stops when dropped.
pub struct WebSphereFake {
    server: ErpServer,
    store: Arc<Mutex<Store>>,
}

impl WebSphereFake {
    /// Starts the fake on 127.0.0.1 with store [`STORE_ID`], no orders, no
    /// credentials required, and errors answered with status 200.
    pub async fn start() -> Self {
        let store = Arc::new(Mutex::new(Store {
            orders: BTreeMap::new(),
            stores: vec![STORE_ID.into()],
            credentials: None,
            error_status: 200,
        }));
        let api_store = Arc::clone(&store);
        let server = ErpServer::start_with(move |request| answer(request, &api_store)).await;
        Self { server, store }
    }

    /// Requires basic authentication with these credentials from now on.
    pub fn require_credentials(&self, user: &str, password: &str) {
        lock(&self.store).credentials = Some(basic_credentials(user, password));
    }

    /// The status the error view answers with (200 by default).
    pub fn error_status(&self, status: u16) {
        lock(&self.store).error_status = status;
    }

    /// Adds an order of store [`STORE_ID`] with `status`, with or without
    /// deposited payment, and an order item per line number of `lines`, each
    /// with the order's status.
    pub fn add_order(&self, order_id: &str, status: char, deposited: bool, lines: &[u32]) {
        lock(&self.store).orders.insert(
            order_id.into(),
            WcsOrder {
                store_id: STORE_ID.into(),
                status,
                items: lines.iter().map(|&line| (line, status)).collect(),
                deposited,
                refunded: false,
                cancelled_for: None,
            },
        );
    }

    /// Adds another store the command knows (its orders are added with
    /// [`add_order`](Self::add_order) and moved with `move_order`).
    pub fn add_store(&self, store_id: &str) {
        lock(&self.store).stores.push(store_id.into());
    }

    /// Moves an order to another store.
    pub fn move_order(&self, order_id: &str, store_id: &str) {
        if let Some(order) = lock(&self.store).orders.get_mut(order_id) {
            order.store_id = store_id.into();
        }
    }

    /// The order as WebSphere keeps it now.
    pub fn order(&self, order_id: &str) -> Option<WcsOrder> {
        lock(&self.store).orders.get(order_id).cloned()
    }

    /// Queues answers that go before the command (to inject failures).
    pub fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.server.script(answers);
    }

    /// Every request received.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    /// `http://127.0.0.1:<port>`: the server root, the connection's base URL.
    pub fn base_url(&self) -> String {
        self.server.url("")
    }

    /// `127.0.0.1:<port>`, for the connection's allowedHosts.
    pub fn authority(&self) -> String {
        self.server.authority()
    }

    /// A connection to this fake (base URL and allowed host), without
    /// settings or secrets yet.
    pub fn connection(&self) -> ConnectionContext {
        ConnectionContext {
            base_url: self.base_url(),
            allowed_hosts: vec![self.authority()],
            ..ConnectionContext::default()
        }
    }
}

/// The parameters of a request: query pairs, plus form pairs for a POST.
pub fn parameters(request: &RecordedRequest) -> Vec<(String, String)> {
    let mut pairs = query_of(request);
    if request.method == http::Method::POST {
        pairs.extend(form_urlencoded::parse(&request.body).into_owned());
    }
    pairs
}

fn answer(request: &RecordedRequest, store: &Mutex<Store>) -> Scripted {
    if path_of(request) != COMMAND_PATH {
        return html(404, "Error 404: SRVE0190E: File not found");
    }
    let mut store = lock(store);
    if let Some(expected) = &store.credentials
        && request.header("authorization") != Some(expected.as_str())
    {
        return with_header(
            html(401, "Error 401: SRVE0295E: Error reported: 401"),
            "www-authenticate",
            "Basic realm=\"WebSphere Commerce\"",
        );
    }
    let error_status = store.error_status;
    match run_command(request, &mut store) {
        Ok(url) => {
            // WebSphere makes a relative URL absolute on the host asked.
            let location = if url.starts_with('/') {
                format!(
                    "http://{}{url}",
                    request.header("host").unwrap_or("localhost")
                )
            } else {
                url
            };
            with_header(Scripted::status(302), "location", &location)
        }
        Err((key, message)) => error_view(error_status, key, &message),
    }
}

/// Runs `OrderCancel`: the success URL, or the error's message key and text.
fn run_command(
    request: &RecordedRequest,
    store: &mut Store,
) -> Result<String, (&'static str, String)> {
    let bad = |message: String| ("_ERR_CMD_INVALID_PARAM", message);
    match request.method {
        http::Method::GET => {}
        http::Method::POST => {
            if media_type(request).as_deref() != Some("application/x-www-form-urlencoded") {
                return Err(bad(format!(
                    "A POST must send its parameters as application/x-www-form-urlencoded, not {}.",
                    request.header("content-type").unwrap_or("(none)")
                )));
            }
        }
        _ => {
            return Err(bad(format!(
                "The method {} is not supported.",
                request.method
            )));
        }
    }
    let mut given = BTreeMap::new();
    for (name, value) in parameters(request) {
        if !PARAMETERS.contains(&name.as_str()) {
            return Err(bad(format!(
                "The parameter {name} is not a parameter of OrderCancel."
            )));
        }
        if given.insert(name.clone(), value).is_some() {
            return Err(bad(format!(
                "The parameter {name} is given more than once."
            )));
        }
    }
    let get = |name: &str| given.get(name).map(String::as_str);
    let required = |name: &str| {
        get(name).filter(|value| !value.is_empty()).ok_or((
            "_ERR_CMD_MISSING_PARAM",
            format!("The parameter {name} is missing."),
        ))
    };
    let flag = |name: &str| match get(name) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(bad(format!(
            "The value {other} of the parameter {name} is not true or false."
        ))),
    };

    let order_id = required("orderId")?.to_owned();
    let url = required("URL")?.to_owned();
    let store_id = required("storeId")?.to_owned();
    if !store.stores.contains(&store_id) {
        return Err(bad(format!("The store {store_id} does not exist.")));
    }
    if let Some(lang_id) = get("langId")
        && lang_id.parse::<i32>().is_err()
    {
        return Err(bad(format!("The language {lang_id} is not valid.")));
    }
    let for_user = match (get("forUser"), get("forUserId")) {
        (Some(_), Some(_)) => {
            return Err(bad("Specify either forUser or forUserId, not both.".into()));
        }
        (Some(logon_id), None) if !logon_id.is_empty() => Some(logon_id.to_owned()),
        (None, Some(user_id)) if user_id.parse::<u64>().is_ok() => Some(user_id.to_owned()),
        (None, None) => None,
        (Some(value), None) | (None, Some(value)) => {
            return Err(bad(format!("The user {value} is not valid.")));
        }
    };
    let forced = flag("forcedCancel")?;
    let refund = flag("forcedCancelWithRefund")?;
    if refund && !forced {
        return Err(bad(
            "forcedCancelWithRefund=true requires forcedCancel=true.".into(),
        ));
    }

    let order = store
        .orders
        .get_mut(&order_id)
        .filter(|order| order.store_id == store_id)
        .ok_or((
            "_ERR_ORDER_NOT_FOUND",
            format!("The order {order_id} does not exist in store {store_id}."),
        ))?;
    if !CANCELLABLE.contains(order.status) {
        return Err((
            "_ERR_ORDER_NOT_CANCELLABLE",
            format!(
                "The order {order_id} cannot be cancelled because its status is {}.",
                order.status
            ),
        ));
    }
    if order.deposited && !forced {
        return Err((
            "_ERR_DEPOSITED_PAYMENT",
            format!(
                "The order {order_id} has deposited payment: it can only be cancelled with forcedCancel=true."
            ),
        ));
    }
    // The whole order: OrderCancel names no order items.
    order.status = 'X';
    for status in order.items.values_mut() {
        *status = 'X';
    }
    order.refunded = order.deposited && refund;
    order.cancelled_for = for_user;
    Ok(url)
}

/// The store's error view: WebSphere's JSON error document in its comment
/// guard.
fn error_view(status: u16, key: &str, message: &str) -> Scripted {
    let document = json!({
        "errorCode": "",
        "errorMessage": message,
        "errorMessageKey": key,
        "errorMessageParam": [],
        "originatingCommand": "OrderCancel",
        "correctiveActionMessage": "",
        "exceptionType": "0",
        "systemMessage": ""
    });
    Scripted {
        status,
        headers: vec![(
            "content-type".into(),
            "application/json; charset=UTF-8".into(),
        )],
        body: format!("/*\n{document:#}\n*/"),
        ..Scripted::status(status)
    }
}

fn html(status: u16, title: &str) -> Scripted {
    Scripted {
        headers: vec![("content-type".into(), "text/html; charset=UTF-8".into())],
        body: format!(
            "<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
        ),
        ..Scripted::status(status)
    }
}
