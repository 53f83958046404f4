//! A fake of Optimizely Personalization's order cancellation.
//!
//! - Online: `POST /tracker/api/{apiVersion}/{siteName}/order/cancel.pagex`
//!   with `session`, `cuid` and `orderNo`, in the query or in an
//!   `application/x-www-form-urlencoded` body (the documentation allows
//!   both). The version must be one the tracker serves and the site the
//!   fake's; every parameter is required. Answers 200 and records the
//!   cancellation.
//! - Offline: `DELETE /smart-api/orders/offline/{orderNo}` with the headers
//!   `site`, `siteToken`, `channel` and `Content-Type: application/json`.
//!   The site and token must be the fake's, the channel one it knows, and the
//!   order one created (with [`PersonalizationFake::add_offline_order`]) in
//!   that channel: "the siteName, channel and siteToken values should be the
//!   same as those used to create the order". Answers 204 and forgets the
//!   order; an unknown order is 404.
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

#[derive(Debug)]
struct Site {
    name: String,
    token: String,
    /// Offline orders by number, with the channel they were created in.
    offline_orders: BTreeMap<String, String>,
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
            offline_orders: BTreeMap::new(),
            online_cancellations: Vec::new(),
            deleted_offline: Vec::new(),
        }));
        let api_site = Arc::clone(&site);
        let server = ErpServer::start_with(move |request| answer(request, &api_site)).await;
        Self { server, site }
    }

    /// Records an offline order created in `channel`.
    pub fn add_offline_order(&self, order_no: &str, channel: &str) {
        lock(&self.site)
            .offline_orders
            .insert(order_no.into(), channel.into());
    }

    /// Whether the offline order is still known (not cancelled).
    pub fn has_offline_order(&self, order_no: &str) -> bool {
        lock(&self.site).offline_orders.contains_key(order_no)
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
    let parameter = |name: &str| {
        parameters
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .filter(|value| !value.is_empty())
            .ok_or_else(|| json_error(400, &format!("missing parameter {name}")))
    };
    let cancellation = OnlineCancellation {
        api_version: version.to_owned(),
        session: parameter("session")?,
        cuid: parameter("cuid")?,
        order_no: parameter("orderNo")?,
    };
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
    match site.offline_orders.get(&order_no) {
        Some(created_in) if created_in == channel => {}
        _ => {
            return Err(json_error(
                404,
                &format!("offline order {order_no} not found in channel {channel}"),
            ));
        }
    }
    site.offline_orders.remove(&order_no);
    site.deleted_offline.push(order_no);
    Ok(Scripted::status(204))
}
