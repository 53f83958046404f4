//! A TCP server on 127.0.0.1 standing in for a hostile or broken ERP: it
//! answers every request with bytes the test scripts exactly (an oversized
//! head, an endless body, a body that trickles), over plain TCP or TLS, and
//! counts what it wrote and when the client hung up.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// The largest request head the server reads before answering.
const MAX_REQUEST_HEAD: usize = 1024 * 1024;

/// What the server answers to every request.
#[derive(Debug, Clone)]
pub enum RawAnswer {
    /// These bytes, then the connection closes.
    Bytes(Vec<u8>),
    /// `head`, then `total` body bytes written `chunk` bytes at a time,
    /// `pause` apart, then the connection closes.
    Stream {
        /// Status line and headers, blank line included.
        head: Vec<u8>,
        /// Body bytes in all.
        total: u64,
        /// Bytes per write.
        chunk: usize,
        /// Wait between writes.
        pause: Duration,
    },
}

impl RawAnswer {
    /// `200 OK` with exactly `head_bytes` bytes of head (status line,
    /// headers, blank line), padded with an `x-pad` header, and an empty
    /// body. `head_bytes` must leave room for the fixed part (~60 bytes).
    pub fn head_of(head_bytes: usize) -> RawAnswer {
        let fixed = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\nx-pad: \r\n\r\n";
        let pad = head_bytes
            .checked_sub(fixed.len())
            .expect("head_bytes leaves room for the status line");
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\nx-pad: {}\r\n\r\n",
            "p".repeat(pad)
        );
        assert_eq!(head.len(), head_bytes);
        RawAnswer::Bytes(head.into_bytes())
    }

    /// `200 OK` with `fields` header fields (at least 2) and an empty body.
    pub fn fields(fields: usize) -> RawAnswer {
        let mut head =
            String::from("HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n");
        for i in 2..fields {
            head.push_str(&format!("x-f{i}: v\r\n"));
        }
        head.push_str("\r\n");
        RawAnswer::Bytes(head.into_bytes())
    }

    /// `200 OK` with a body of `total` bytes (declared by Content-Length),
    /// streamed in `chunk`-byte writes `pause` apart.
    pub fn body(total: u64, chunk: usize, pause: Duration) -> RawAnswer {
        RawAnswer::Stream {
            head: format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {total}\r\nconnection: close\r\n\r\n"
            )
            .into_bytes(),
            total,
            chunk,
            pause,
        }
    }
}

#[derive(Default)]
struct Counters {
    connections: AtomicUsize,
    written: AtomicU64,
    hangups: AtomicUsize,
    /// TLS handshakes completed, and those of them that resumed a session.
    handshakes: AtomicUsize,
    resumed: AtomicUsize,
}

/// The running server; stops when dropped.
pub struct RawErp {
    addr: SocketAddr,
    counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

impl RawErp {
    /// Starts a plain-TCP server on 127.0.0.1 with an ephemeral port.
    pub async fn start(answer: RawAnswer) -> RawErp {
        Self::serve(answer, None).await
    }

    /// Starts a TLS server with `config` (its certificate and key).
    pub async fn start_tls(answer: RawAnswer, config: Arc<rustls::ServerConfig>) -> RawErp {
        Self::serve(answer, Some(tokio_rustls::TlsAcceptor::from(config))).await
    }

    async fn serve(answer: RawAnswer, tls: Option<tokio_rustls::TlsAcceptor>) -> RawErp {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let counters = Arc::new(Counters::default());
        let shared = Arc::clone(&counters);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let (answer, counters, tls) = (answer.clone(), Arc::clone(&shared), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => exchange(stream, &answer, &counters).await,
                        // A handshake the client aborts (an untrusted
                        // certificate) ends here.
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                counters.handshakes.fetch_add(1, Ordering::SeqCst);
                                if stream.get_ref().1.handshake_kind()
                                    == Some(rustls::HandshakeKind::Resumed)
                                {
                                    counters.resumed.fetch_add(1, Ordering::SeqCst);
                                }
                                exchange(stream, &answer, &counters).await;
                            }
                        }
                    }
                });
            }
        });
        RawErp {
            addr,
            counters,
            task,
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.counters.connections.load(Ordering::SeqCst)
    }

    /// Bytes written to clients so far, heads included.
    pub fn written(&self) -> u64 {
        self.counters.written.load(Ordering::SeqCst)
    }

    /// How many clients hung up before the whole answer was written.
    pub fn hangups(&self) -> usize {
        self.counters.hangups.load(Ordering::SeqCst)
    }

    /// TLS handshakes completed so far, and how many of them resumed a
    /// session the client kept from an earlier one.
    pub fn handshakes(&self) -> (usize, usize) {
        (
            self.counters.handshakes.load(Ordering::SeqCst),
            self.counters.resumed.load(Ordering::SeqCst),
        )
    }
}

impl Drop for RawErp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    answer: &RawAnswer,
    counters: &Counters,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > MAX_REQUEST_HEAD {
            return;
        }
    }
    let complete = match answer {
        RawAnswer::Bytes(bytes) => write(&mut stream, bytes, counters).await,
        RawAnswer::Stream {
            head,
            total,
            chunk,
            pause,
        } => {
            let mut ok = write(&mut stream, head, counters).await;
            let block = vec![b'x'; *chunk];
            let mut left = *total;
            while ok && left > 0 {
                let n = left.min(*chunk as u64) as usize;
                ok = write(&mut stream, &block[..n], counters).await;
                left -= n as u64;
                if !pause.is_zero() {
                    tokio::time::sleep(*pause).await;
                }
            }
            ok
        }
    };
    if !complete {
        counters.hangups.fetch_add(1, Ordering::SeqCst);
    }
    let _ = stream.shutdown().await;
}

async fn write<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8], counters: &Counters) -> bool {
    let ok = stream.write_all(bytes).await.is_ok() && stream.flush().await.is_ok();
    if ok {
        counters
            .written
            .fetch_add(bytes.len() as u64, Ordering::SeqCst);
    }
    ok
}

/// A CA of its own and a certificate it signed for `name` (a host name or
/// an IP address), as a TLS ERP's server configuration
/// ([`RawErp::start_tls`]) and the CA's PEM, which a connection names in
/// `caCertificates` to trust it.
pub fn private_ca_tls(name: &str) -> (Arc<rustls::ServerConfig>, String) {
    let ca_key = rcgen::KeyPair::generate().expect("a CA key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("the CA");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "rescind test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("the CA's certificate");
    let issuer = rcgen::Issuer::new(ca, ca_key);

    let key = rcgen::KeyPair::generate().expect("the ERP's key");
    let leaf = rcgen::CertificateParams::new(vec![name.to_owned()])
        .expect("a name a certificate can carry")
        .signed_by(&key, &issuer)
        .expect("the ERP's certificate");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .expect("the ERP's TLS set-up");
    (Arc::new(config), ca_cert.pem())
}
