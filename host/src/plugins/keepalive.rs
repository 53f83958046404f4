//! Kept-alive connections of the plugins' outbound requests.
//!
//! A request whose response came back whole over HTTP/1.1, without the ERP
//! asking to close, leaves its connection here for the next request of the
//! same plugin, to the same destination, through the same connection
//! settings. Every request still passes every check first (`outbound_impl.rs`):
//! its URL against the allow-list, and its name resolved again and every
//! address checked; a kept connection is taken only when its peer is among
//! those checked addresses. What the pool may hold is bounded:
//!
//! - a connection is kept idle at most the runtime's `keep_alive` (3 s
//!   unless the operator chose otherwise; less when the ERP's
//!   `Keep-Alive: timeout=` says so), then closed;
//! - at most [`MAX_IDLE_PER_KEY`] idle connections per plugin, connection
//!   and destination, and [`MAX_IDLE`] in all (the oldest closes first);
//! - a connection is never shared between two plugin versions, two
//!   connections, two destinations or two sets of trusted CAs: they are
//!   all part of its key;
//! - a response the plugin did not read to its end, cut by a limit or a
//!   timeout, or dropped, closes its connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use hyper::client::conn::http1::SendRequest;
use rustls_pki_types::CertificateDer;
use wasmtime_wasi_http::WasiBody;

/// Idle connections kept per key.
pub(crate) const MAX_IDLE_PER_KEY: usize = 16;

/// Idle connections kept in all.
pub(crate) const MAX_IDLE: usize = 64;

/// What a kept connection may be used for again: all of it must match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    /// The plugin's component digest.
    pub plugin: Arc<str>,
    /// The connection (its name).
    pub connection: String,
    /// `scheme://host:port` as the request named it.
    pub destination: String,
    /// The connection's own CAs, which verified a TLS connection.
    pub roots: Arc<[CertificateDer<'static>]>,
    /// The response head limits the connection was set up with.
    pub head_limits: (usize, usize),
}

/// A connection in use: the request side of hyper's HTTP/1.1 connection,
/// and the task driving its I/O, which ends (closing the socket) when this
/// is dropped.
pub(crate) struct Lease {
    pub sender: SendRequest<WasiBody>,
    pub driver: tokio::task::JoinHandle<()>,
    /// The checked address it is connected to.
    pub peer: IpAddr,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

struct Idle {
    lease: Lease,
    until: Instant,
}

impl Idle {
    fn usable(&self, now: Instant) -> bool {
        now < self.until && !self.lease.sender.is_closed()
    }
}

/// The idle connections of one plugin runtime.
pub(crate) struct ConnectionPool {
    idle: Mutex<HashMap<PoolKey, Vec<Idle>>>,
    /// The longest a connection is kept idle (zero: none is kept).
    keep_alive: Duration,
    /// Whether a task is closing expired connections.
    reaping: AtomicBool,
}

impl ConnectionPool {
    /// A pool keeping connections idle for `keep_alive` at most.
    pub fn new(keep_alive: Duration) -> Self {
        Self {
            idle: Mutex::default(),
            keep_alive,
            reaping: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<PoolKey, Vec<Idle>>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most recently used idle connection of `key` whose peer is one
    /// of `checked` (the addresses the request's name resolves to now, each
    /// checked). Connections it passes over (expired, closed, or to an
    /// address the name no longer resolves to) are closed.
    pub fn take(&self, key: &PoolKey, checked: &[IpAddr]) -> Option<Lease> {
        let now = Instant::now();
        let mut idle = self.lock();
        let entries = idle.get_mut(key)?;
        let mut found = None;
        while let Some(entry) = entries.pop() {
            if entry.usable(now) && checked.contains(&entry.lease.peer) {
                found = Some(entry.lease);
                break;
            }
        }
        if entries.is_empty() {
            idle.remove(key);
        }
        found
    }

    /// Keeps `lease` for the next request of `key`, for `keep` at most
    /// (the pool's own `keep_alive` when shorter).
    pub fn put(self: &Arc<Self>, key: PoolKey, lease: Lease, keep: Duration) {
        let keep = keep.min(self.keep_alive);
        if keep.is_zero() || lease.sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let until = now + keep;
        {
            let mut idle = self.lock();
            sweep(&mut idle, now);
            if idle.values().map(Vec::len).sum::<usize>() >= MAX_IDLE {
                close_oldest(&mut idle);
            }
            let entries = idle.entry(key).or_default();
            if entries.len() >= MAX_IDLE_PER_KEY {
                entries.remove(0);
            }
            entries.push(Idle { lease, until });
        }
        self.reap_later();
    }

    /// Idle connections kept now (not expired, not closed by the ERP).
    pub fn idle(&self) -> usize {
        let now = Instant::now();
        self.lock()
            .values()
            .flatten()
            .filter(|entry| entry.usable(now))
            .count()
    }

    /// Starts the task that closes connections as they expire, unless it
    /// runs; it ends once nothing is kept.
    fn reap_later(self: &Arc<Self>) {
        if self.reaping.swap(true, Ordering::AcqRel) {
            return;
        }
        // Outside a runtime (never on the plugin threads) the next `put`
        // sweeps instead.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.reaping.store(false, Ordering::Release);
            return;
        };
        let pool: Weak<Self> = Arc::downgrade(self);
        let every = (self.keep_alive / 3).max(Duration::from_millis(50));
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(pool) = pool.upgrade() else { return };
                let mut idle = pool.lock();
                sweep(&mut idle, Instant::now());
                if idle.is_empty() {
                    // Under the lock: a `put` after this starts a new task.
                    pool.reaping.store(false, Ordering::Release);
                    return;
                }
            }
        });
    }
}

/// Closes every expired or closed connection.
fn sweep(idle: &mut HashMap<PoolKey, Vec<Idle>>, now: Instant) {
    idle.retain(|_, entries| {
        entries.retain(|entry| entry.usable(now));
        !entries.is_empty()
    });
}

/// Closes the connection that expires first.
fn close_oldest(idle: &mut HashMap<PoolKey, Vec<Idle>>) {
    let oldest = idle
        .iter()
        .filter_map(|(key, entries)| entries.first().map(|e| (e.until, key.clone())))
        .min_by_key(|(until, _)| *until);
    if let Some((_, key)) = oldest
        && let Some(entries) = idle.get_mut(&key)
    {
        entries.remove(0);
        if entries.is_empty() {
            idle.remove(&key);
        }
    }
}

/// How long the ERP lets a connection stay idle after a response of
/// `version` with `headers`: zero when it may not be kept (HTTP/1.0, or
/// `Connection: close`), its `Keep-Alive: timeout=` less a second when it
/// gave one (so that the host closes it first), else no bound of its own.
pub(crate) fn keep_after(version: http::Version, headers: &http::HeaderMap) -> Duration {
    if version != http::Version::HTTP_11 {
        return Duration::ZERO;
    }
    let closes = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("close"));
    if closes {
        return Duration::ZERO;
    }
    let timeout = headers
        .get("keep-alive")
        .and_then(|v| v.to_str().ok())
        .into_iter()
        .flat_map(|v| v.split(','))
        .filter_map(|param| param.trim().split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("timeout"))
        .and_then(|(_, secs)| secs.trim().parse::<u64>().ok());
    match timeout {
        Some(secs) => Duration::from_secs(secs.saturating_sub(1)),
        None => Duration::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};
    use wasmtime_wasi_http::io::TokioIo;

    /// A loopback listener that accepts every connection and reports, for
    /// each, when the client closed it.
    struct Peer {
        addr: std::net::SocketAddr,
        closed: Arc<std::sync::atomic::AtomicUsize>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Peer {
        async fn start() -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let closed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let counted = Arc::clone(&closed);
            let task = tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let counted = Arc::clone(&counted);
                    tokio::spawn(async move {
                        let mut buf = [0u8; 64];
                        while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                        counted.fetch_add(1, Ordering::SeqCst);
                    });
                }
            });
            Self { addr, closed, task }
        }

        async fn lease(&self) -> Lease {
            let tcp = TcpStream::connect(self.addr).await.unwrap();
            let (sender, connection) =
                hyper::client::conn::http1::handshake::<_, WasiBody>(TokioIo::new(tcp))
                    .await
                    .unwrap();
            Lease {
                sender,
                driver: tokio::spawn(async move {
                    let _ = connection.await;
                }),
                peer: self.addr.ip(),
            }
        }

        /// Waits (bounded: 10 s) until `n` connections were closed.
        async fn wait_closed(&self, n: usize) {
            for _ in 0..1000 {
                if self.closed.load(Ordering::SeqCst) >= n {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(self.closed.load(Ordering::SeqCst), n);
        }
    }

    impl Drop for Peer {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    fn key(connection: &str) -> PoolKey {
        PoolKey {
            plugin: Arc::from("sha256:aa"),
            connection: connection.to_owned(),
            destination: "http://erp.customer.test:80".to_owned(),
            roots: Arc::new([]),
            head_limits: (100, 65_536),
        }
    }

    const LONG: Duration = Duration::from_secs(600);

    #[tokio::test]
    async fn a_kept_connection_is_taken_only_by_its_own_key_and_a_checked_peer() {
        let peer = Peer::start().await;
        let pool = Arc::new(ConnectionPool::new(LONG));
        pool.put(key("erp"), peer.lease().await, Duration::MAX);
        let loopback = [peer.addr.ip()];

        let others = [
            PoolKey {
                plugin: Arc::from("sha256:bb"),
                ..key("erp")
            },
            key("erp-2"),
            PoolKey {
                destination: "https://erp.customer.test:80".to_owned(),
                ..key("erp")
            },
            PoolKey {
                roots: Arc::new([CertificateDer::from(vec![1, 2, 3])]),
                ..key("erp")
            },
            PoolKey {
                head_limits: (101, 65_536),
                ..key("erp")
            },
        ];
        for other in &others {
            assert!(pool.take(other, &loopback).is_none(), "{other:?}");
        }
        assert_eq!(pool.idle(), 1);

        // The name now resolves elsewhere: the kept connection is closed,
        // not used.
        let elsewhere: [IpAddr; 1] = ["127.0.0.2".parse().unwrap()];
        assert!(pool.take(&key("erp"), &elsewhere).is_none());
        assert_eq!(pool.idle(), 0);
        peer.wait_closed(1).await;

        pool.put(key("erp"), peer.lease().await, Duration::MAX);
        assert!(pool.take(&key("erp"), &loopback).is_some());
        peer.wait_closed(2).await;
    }

    #[tokio::test]
    async fn the_pool_keeps_16_per_key_and_64_in_all_closing_the_oldest() {
        let peer = Peer::start().await;
        let pool = Arc::new(ConnectionPool::new(LONG));
        for _ in 0..MAX_IDLE_PER_KEY + 4 {
            pool.put(key("erp"), peer.lease().await, Duration::MAX);
        }
        assert_eq!(pool.idle(), MAX_IDLE_PER_KEY);
        peer.wait_closed(4).await;

        for n in 0..5 {
            for _ in 0..MAX_IDLE_PER_KEY {
                pool.put(
                    key(&format!("other-{n}")),
                    peer.lease().await,
                    Duration::MAX,
                );
            }
        }
        assert_eq!(pool.idle(), MAX_IDLE);
        peer.wait_closed(4 + 6 * MAX_IDLE_PER_KEY - MAX_IDLE).await;
        // The oldest went first: nothing is left of the first key.
        assert!(pool.take(&key("erp"), &[peer.addr.ip()]).is_none());
    }

    #[tokio::test]
    async fn a_connection_idle_past_its_time_is_closed_and_never_taken() {
        let peer = Peer::start().await;
        let pool = Arc::new(ConnectionPool::new(Duration::from_millis(100)));
        // The ERP's own keep-alive is shorter than the pool's, and wins.
        pool.put(key("short"), peer.lease().await, Duration::from_millis(1));
        pool.put(key("erp"), peer.lease().await, Duration::MAX);
        // A response that asked to close is not kept at all.
        pool.put(key("closing"), peer.lease().await, Duration::ZERO);
        peer.wait_closed(1).await;

        // Closed by the pool's own task, without another request.
        peer.wait_closed(3).await;
        assert_eq!(pool.idle(), 0);
        assert!(pool.take(&key("erp"), &[peer.addr.ip()]).is_none());
        assert!(pool.take(&key("short"), &[peer.addr.ip()]).is_none());
    }

    #[tokio::test]
    async fn with_no_keep_alive_nothing_is_kept() {
        let peer = Peer::start().await;
        let pool = Arc::new(ConnectionPool::new(Duration::ZERO));
        pool.put(key("erp"), peer.lease().await, Duration::MAX);
        assert_eq!(pool.idle(), 0);
        peer.wait_closed(1).await;
    }

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn a_response_that_asks_to_close_is_not_kept() {
        let v11 = http::Version::HTTP_11;
        assert_eq!(keep_after(v11, &headers(&[])), Duration::MAX);
        assert_eq!(
            keep_after(v11, &headers(&[("connection", "Close")])),
            Duration::ZERO
        );
        assert_eq!(
            keep_after(v11, &headers(&[("connection", "keep-alive, close")])),
            Duration::ZERO
        );
        assert_eq!(
            keep_after(http::Version::HTTP_10, &headers(&[])),
            Duration::ZERO
        );
    }

    #[test]
    fn the_erps_keep_alive_timeout_shortens_the_wait() {
        let v11 = http::Version::HTTP_11;
        let keep = |value| keep_after(v11, &headers(&[("keep-alive", value)]));
        assert_eq!(keep("timeout=2"), Duration::from_secs(1));
        assert_eq!(keep("max=100, timeout=1"), Duration::ZERO);
        assert_eq!(keep("timeout=60"), Duration::from_secs(59));
        assert_eq!(keep("timeout=soon"), Duration::MAX);
    }
}
