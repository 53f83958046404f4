//! `rescind-loadgen`: an HTTP load generator in a process of its own, so
//! that the server it measures keeps its CPU to itself. A fixed number of
//! requests from a fixed number of keep-alive clients, within a time cap,
//! to loopback only; prints one JSON line of figures. Every client opens
//! its connection before the run's clock starts.
//!
//! ```sh
//! rescind-loadgen --url 'http://127.0.0.1:8080/v1/orders/BO-{n}/cancellations' \
//!   --pad 6 --first 0 --stride 5 --clients 64 --requests 5000 --expect 201 \
//!   --body '{"cancellationReason":"OUT_OF_STOCK"}' --bearer TOKEN
//! ```
//!
//! Request `i` (0-based) goes to the URL with `{n}` replaced by
//! `first + i × stride`, zero-padded to `pad` digits.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use serde_json::json;

#[derive(Parser, Clone)]
#[command(
    name = "rescind-loadgen",
    about = "Bounded HTTP load from a process of its own, loopback only"
)]
struct Args {
    /// The URL; `{n}` is replaced per request (see --first, --stride, --pad).
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 0)]
    first: usize,
    #[arg(long, default_value_t = 1)]
    stride: usize,
    #[arg(long, default_value_t = 0)]
    pad: usize,
    /// Concurrent clients, each on its own keep-alive connection.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Requests in all.
    #[arg(long, default_value_t = 5_000)]
    requests: usize,
    /// The longest the whole run may take, in seconds.
    #[arg(long, default_value_t = 120)]
    time_cap: u64,
    #[arg(long, default_value = "POST")]
    method: String,
    /// The JSON body of every request.
    #[arg(long, default_value = "{}")]
    body: String,
    /// A bearer token for every request.
    #[arg(long)]
    bearer: Option<String>,
    /// The status every request must answer with to count.
    #[arg(long, default_value_t = 201)]
    expect: u16,
    /// Runtime threads (default: 2).
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let authority = check_loopback(&args.url)?;
    if args.clients == 0 || args.stride == 0 {
        bail!("--clients and --stride must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let figures = runtime.block_on(load(args, authority))?;
    println!("{figures}");
    Ok(())
}

/// Refuses any URL whose host is not a loopback address; answers the
/// URL's `host:port` (port 80 when it names none), where the clients connect.
fn check_loopback(url: &str) -> Result<String> {
    let uri: Uri = url
        .replace("{n}", "0")
        .parse()
        .with_context(|| format!("not a URL: {url}"))?;
    if uri.scheme_str() != Some("http") {
        bail!("only http:// URLs: {url}");
    }
    let written = uri.host().context("the URL has no host")?;
    let host = written.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!("only loopback hosts (127.0.0.0/8, ::1, localhost): {host}");
    }
    Ok(format!("{written}:{}", uri.port_u16().unwrap_or(80)))
}

/// Where the path of `url` (a checked `http://` URL) starts: past the
/// scheme and the authority as written.
fn path_start(url: &str) -> usize {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    url.len() - rest.len() + rest.find(['/', '?']).unwrap_or(rest.len())
}

fn url(args: &Args, i: usize) -> String {
    let n = args.first + i * args.stride;
    args.url
        .replace("{n}", &format!("{n:0width$}", width = args.pad))
}

/// One client's keep-alive connection to the server.
type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Opens a connection to `authority` (`host:port`) and starts driving it.
async fn connect(authority: &str) -> Result<Sender> {
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Runs the load; `authority` is the checked `host:port` of `args.url`.
async fn load(args: Args, authority: String) -> Result<serde_json::Value> {
    let method: Method = args.method.parse().context("--method")?;
    let expect = StatusCode::from_u16(args.expect).context("--expect")?;
    let cap = Duration::from_secs(args.time_cap);
    // Every client's connection is open before the clock starts: the run
    // measures requests over kept-alive connections, not a burst of
    // connects (hundreds at once can lose a SYN to the loopback's queues
    // and wait out the one-second retransmission).
    let mut senders = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        senders.push(connect(&authority).await?);
    }
    let path_start = path_start(&args.url);
    let args = Arc::new(args);
    let authority: Arc<str> = authority.into();
    let next = Arc::new(AtomicUsize::new(0));
    let body = Bytes::from(args.body.clone());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut sender in senders {
        let (args, next, body, method, authority) = (
            Arc::clone(&args),
            Arc::clone(&next),
            body.clone(),
            method.clone(),
            Arc::clone(&authority),
        );
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0usize;
            let mut first_error = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= args.requests || started.elapsed() > cap {
                    break;
                }
                // The request's target: the URL's path and query (the
                // number goes there, never in the authority).
                let url = url(&args, i);
                let target = match &url[path_start..] {
                    path if path.starts_with('/') => path.to_owned(),
                    path => format!("/{path}"),
                };
                let mut request = Request::builder()
                    .method(method.clone())
                    .uri(target)
                    .header("host", &*authority)
                    .header("content-type", "application/json");
                if let Some(token) = &args.bearer {
                    request = request.header("authorization", format!("Bearer {token}"));
                }
                let request = request
                    .body(Full::new(body.clone()))
                    .expect("a request of a checked URL");
                let t = Instant::now();
                let left = cap
                    .saturating_sub(started.elapsed())
                    .max(Duration::from_millis(1));
                let exchange = async {
                    sender.ready().await?;
                    let response = sender.send_request(request).await?;
                    let status = response.status();
                    response.into_body().collect().await?;
                    Ok::<_, hyper::Error>(status)
                };
                match tokio::time::timeout(left, exchange).await {
                    Ok(Ok(status)) if status == expect => latencies.push(t.elapsed()),
                    Ok(Ok(status)) => {
                        failed += 1;
                        first_error.get_or_insert_with(|| format!("status {status}"));
                    }
                    Ok(Err(e)) => {
                        failed += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                        // The connection is gone: the next request goes
                        // over a new one, opened here, outside any
                        // request's time.
                        match connect(&authority).await {
                            Ok(fresh) => sender = fresh,
                            Err(_) => break,
                        }
                    }
                    Err(_) => {
                        failed += 1;
                        first_error.get_or_insert_with(|| "time cap reached".to_owned());
                    }
                }
            }
            (latencies, failed, first_error)
        });
    }
    let mut all = Vec::new();
    let mut failed = 0;
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let (latencies, f, e) = joined.context("a client task")?;
        all.extend(latencies);
        failed += f;
        first_error = first_error.or(e);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pick = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    Ok(json!({
        "ok": all.len(),
        "failed": failed,
        "firstError": first_error,
        "elapsedSecs": elapsed,
        "perSecond": all.len() as f64 / elapsed,
        "p50Ms": pick(0.50),
        "p99Ms": pick(0.99),
        "capped": started.elapsed() > cap,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_taken() {
        for ok in [
            "http://127.0.0.1:8080/v1/orders/{n}/cancellations",
            "http://127.1.2.3/x",
            "http://localhost:1/",
            "http://[::1]:80/",
        ] {
            check_loopback(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for refused in [
            "http://10.0.0.1/x",
            "http://192.168.1.1/",
            "http://example.com/",
            "https://127.0.0.1/",
            "not a url",
        ] {
            assert!(check_loopback(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn each_request_has_its_own_number() {
        let args = Args::parse_from([
            "rescind-loadgen",
            "--url",
            "http://127.0.0.1/o/BO-{n}/c",
            "--first",
            "2",
            "--stride",
            "5",
            "--pad",
            "6",
        ]);
        assert_eq!(url(&args, 0), "http://127.0.0.1/o/BO-000002/c");
        assert_eq!(url(&args, 3), "http://127.0.0.1/o/BO-000017/c");
    }

    #[test]
    fn a_requests_target_starts_past_the_authority() {
        for (url, target) in [
            ("http://127.0.0.1:8080/o/BO-{n}/c?x=1", "/o/BO-{n}/c?x=1"),
            ("http://[::1]:80/healthz", "/healthz"),
            ("http://localhost?q", "?q"),
            ("http://localhost", ""),
        ] {
            assert_eq!(&url[path_start(url)..], target, "{url}");
        }
    }
}
