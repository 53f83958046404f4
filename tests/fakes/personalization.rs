//! A fake of Optimizely Personalization's order cancellation. It keeps the
//! orders the storefront reported (their lines and whether they are
//! cancelled); both APIs cancel a whole order, lines included.
//!
//! - Online: `POST /tracker/api/{apiVersion}/{siteName}/order/cancel.pagex`
//!   with `session`, `cuid` and `orderNo`, in the query or in an
//!   `application/x-www-form-urlencoded` body (the documentation allows
//!   both). The version must be one the tracker serves and the site the
//!   fake's; every parameter is required, given once, and no other is
//!   accepted. The order must be an online order the site knows (added with
//!   [`PersonalizationFake::add_online_order`]): Optimizely is told of
//!   orders "when a visitor creates an online order and then cancels it".
//!   Answers 200 and marks the order and its lines cancelled; repeating it
//!   answers 200 again and changes nothing (the tracker records events).
//! - Offline: `DELETE /smart-api/orders/offline/{orderNo}` with the headers
//!   `site`, `siteToken`, `channel` and `Content-Type: application/json`.
//!   The site and token must be the fake's, the channel one it knows, and the
//!   order one created (with [`PersonalizationFake::add_offline_order`]) in
//!   that channel: "the siteName, channel and siteToken values should be the
//!   same as those used to create the order". Answers 204 and deletes the
//!   order (kept here as cancelled, so tests can look at it); a deleted or
//!   unknown order is 404.
//!
//! Error answers are JSON `{"status": …, "message": …}`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::{decode_segment, json_error, lock, media_type, path_of, query_of};
use rescind_host::plugins::ConnectionContext;

use crate::erp_server::{ErpServer, RecordedRequest, Scripted};

/// The tracker API versions the fake serves.
pub const API_VERSIONS: [&str; 2] = ["v1_3", "v1_4"];

/// The offline channels the fake knows.
pub const CHANNELS: [&str; 2] = ["store", "phone"];

/// The parameters of the online cancellation; any other is refused.
pub const ONLINE_PARAMETERS: [&str; 3] = ["session", "cuid", "orderNo"];

/// An online cancellation the tracker recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineCancellation {
    /// The tracker API version of the path.
    pub api_version: String,
    /// `session`.
    pub session: String,
    /// `cuid`.
    pub cuid: String,
    /// `orderNo`.
    pub order_no: String,
}

/// Where an order was placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// During a tracked visitor session.
    Online,
    /// In this offline channel (`store`, `phone`).
    Offline(String),
}

/// An order as Optimizely keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedOrder {
    /// Where it was placed.
    pub placed: Placed,
    /// Its lines by rescind line number: `true` once cancelled.
    pub lines: BTreeMap<u32, bool>,
    /// Whether the order is cancelled (counted no more as a sale).
    pub cancelled: bool,
}

impl TrackedOrder {
    /// Whether nothing of the order is cancelled.
    pub fn is_untouched(&self) -> bool {
        !self.cancelled && self.lines.values().all(|cancelled| !cancelled)
    }

    /// Whether the order and all its lines are cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled && self.lines.values().all(|cancelled| *cancelled)
    }
}

#[derive(Debug)]
struct Site {
    name: String,
    token: String,
    /// Online orders (the tracker's) and offline orders (the smart API's)
    /// are separate: the same number may be in both.
    online: BTreeMap<String, TrackedOrder>,
    offline: BTreeMap<String, TrackedOrder>,
    online_cancellations: Vec<OnlineCancellation>,
    deleted_offline: Vec<String>,
}

/// The running fake; stops when dropped.
pub struct PersonalizationFake {
    server: ErpServer,
    site: Arc<Mutex<Site>>,
}

impl PersonalizationFake {
    /// Starts the fake on 127.0.0.1 for site `site_name` with `site_token`.
    pub async fn start(site_name: &str, site_token: &str) -> Self {
        let site = Arc::new(Mutex::new(Site {
            name: site_name.into(),
            token: site_token.into(),
            online: BTreeMap::new(),
            offline: BTreeMap::new(),
            online_cancellations: Vec::new(),
            deleted_offline: Vec::new(),
        }));
        let api_site = Arc::clone(&site);
        let server = ErpServer::start_with(move |request| answer(request, &api_site)).await;
        Self { server, site }
    }

    /// Records an online order with these lines, as the storefront's
    /// tracking reported it.
    pub fn add_online_order(&self, order_no: &str, lines: &[u32]) {
        self.add(order_no, Placed::Online, lines);
    }

    /// Records an offline order created in `channel` with these lines.
    pub fn add_offline_order(&self, order_no: &str, channel: &str, lines: &[u32]) {
        self.add(order_no, Placed::Offline(channel.into()), lines);
    }

    fn add(&self, order_no: &str, placed: Placed, lines: &[u32]) {
        let order = TrackedOrder {
            lines: lines.iter().map(|&line| (line, false)).collect(),
            cancelled: false,
            placed,
        };
        let mut site = lock(&self.site);
        let orders = match order.placed {
            Placed::Online => &mut site.online,
            Placed::Offline(_) => &mut site.offline,
        };
        orders.insert(order_no.into(), order);
    }

    /// The online order as Optimizely keeps it now.
    pub fn online_order(&self, order_no: &str) -> Option<TrackedOrder> {
        lock(&self.site).online.get(order_no).cloned()
    }

    /// The offline order as Optimizely keeps it now (cancelled once
    /// deleted).
    pub fn offline_order(&self, order_no: &str) -> Option<TrackedOrder> {
        lock(&self.site).offline.get(order_no).cloned()
    }

    /// Whether the offline order is still known (not deleted).
    pub fn has_offline_order(&self, order_no: &str) -> bool {
        self.offline_order(order_no)
            .is_some_and(|order| !order.cancelled)
    }

    /// The offline orders cancelled so far, in order.
    pub fn deleted_offline(&self) -> Vec<String> {
        lock(&self.site).deleted_offline.clone()
    }

    /// The online cancellations recorded so far, in order.
    pub fn online_cancellations(&self) -> Vec<OnlineCancellation> {
        lock(&self.site).online_cancellations.clone()
    }

    /// Queues answers that go before the checks (to inject failures).
    pub fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.server.script(answers);
    }

    /// Every request received.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    /// `http://127.0.0.1:<port>`: the connection's base URL.
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

/// Marks the order and every line cancelled.
fn cancel_whole(order: &mut TrackedOrder) {
    order.cancelled = true;
    for cancelled in order.lines.values_mut() {
        *cancelled = true;
    }
}

fn answer(request: &RecordedRequest, site: &Mutex<Site>) -> Scripted {
    let segments: Vec<&str> = path_of(request).split('/').collect();
    let result = match segments.as_slice() {
        [
            "",
            "tracker",
            "api",
            version,
            site_name,
            "order",
            "cancel.pagex",
        ] => cancel_online(request, version, site_name, site),
        ["", "smart-api", "orders", "offline", order_no] if !order_no.is_empty() => {
            delete_offline(request, order_no, site)
        }
        _ => Err(json_error(
            404,
            &format!("no resource at {}", path_of(request)),
        )),
    };
    match result {
        Ok(answer) | Err(answer) => answer,
    }
}

fn cancel_online(
    request: &RecordedRequest,
    version: &str,
    site_name: &str,
    site: &Mutex<Site>,
) -> Result<Scripted, Scripted> {
    if request.method != http::Method::POST {
        return Err(json_error(
            405,
            &format!("{} is not allowed; use POST", request.method),
        ));
    }
    if !API_VERSIONS.contains(&version) {
        return Err(json_error(
            404,
            &format!("unknown tracker API version {version}"),
        ));
    }
    let mut site = lock(site);
    if site_name != site.name {
        return Err(json_error(404, &format!("unknown site {site_name}")));
    }
    let mut parameters = query_of(request);
    if !request.body.is_empty() {
        if media_type(request).as_deref() != Some("application/x-www-form-urlencoded") {
            return Err(json_error(
                415,
                &format!(
                    "a request body must be application/x-www-form-urlencoded, not {}",
                    request.header("content-type").unwrap_or("(none)")
                ),
            ));
        }
        parameters.extend(form_urlencoded::parse(&request.body).into_owned());
    }
    let mut given = BTreeMap::new();
    for (name, value) in parameters {
        if !ONLINE_PARAMETERS.contains(&name.as_str()) {
            return Err(json_error(400, &format!("unknown parameter {name}")));
        }
        if given.insert(name.clone(), value).is_some() {
            return Err(json_error(400, &format!("parameter {name} given twice")));
        }
    }
    let parameter = |name: &str| {
        given
            .get(name)
            .cloned()
            .filter(|value| !value.is_empty())
            .ok_or_else(|| json_error(400, &format!("missing parameter {name}")))
    };
    let cancellation = OnlineCancellation {
        api_version: version.to_owned(),
        session: parameter("session")?,
        cuid: parameter("cuid")?,
        order_no: parameter("orderNo")?,
    };
    let order = site.online.get_mut(&cancellation.order_no).ok_or_else(|| {
        json_error(
            404,
            &format!("no online order {} on this site", cancellation.order_no),
        )
    })?;
    cancel_whole(order);
    site.online_cancellations.push(cancellation);
    Ok(Scripted::status(200))
}

fn delete_offline(
    request: &RecordedRequest,
    order_no: &str,
    site: &Mutex<Site>,
) -> Result<Scripted, Scripted> {
    if request.method != http::Method::DELETE {
        return Err(json_error(
            405,
            &format!("{} is not allowed; use DELETE", request.method),
        ));
    }
    let order_no = decode_segment(order_no)
        .ok_or_else(|| json_error(400, "the order number is not valid UTF-8"))?;
    let mut site = lock(site);
    let header = |name: &str| {
        request
            .header(name)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| json_error(400, &format!("missing header {name}")))
    };
    let (site_name, token, channel) = (header("site")?, header("siteToken")?, header("channel")?);
    if media_type(request).as_deref() != Some("application/json") {
        return Err(json_error(
            415,
            &format!(
                "Content-Type must be application/json, not {}",
                request.header("content-type").unwrap_or("(none)")
            ),
        ));
    }
    if site_name != site.name || token != site.token {
        return Err(json_error(
            401,
            &format!("invalid site or siteToken for site {site_name}"),
        ));
    }
    if !CHANNELS.contains(&channel) {
        return Err(json_error(
            400,
            &format!(
                "unknown channel {channel}; expected one of {}",
                CHANNELS.join(", ")
            ),
        ));
    }
    // A deleted order is gone: deleting it again finds nothing.
    let order = site
        .offline
        .get_mut(&order_no)
        .filter(|order| order.placed == Placed::Offline(channel.to_owned()) && !order.cancelled)
        .ok_or_else(|| {
            json_error(
                404,
                &format!("offline order {order_no} not found in channel {channel}"),
            )
        })?;
    cancel_whole(order);
    site.deleted_offline.push(order_no);
    Ok(Scripted::status(204))
}
