//! The gate on outbound HTTP: every wasi:http request a plugin makes passes
//! [`WasiHttpHooks::send_request`] here, and this is the only code that
//! sends one.
//!
//! Each request is counted and measured against the call's limits, checked
//! against the connection's egress policy (`outbound.rs`) by name, then its
//! host is resolved **once** and every address checked; the TCP connection
//! goes to a checked address (no second lookup, so no window for DNS
//! rebinding), TLS verifies the certificate against the *name* with the web
//! PKI roots plus the connection's own CAs, and hyper speaks HTTP/1.1 over
//! it with head-size limits. The response body is counted as it streams,
//! under the between-bytes timeout and the call's deadline.
//!
//! A response read to its end over HTTP/1.1 leaves its connection open for
//! the plugin's next request to the same destination (`keepalive.rs`); that
//! request passes every check above all the same, and takes the kept
//! connection only when its address is among those it just checked.
//!
//! Redirects are never followed: a 3xx goes back to the plugin as it came.
//!
//! A refused destination or a TLS certificate the connection does not trust
//! is recorded in the call's [`EgressVerdict`]: the attempt then ends
//! `misconfigured` with that message, whatever the plugin answered.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hashlink::LruCache;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use rustls::ClientConfig;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::plugins::capture::CaptureAnswers;
use crate::plugins::config::{CallLimits, ResolveOverrides};
use crate::plugins::keepalive::{ConnectionPool, Lease, PoolKey, keep_after};
use crate::plugins::log::{CallLog, LogLevel, LogSource};
use crate::plugins::outbound::{Destination, DestinationHost, EgressPolicy, EgressRefusal};
use crate::plugins::outcome::CallOutcome;
use crate::plugins::send_window::SendWindow;
use crate::plugins::trust::{CaCertificatesError, parse_ca_certificates};

/// How much of a refused request's body is read (and thrown away) before
/// the refusal is returned.
const DENIED_BODY_DRAIN_BYTES: usize = 1024 * 1024;

/// The runtime's default outbound timeouts (`RuntimeConfig`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutboundTimeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub between_bytes: Duration,
}

/// What every call of a runtime shares for sending: pinned names, the
/// TLS set-up trusting the public web roots, and the kept-alive
/// connections.
pub(crate) struct Network {
    resolve: ResolveOverrides,
    provider: Arc<CryptoProvider>,
    web_roots: Arc<ClientConfig>,
    /// The TLS set-up of each connection's own CAs, by its
    /// `caCertificates` text (see [`Network::trust`]).
    private_roots: Mutex<LruCache<String, Trust>>,
    pool: Arc<ConnectionPool>,
}

/// Distinct `caCertificates` texts whose TLS set-up is kept: more than a
/// host has connections with their own CAs, as a rule. One that falls out
/// is parsed and set up again on its next call.
const KEPT_PRIVATE_ROOTS: usize = 32;

/// What a call's TLS trusts: the public web roots, plus the connection's
/// own CAs when it names some, and the TLS set-up made from them. Cheap to
/// clone.
#[derive(Clone)]
pub(crate) struct Trust {
    /// The connection's own CAs (none: the web roots alone).
    pub roots: Arc<[CertificateDer<'static>]>,
    /// Made once per distinct set of roots and shared by every call and
    /// connection that trusts them, so that its TLS sessions are kept too: a
    /// new connection to the ERP resumes one instead of a full handshake.
    config: Arc<ClientConfig>,
}

/// Why a call's TLS trust could not be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TrustError {
    /// The connection's `caCertificates` is refused: it needs fixing.
    #[error(transparent)]
    Certificates(#[from] CaCertificatesError),
    /// rustls refused the set-up (the host's fault, not the connection's).
    #[error("TLS set-up: {0}")]
    Tls(#[from] rustls::Error),
}

impl Network {
    /// `keep_alive`: how long a connection may stay idle for the next
    /// request (zero: none is kept).
    pub fn new(resolve: ResolveOverrides, keep_alive: Duration) -> Result<Self, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let web_roots = Arc::new(client_config(&provider, &[])?);
        Ok(Self {
            resolve,
            provider,
            web_roots,
            private_roots: Mutex::new(LruCache::new(KEPT_PRIVATE_ROOTS)),
            pool: Arc::new(ConnectionPool::new(keep_alive)),
        })
    }

    /// What a call of a connection with these `caCertificates` trusts: the
    /// web roots alone without any; with some, the set-up made for the same
    /// text before, or one made now (the text parsed and checked) and kept
    /// for the next call.
    pub fn trust(&self, ca_certificates: Option<&str>) -> Result<Trust, TrustError> {
        let Some(pem) = ca_certificates else {
            return Ok(Trust {
                roots: Arc::new([]),
                config: Arc::clone(&self.web_roots),
            });
        };
        if let Some(kept) = self.kept_roots().get(pem) {
            return Ok(kept.clone());
        }
        // Made outside the lock: calls of other connections go on. Two
        // calls missing at once both make it; the second insert wins.
        let roots: Arc<[CertificateDer<'static>]> = parse_ca_certificates(pem)?.into();
        let trust = Trust {
            config: Arc::new(client_config(&self.provider, &roots)?),
            roots,
        };
        self.kept_roots().insert(pem.to_owned(), trust.clone());
        Ok(trust)
    }

    fn kept_roots(&self) -> std::sync::MutexGuard<'_, LruCache<String, Trust>> {
        // Each use is one call on the cache: a panic leaves it consistent.
        self.private_roots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Idle connections kept for the next requests.
    pub fn idle_connections(&self) -> usize {
        self.pool.idle()
    }
}

fn client_config(
    provider: &Arc<CryptoProvider>,
    extra_roots: &[CertificateDer<'static>],
) -> Result<ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for certificate in extra_roots {
        roots.add(certificate.clone())?;
    }
    Ok(ClientConfig::builder_with_provider(Arc::clone(provider))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The host's decision about a call's egress, which overrides the plugin's
/// own answer: the first refused request or untrusted certificate (the
/// connection needs fixing), or a request held back because the job's lease
/// ran out while the call ran (nothing was sent: another attempt may
/// deliver).
#[derive(Debug, Clone, Default)]
pub(crate) struct EgressVerdict(Arc<Mutex<Option<CallOutcome>>>);

impl EgressVerdict {
    /// Logs `message` as a runtime warning and keeps it, redacted, as the
    /// call's outcome (the connection is misconfigured), unless an earlier
    /// verdict was kept.
    fn record(&self, log: &CallLog, message: &str) {
        self.keep(log, message, CallOutcome::Misconfigured);
    }

    /// Logs `message` as a runtime warning and keeps it, redacted, as the
    /// call's outcome (a passing failure: nothing was sent, so a later
    /// attempt may deliver), unless an earlier verdict was kept.
    fn hold_back(&self, log: &CallLog, message: &str) {
        self.keep(log, message, CallOutcome::Transient);
    }

    fn keep(&self, log: &CallLog, message: &str, outcome: fn(String) -> CallOutcome) {
        let redacted = log.with(|book| {
            book.line(LogSource::Runtime, LogLevel::Warn, message);
            book.redacted(message)
        });
        let mut verdict = self.0.lock().unwrap_or_else(|e| e.into_inner());
        verdict.get_or_insert_with(|| outcome(redacted));
    }

    /// The kept outcome, if any.
    pub fn take(&self) -> Option<CallOutcome> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// The outbound-request hook of one call.
pub(crate) struct OutboundGate {
    /// The calling plugin's component digest: connections are kept for it
    /// alone.
    pub plugin: Arc<str>,
    pub policy: Arc<EgressPolicy>,
    /// What its TLS trusts (`caCertificates`).
    pub trust: Trust,
    pub network: Arc<Network>,
    pub log: CallLog,
    pub deadline: Instant,
    pub timeouts: OutboundTimeouts,
    pub limits: CallLimits,
    pub verdict: EgressVerdict,
    /// Requests made so far.
    pub requests: u32,
    /// Response body bytes read so far, all requests together.
    pub body_bytes: Arc<AtomicU64>,
    /// Until when the call may send requests, when its caller bounds it.
    pub send_window: Option<SendWindow>,
    /// For a shadow run: the answers a request that passed every check gets
    /// instead of being sent.
    pub capture: Option<CaptureAnswers>,
}

type ResponseIo = Box<dyn Future<Output = Result<(), Error>> + Send>;
type ResponseFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, ResponseIo), Error>> + Send>;

impl WasiHttpHooks for OutboundGate {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _request_errors: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> ResponseFuture {
        self.requests = self.requests.saturating_add(1);
        let limit = self.limits.outbound_requests;
        if self.requests > limit {
            if self.requests == limit.saturating_add(1) {
                self.warn(&format!(
                    "outbound request {} refused: a call may make at most {limit} requests \
                     (limit: outbound requests per call); later ones are refused too",
                    self.requests
                ));
            }
            return deny(request, Error::ConnectionLimitReached);
        }
        if let Some(window) = &self.send_window
            && !window.is_open()
        {
            self.verdict.hold_back(
                &self.log,
                "outbound request refused: the job's lease ran out while the call ran \
                 (the worker was paused or the store could not be reached), so another \
                 worker may be running the job; nothing was sent",
            );
            return deny(request, Error::HttpRequestDenied);
        }

        let header_bytes = header_section_bytes(request.headers());
        let limit = self.limits.request_header_bytes;
        if header_bytes > limit {
            self.warn(&format!(
                "outbound request refused: its headers take {header_bytes} bytes, more than \
                 the {limit} bytes a request may send (limit: request header bytes)"
            ));
            return deny(
                request,
                Error::HttpRequestHeaderSectionSize(Some(saturating_u32(header_bytes))),
            );
        }

        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or_default();
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        let destination = match self.policy.check_request(scheme, authority) {
            Ok(destination) => destination,
            Err(refusal) => {
                self.verdict.record(&self.log, &refusal.to_string());
                return deny(request, Error::HttpRequestDenied);
            }
        };

        if let Some(capture) = &mut self.capture {
            return capture.answer(request, &self.log);
        }

        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let exchange = Exchange {
            plugin: Arc::clone(&self.plugin),
            destination,
            policy: Arc::clone(&self.policy),
            network: Arc::clone(&self.network),
            trust: self.trust.clone(),
            log: self.log.clone(),
            verdict: self.verdict.clone(),
            deadline: self.deadline,
            timeouts: bounded_timeouts(options.unwrap_or_default(), self.timeouts, remaining),
            limits: self.limits,
            body_bytes: Arc::clone(&self.body_bytes),
        };
        Box::new(exchange.send(request))
    }
}

impl OutboundGate {
    fn warn(&self, message: &str) {
        self.log
            .with(|book| book.line(LogSource::Runtime, LogLevel::Warn, message));
    }
}

/// Refuses a request before anything went out.
fn deny(request: http::Request<WasiBody>, error: Error) -> ResponseFuture {
    Box::new(async move {
        // The guest writes the body after handing over the request; reading
        // it first lets the guest see the refusal rather than a reset
        // connection.
        drain(request.into_body()).await;
        Err(error)
    })
}

/// One request on its way out, after the name checks passed.
struct Exchange {
    plugin: Arc<str>,
    destination: Destination,
    policy: Arc<EgressPolicy>,
    network: Arc<Network>,
    trust: Trust,
    log: CallLog,
    verdict: EgressVerdict,
    deadline: Instant,
    timeouts: OutboundTimeouts,
    limits: CallLimits,
    body_bytes: Arc<AtomicU64>,
}

/// Why a request got no response head.
enum SendFailure {
    /// Nothing of it was written: the connection was closed or not ready.
    Unsent(Box<http::Request<WasiBody>>, hyper::Error),
    /// It failed on the way, or its answer did.
    Failed(Error),
}
use SendFailure::{Failed, Unsent};

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

impl Exchange {
    async fn send(
        self,
        mut request: http::Request<WasiBody>,
    ) -> Result<(http::Response<WasiBody>, ResponseIo), Error> {
        // Resolving and connecting (TLS included) share the connect timeout.
        let connect_by = tokio::time::Instant::now() + self.timeouts.connect;
        let addresses = match tokio::time::timeout_at(connect_by, self.resolve()).await {
            Ok(Ok(addresses)) => addresses,
            Ok(Err(error)) => return Err(error),
            Err(_) => return Err(Error::DnsTimeout),
        };
        if let Err(refusal) = self.policy.check_addresses(&self.destination, &addresses) {
            self.refuse(&refusal);
            drain(request.into_body()).await;
            return Err(Error::DestinationIpProhibited);
        }

        // The request line carries only the path: scheme and authority are
        // for proxies (the Host header names the destination).
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        *request.uri_mut() = http::Uri::builder()
            .path_and_query(path)
            .build()
            .map_err(|_| Error::HttpRequestUriInvalid)?;

        // A kept connection to one of the addresses just checked, else a
        // new one.
        let key = self.pool_key();
        let pool = &self.network.pool;
        let mut kept = None;
        if let Some(mut lease) = pool.take(&key, &addresses)
            && let Ok(Ok(())) = tokio::time::timeout_at(connect_by, lease.sender.ready()).await
        {
            kept = Some(lease);
        }
        let reused = kept.is_some();
        let mut lease = match kept {
            Some(lease) => lease,
            None => self.open(&addresses, connect_by).await?,
        };
        let response = match self.send_on(&mut lease, request).await {
            Ok(response) => response,
            // The kept connection closed as it was taken, before anything
            // of the request was written: once more, on a new one.
            Err(Unsent(request, _)) if reused => {
                lease = self.open(&addresses, connect_by).await?;
                match self.send_on(&mut lease, *request).await {
                    Ok(response) => response,
                    Err(Unsent(_, error)) => return Err(self.response_error(error)),
                    Err(Failed(error)) => return Err(error),
                }
            }
            Err(Unsent(_, error)) => return Err(self.response_error(error)),
            Err(Failed(error)) => return Err(error),
        };

        // The connection is kept only if the response ends whole and the
        // ERP did not ask to close it.
        let keep = keep_after(response.version(), response.headers());
        let connection = if response.body().is_end_stream() {
            pool.put(key, lease, keep);
            None
        } else {
            Some(Kept {
                pool: Arc::clone(pool),
                key,
                lease,
                keep,
            })
        };
        let timer = Box::pin(tokio::time::sleep_until(self.next_byte_deadline()));
        let body = MeteredBody {
            incoming: None,
            connection,
            destination: self.destination.to_string(),
            read: Arc::clone(&self.body_bytes),
            limit: self.limits.response_body_bytes,
            between_bytes: self.timeouts.between_bytes,
            deadline: tokio::time::Instant::from_std(self.deadline),
            timer,
            log: self.log.clone(),
        };
        let response = response.map(|incoming| {
            MeteredBody {
                incoming: Some(incoming),
                ..body
            }
            .boxed_unsync()
        });
        // The connection's I/O runs in its own task, which the body holds
        // (or the pool, once the body ended): nothing more to drive here.
        let io: ResponseIo = Box::new(std::future::ready(Ok(())));
        Ok((response, io))
    }

    /// What a connection made for this request may be used for again.
    fn pool_key(&self) -> PoolKey {
        PoolKey {
            plugin: Arc::clone(&self.plugin),
            connection: self.policy.connection().to_owned(),
            destination: self.destination.to_string(),
            roots: Arc::clone(&self.trust.roots),
            head_limits: (
                self.limits.response_header_fields,
                self.limits.response_header_bytes,
            ),
        }
    }

    /// A new connection to the first of `addresses` that answers, HTTP/1.1
    /// set up over it, its I/O driven by a task of its own.
    async fn open(
        &self,
        addresses: &[IpAddr],
        connect_by: tokio::time::Instant,
    ) -> Result<Lease, Error> {
        let (stream, peer) = tokio::time::timeout_at(connect_by, self.connect(addresses))
            .await
            .map_err(|_| Error::ConnectionTimeout)??;
        let (sender, connection) = tokio::time::timeout_at(connect_by, async {
            hyper::client::conn::http1::Builder::new()
                .max_headers(self.limits.response_header_fields)
                .max_header_size(self.limits.response_header_bytes)
                .max_buf_size((2 * self.limits.response_header_bytes).max(8192))
                .handshake::<_, WasiBody>(TokioIo::new(stream))
                .await
        })
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
        // Its errors reach the request or the body it was serving.
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Lease {
            sender,
            driver,
            peer,
        })
    }

    /// Sends `request` on `lease`'s connection and waits for the response
    /// head, under the first-byte timeout.
    async fn send_on(
        &self,
        lease: &mut Lease,
        request: http::Request<WasiBody>,
    ) -> Result<http::Response<Incoming>, SendFailure> {
        match tokio::time::timeout(
            self.timeouts.first_byte,
            lease.sender.try_send_request(request),
        )
        .await
        {
            Err(_) => Err(Failed(Error::ConnectionReadTimeout)),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(mut failed)) => match failed.take_message() {
                Some(request) => Err(Unsent(Box::new(request), failed.into_error())),
                None => Err(Failed(self.response_error(failed.into_error()))),
            },
        }
    }

    /// The destination's addresses: an IP literal is itself, a pinned name
    /// its pinned addresses, any other name what the system resolver says.
    async fn resolve(&self) -> Result<Vec<IpAddr>, Error> {
        let name = match self.destination.host() {
            DestinationHost::Ip(ip) => return Ok(vec![*ip]),
            DestinationHost::Name(name) => name,
        };
        if let Some(pinned) = self.network.resolve.get(name) {
            return Ok(pinned.to_vec());
        }
        let dns_error = |detail: String| Error::DnsError {
            rcode: Some(detail),
            info_code: None,
        };
        let found = tokio::net::lookup_host((name.as_str(), self.destination.port()))
            .await
            .map_err(|e| dns_error(format!("{name}: {e}")))?;
        let mut addresses: Vec<IpAddr> = Vec::new();
        for address in found {
            if !addresses.contains(&address.ip()) {
                addresses.push(address.ip());
            }
        }
        if addresses.is_empty() {
            return Err(dns_error(format!("{name} has no address")));
        }
        Ok(addresses)
    }

    /// A TCP connection to the first checked address that answers, then
    /// TLS for https; and the address it went to.
    async fn connect(&self, addresses: &[IpAddr]) -> Result<(Box<dyn Stream>, IpAddr), Error> {
        let port = self.destination.port();
        let mut last_error = None;
        let mut tcp = None;
        for &address in addresses {
            match TcpStream::connect(SocketAddr::new(address, port)).await {
                Ok(stream) => {
                    tcp = Some((stream, address));
                    break;
                }
                Err(error) => last_error = Some(error),
            }
        }
        let (tcp, peer) = match (tcp, last_error) {
            (Some(tcp), _) => tcp,
            (None, Some(error)) => return Err(connect_error(error)),
            (None, None) => return Err(Error::DestinationNotFound),
        };
        let _ = tcp.set_nodelay(true);
        if !self.destination.is_https() {
            return Ok((Box::new(tcp), peer));
        }
        let config = Arc::clone(&self.trust.config);
        let server_name = match self.destination.host() {
            DestinationHost::Ip(ip) => ServerName::IpAddress((*ip).into()),
            DestinationHost::Name(name) => {
                ServerName::try_from(name.clone()).map_err(|_| Error::HttpRequestUriInvalid)?
            }
        };
        match tokio_rustls::TlsConnector::from(config)
            .connect(server_name, tcp)
            .await
        {
            Ok(tls) => Ok((Box::new(tls), peer)),
            Err(error) => Err(self.tls_error(&error)),
        }
    }

    /// Sorts a TLS failure: a certificate the connection does not trust is
    /// the operator's to fix (the verdict), anything else may pass.
    fn tls_error(&self, error: &std::io::Error) -> Error {
        let rustls_error = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        match rustls_error {
            Some(
                reason @ (rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented),
            ) => {
                let connection = self.policy.connection();
                let fix = match reason {
                    rustls::Error::InvalidCertificate(
                        rustls::CertificateError::NotValidForName
                        | rustls::CertificateError::NotValidForNameContext { .. },
                    ) => "reach the ERP by a name its certificate carries".to_owned(),
                    rustls::Error::InvalidCertificate(
                        rustls::CertificateError::Expired
                        | rustls::CertificateError::ExpiredContext { .. }
                        | rustls::CertificateError::NotValidYet
                        | rustls::CertificateError::NotValidYetContext { .. },
                    ) => "the ERP's certificate must be renewed".to_owned(),
                    _ => format!(
                        "if the ERP's certificate comes from a private CA, put that CA in \
                         caCertificates on connection \"{connection}\""
                    ),
                };
                self.verdict.record(
                    &self.log,
                    &format!(
                        "TLS certificate of {} not accepted ({reason}); {fix}",
                        self.destination
                    ),
                );
                Error::TlsCertificateError
            }
            Some(rustls::Error::AlertReceived(alert)) => Error::TlsAlertReceived {
                alert_id: Some(u8::from(*alert)),
                alert_message: Some(format!("{alert:?}")),
            },
            _ => Error::TlsProtocolError,
        }
    }

    fn response_error(&self, error: hyper::Error) -> Error {
        if error.is_parse_too_large() {
            let (bytes, fields) = (
                self.limits.response_header_bytes,
                self.limits.response_header_fields,
            );
            self.log.with(|book| {
                book.line(
                    LogSource::Runtime,
                    LogLevel::Warn,
                    &format!(
                        "response from {} refused: its head is larger than {bytes} bytes or \
                         {fields} header fields (limit: response header bytes and fields)",
                        self.destination
                    ),
                )
            });
            return Error::HttpResponseHeaderSectionSize(Some(saturating_u32(bytes)));
        }
        if error.is_timeout() {
            return Error::HttpResponseTimeout;
        }
        Error::Hyper(error)
    }

    fn refuse(&self, refusal: &EgressRefusal) {
        self.verdict.record(&self.log, &refusal.to_string());
    }

    fn next_byte_deadline(&self) -> tokio::time::Instant {
        let next = Instant::now() + self.timeouts.between_bytes;
        tokio::time::Instant::from_std(next.min(self.deadline))
    }
}

fn connect_error(error: std::io::Error) -> Error {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::ConnectionRefused => Error::ConnectionRefused,
        ErrorKind::TimedOut => Error::ConnectionTimeout,
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => Error::DestinationUnavailable,
        _ => Error::Connect(error),
    }
}

/// A response body counted against the call's byte limit as it streams,
/// under the between-bytes timeout and the call's deadline. Read to its
/// end, it gives its connection back to the pool; dropped or cut before,
/// it closes it.
struct MeteredBody {
    /// `None` only while the response is being put together.
    incoming: Option<Incoming>,
    /// The connection the body comes over, while it may be kept.
    connection: Option<Kept>,
    destination: String,
    read: Arc<AtomicU64>,
    limit: u64,
    between_bytes: Duration,
    deadline: tokio::time::Instant,
    timer: Pin<Box<tokio::time::Sleep>>,
    log: CallLog,
}

/// A connection to give back once its response has ended.
struct Kept {
    pool: Arc<ConnectionPool>,
    key: PoolKey,
    lease: Lease,
    /// How long the ERP lets it stay idle.
    keep: Duration,
}

impl MeteredBody {
    /// Gives the connection back, the response having ended whole.
    fn ended(&mut self) {
        if let Some(kept) = self.connection.take() {
            kept.pool.put(kept.key, kept.lease, kept.keep);
        }
    }

    /// Stops reading: the connection closes.
    fn cut(&mut self) {
        self.incoming = None;
        self.connection = None;
    }
}

impl Body for MeteredBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        let Some(incoming) = this.incoming.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(incoming).poll_frame(cx) {
            Poll::Ready(None) => {
                this.ended();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                this.cut();
                Poll::Ready(Some(Err(if error.is_timeout() {
                    Error::HttpResponseTimeout
                } else {
                    Error::Hyper(error)
                })))
            }
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                let total = this.read.fetch_add(len, Ordering::Relaxed) + len;
                if total > this.limit {
                    // Nothing more is read: the connection closes.
                    this.cut();
                    let limit = this.limit;
                    this.log.with(|book| {
                        book.line(
                            LogSource::Runtime,
                            LogLevel::Warn,
                            &format!(
                                "response body from {} cut: a call may read at most {limit} \
                                 bytes of response bodies (limit: response body bytes)",
                                this.destination
                            ),
                        )
                    });
                    return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(limit)))));
                }
                if this.incoming.as_ref().is_some_and(Body::is_end_stream) {
                    this.ended();
                }
                let next = tokio::time::Instant::now() + this.between_bytes;
                this.timer.as_mut().reset(next.min(this.deadline));
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(this.timer.as_mut().poll(cx));
                this.cut();
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// A request's header section as it goes on the wire: each field's name and
/// value plus `: ` and CRLF.
fn header_section_bytes(headers: &http::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The guest's timeouts (if it set any) or the runtime's, each cut to what
/// is left of the call's deadline.
fn bounded_timeouts(
    guest: RequestOptions,
    defaults: OutboundTimeouts,
    remaining: Duration,
) -> OutboundTimeouts {
    let bound = |asked: Option<Duration>, default: Duration| {
        asked.unwrap_or(default).min(default).min(remaining)
    };
    OutboundTimeouts {
        connect: bound(guest.connect_timeout, defaults.connect),
        first_byte: bound(guest.first_byte_timeout, defaults.first_byte),
        between_bytes: bound(guest.between_bytes_timeout, defaults.between_bytes),
    }
}

/// Reads and discards up to [`DENIED_BODY_DRAIN_BYTES`] of a body.
async fn drain(mut body: WasiBody) {
    let mut read = 0;
    while read < DENIED_BODY_DRAIN_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len()),
            Some(Err(_)) | None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::trust::tests::ca_pem;

    const DEFAULTS: OutboundTimeouts = OutboundTimeouts {
        connect: Duration::from_secs(5),
        first_byte: Duration::from_secs(10),
        between_bytes: Duration::from_secs(10),
    };

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// A connection's CAs are set up once and shared while kept; at most
    /// [`KEPT_PRIVATE_ROOTS`] texts are kept, the least recently used
    /// dropped first; refused text is never kept.
    #[test]
    fn private_roots_are_set_up_once_and_kept_within_a_bound() {
        let network = Network::new(ResolveOverrides::default(), Duration::ZERO).unwrap();
        let none = network.trust(None).unwrap();
        assert!(none.roots.is_empty());
        assert!(Arc::ptr_eq(&none.config, &network.web_roots));

        let first = ca_pem();
        let a = network.trust(Some(&first)).unwrap();
        let again = network.trust(Some(&first)).unwrap();
        assert_eq!(a.roots.len(), 1);
        assert!(Arc::ptr_eq(&a.config, &again.config), "made once");
        assert!(!Arc::ptr_eq(&a.config, &network.web_roots));

        assert!(matches!(
            network.trust(Some("not a certificate")),
            Err(TrustError::Certificates(CaCertificatesError::Empty))
        ));
        for _ in 0..KEPT_PRIVATE_ROOTS {
            network.trust(Some(&ca_pem())).unwrap();
        }
        assert_eq!(network.kept_roots().len(), KEPT_PRIVATE_ROOTS);
        let remade = network.trust(Some(&first)).unwrap();
        assert!(
            !Arc::ptr_eq(&a.config, &remade.config),
            "the least recently used fell out and is made again"
        );
    }

    #[test]
    fn timeouts_never_outlast_the_deadline_or_the_defaults() {
        let guest = RequestOptions {
            connect_timeout: Some(secs(1)),
            first_byte_timeout: Some(secs(600)),
            between_bytes_timeout: None,
        };
        let bounded = bounded_timeouts(guest, DEFAULTS, secs(60));
        assert_eq!(
            (bounded.connect, bounded.first_byte, bounded.between_bytes),
            (secs(1), secs(10), secs(10))
        );
        let bounded = bounded_timeouts(RequestOptions::default(), DEFAULTS, secs(2));
        assert_eq!(
            (bounded.connect, bounded.first_byte, bounded.between_bytes),
            (secs(2), secs(2), secs(2))
        );
    }

    #[test]
    fn header_bytes_count_names_values_and_separators() {
        let mut headers = http::HeaderMap::new();
        headers.insert("host", "erp:1".parse().unwrap());
        headers.append("x-a", "1".parse().unwrap());
        headers.append("x-a", "22".parse().unwrap());
        assert_eq!(
            header_section_bytes(&headers),
            (4 + 5 + 4) + (3 + 1 + 4) + (3 + 2 + 4)
        );
    }

    /// A call's log of ten lines at most, redacting `secrets`.
    fn call_log(secrets: &[&str]) -> CallLog {
        CallLog::new(
            crate::plugins::log::LogBounds {
                max_lines: 10,
                max_bytes: 1000,
                max_line_bytes: 200,
            },
            crate::plugins::log::Redactor::new(secrets.iter().map(|s| (*s).to_owned())),
        )
    }

    #[test]
    fn the_verdict_keeps_the_first_refusal_redacted() {
        let log = call_log(&["s3cret"]);
        let verdict = EgressVerdict::default();
        verdict.record(&log, "egress refused: s3cret.evil.example is not listed");
        verdict.record(&log, "egress refused: second");
        assert_eq!(
            verdict.take(),
            Some(CallOutcome::Misconfigured(
                "egress refused: [redacted].evil.example is not listed".to_owned()
            ))
        );
        assert_eq!(log.with(|book| book.finish()).len(), 2);
    }

    #[test]
    fn a_request_held_back_is_a_passing_failure_unless_a_refusal_came_first() {
        let log = call_log(&[]);
        let held_back = "outbound request refused: the job's lease ran out";
        let refused = "egress refused: evil.example is not listed";

        let verdict = EgressVerdict::default();
        verdict.hold_back(&log, held_back);
        verdict.record(&log, refused);
        assert_eq!(
            verdict.take(),
            Some(CallOutcome::Transient(held_back.to_owned()))
        );

        // A refusal before it: the connection needs fixing whatever came
        // after.
        let verdict = EgressVerdict::default();
        verdict.record(&log, refused);
        verdict.hold_back(&log, held_back);
        assert_eq!(
            verdict.take(),
            Some(CallOutcome::Misconfigured(refused.to_owned()))
        );
        assert_eq!(log.with(|book| book.finish()).len(), 4);
    }
}
