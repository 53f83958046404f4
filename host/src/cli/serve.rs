//! `rescind serve`: the service until Ctrl-C or SIGTERM, then a graceful
//! shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tracing_subscriber::EnvFilter;

use crate::jobs::WorkerConfig;
use crate::jobs::retention::JobRetention;
use crate::plugins::registry::TrustedKey;
use crate::plugins::{MAX_OUTBOUND_KEEP_ALIVE, ResolveOverrides};
use crate::service::{self, ServiceConfig};
use crate::store::Durability;

/// How long running requests and job attempts get to finish at shutdown.
const GRACE: Duration = Duration::from_secs(10);

/// Options of `rescind serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default, so a first run exposes
    /// nothing).
    #[arg(long, default_value = "127.0.0.1:8080", env = "RESCIND_LISTEN")]
    pub listen: SocketAddr,
    /// Data directory (SQLite database, plugins, the secrets key file
    /// unless `RESCIND_SECRETS_KEY` gives the key as 64 hex digits). With
    /// `--demo` and no data directory, a fresh temporary one is used.
    #[arg(long, env = "RESCIND_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Start with demo data, the bundled webhook plugin and a demo ERP on
    /// loopback; prints an admin token.
    #[arg(long)]
    pub demo: bool,
    /// Keep the store in PostgreSQL (`postgres://user:password@host:5432/db`)
    /// instead of the data directory's SQLite file: several replicas, each
    /// with a data directory of its own, share one database. The data
    /// directory still holds the plugins, their compile cache and the
    /// secrets key file (give every replica the same key, e.g. in
    /// `RESCIND_SECRETS_KEY`).
    #[arg(long, env = "RESCIND_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// `normal` (WAL, safe against a killed process; a power loss may lose
    /// the last commits) or `full` (every commit on disk before it is
    /// answered).
    #[arg(long, default_value = "normal", env = "RESCIND_DURABILITY")]
    pub durability: Durability,
    /// Job workers (0: none, jobs stay queued).
    #[arg(long, default_value_t = 2, env = "RESCIND_WORKERS")]
    pub workers: usize,
    /// How long a claimed job is held by its worker: when a host dies, its
    /// jobs are taken up again this long after they were claimed. `60s`,
    /// `5s`, `1500ms`; at least one second.
    #[arg(long, default_value = "60s", env = "RESCIND_JOB_LEASE", value_parser = parse_job_lease)]
    pub job_lease: Duration,
    /// How long finished jobs (succeeded or failed) and their attempts are
    /// kept: `30d`, `12h`, `90m`; `off` (or `0`) keeps them forever. The
    /// host deletes older ones every hour, in small batches. Queued,
    /// running and retrying jobs and cancellations are never deleted.
    #[arg(
        long,
        default_value = "30d",
        env = "RESCIND_JOB_RETENTION",
        value_parser = parse_job_retention,
        allow_hyphen_values = true
    )]
    pub job_retention: JobRetention,
    /// Watch this folder for plugins: `NAME.wasm` dropped there (with
    /// `NAME.wasm.sig` beside it when signatures are required) is uploaded
    /// and activated. Without it no folder is watched (`--demo` watches
    /// `<data-dir>/plugins`).
    #[arg(long, env = "RESCIND_PLUGINS_DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// An ed25519 public key (32 bytes, base64 or hex) whose signature
    /// every plugin version must carry to run (upload, activation, pinned
    /// reference, watched folder, restore at start); repeat for several
    /// keys. Without any, plugins run unsigned (a warning at start and in
    /// `/readyz`).
    #[arg(
        long = "trusted-key",
        env = "RESCIND_TRUSTED_KEYS",
        value_delimiter = ','
    )]
    pub trusted_keys: Vec<String>,
    /// Pin a host name to an address for plugins' outbound requests, like
    /// curl's `--resolve` (repeatable; `erp.customer.test=10.0.0.5`). The
    /// address still passes the connection's egress checks: a private one
    /// needs `allowPrivateNetwork` or the address in `allowedHosts`.
    #[arg(
        long = "resolve",
        env = "RESCIND_RESOLVE",
        value_delimiter = ',',
        value_name = "NAME=IP"
    )]
    pub resolve: Vec<String>,
    /// How long a plugin's outbound connection stays open after a response
    /// read to its end, for that plugin's next request to the same ERP
    /// (`3s`, `500ms`; at most `5m`). `0s` closes every connection after
    /// its response. Every request is checked against the egress policy
    /// all the same.
    #[arg(
        long,
        default_value = "3s",
        env = "RESCIND_OUTBOUND_KEEP_ALIVE",
        value_parser = parse_keep_alive
    )]
    pub outbound_keep_alive: Duration,
    /// Log lines as JSON instead of text.
    #[arg(long, env = "RESCIND_LOG_JSON")]
    pub log_json: bool,
}

/// Runs the service until a shutdown signal.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,wasmtime=warn,cranelift=warn"));
    if args.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    if !crate::service::without_huge_pages() {
        tracing::debug!("transparent huge pages stay as the system sets them");
    }
    if !crate::service::steady_c_heap() {
        tracing::debug!("the C library's heap trimming stays as it is");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let data_dir = match (&args.data_dir, args.demo) {
        (Some(dir), _) => dir.clone(),
        (None, true) => {
            std::env::temp_dir().join(format!("rescind-demo-{}", uuid::Uuid::new_v4().simple()))
        }
        (None, false) => PathBuf::from("data"),
    };
    let mut config = ServiceConfig::new(args.listen, &data_dir);
    config.admin_token = std::env::var("RESCIND_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    config.durability = args.durability;
    config.database_url = args.database_url.clone().filter(|url| !url.is_empty());
    config.secrets_key = super::secrets::key_source_from_env("RESCIND_SECRETS_KEY")?;
    config.plugins.watch_dir = args.plugins_dir.clone();
    let keys = args
        .trusted_keys
        .iter()
        .filter(|k| !k.trim().is_empty())
        .map(|k| {
            TrustedKey::parse(k).map_err(|reason| anyhow::anyhow!("--trusted-key {k}: {reason}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    config.plugins = config.plugins.trust(keys);
    config.plugins.resolve = resolve_overrides(&args.resolve)?;
    config.plugins.keep_alive = args.outbound_keep_alive;
    config.workers = (args.workers > 0).then(|| WorkerConfig {
        workers: args.workers,
        lease: args.job_lease,
        ..WorkerConfig::default()
    });
    config.job_retention = args.job_retention;
    if args.demo {
        crate::demo::enable(&mut config);
    }
    let running = service::start(config).await?;
    let base = format!("http://{}", running.addr);
    if args
        .database_url
        .as_deref()
        .is_some_and(|url| !url.is_empty())
    {
        println!(
            "rescind listening on {base} (store in PostgreSQL, data in {})",
            data_dir.display()
        );
    } else {
        println!(
            "rescind listening on {base} (data in {})",
            data_dir.display()
        );
    }
    if args.demo {
        let token = running.admin_token.clone().unwrap_or_default();
        println!(
            "\ndemo admin token: {token}\n\n\
             try:\n  \
             curl -s -H 'Authorization: Bearer {token}' {base}/v1/orders/SO-1001\n  \
             curl -s -X POST -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\\n       \
             -d '{{\"cancellationReason\":\"OUT_OF_STOCK\"}}' {base}/v1/orders/SO-1001/cancellations\n  \
             curl -s -H 'Authorization: Bearer {token}' {base}/v1/cancellations/<internalRequestId>\n  \
             curl -s {base}/demo/erp/requests\n"
        );
    } else if running.admin_token.is_none() {
        println!(
            "no RESCIND_ADMIN_TOKEN set: only API keys sign in (stop the host and run \
             `rescind keys create --name NAME --role admin` to make the first)"
        );
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown(GRACE).await
}

/// `--job-lease`: a duration such as `60s` or `1500ms`, at least a second.
fn parse_job_lease(text: &str) -> Result<Duration, String> {
    let lease = humantime::parse_duration(text)
        .map_err(|e| format!("{e}: write a duration such as `60s` or `1500ms`"))?;
    if lease < Duration::from_secs(1) {
        return Err(
            "a job lease shorter than one second would let workers take each other's \
                    jobs: use at least `1s`"
                .to_owned(),
        );
    }
    Ok(lease)
}

/// `--outbound-keep-alive`: a duration up to five minutes, `0s` for none.
fn parse_keep_alive(text: &str) -> Result<Duration, String> {
    let keep = humantime::parse_duration(text)
        .map_err(|e| format!("{e}: write a duration such as `3s` or `500ms`, or `0s` for none"))?;
    if keep > MAX_OUTBOUND_KEEP_ALIVE {
        return Err(format!(
            "at most {} (a kept connection holds a socket on both sides)",
            humantime::format_duration(MAX_OUTBOUND_KEEP_ALIVE)
        ));
    }
    Ok(keep)
}

/// `--job-retention`: a duration such as `30d`, or `off`.
fn parse_job_retention(text: &str) -> Result<JobRetention, String> {
    text.parse()
        .map_err(|e| format!("{e} (or `off` to keep finished jobs forever)"))
}

/// The names pinned with `--resolve NAME=IP`.
fn resolve_overrides(flags: &[String]) -> anyhow::Result<ResolveOverrides> {
    let mut overrides = ResolveOverrides::default();
    for flag in flags.iter().filter(|f| !f.trim().is_empty()) {
        overrides
            .add_flag(flag)
            .map_err(|reason| anyhow::anyhow!("--resolve {reason}"))?;
    }
    Ok(overrides)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn resolve_flags_pin_names() {
        let cli = Cli::try_parse_from([
            "serve",
            "--resolve",
            "erp.customer.test=10.0.0.5",
            "--resolve",
            "erp.customer.test=10.0.0.6,other.test=::1",
        ])
        .expect("flags parse");
        let overrides = resolve_overrides(&cli.serve.resolve).expect("valid flags");
        assert_eq!(
            overrides.get("erp.customer.test").map(<[_]>::len),
            Some(2),
            "{overrides:?}"
        );
        assert!(overrides.get("other.test").is_some());

        let error = resolve_overrides(&["erp.customer.test=localhost".to_owned()]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("--resolve `erp.customer.test=localhost`"),
            "{error}"
        );
    }

    #[test]
    fn keep_alive_table() {
        assert_eq!(parse_keep_alive("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_keep_alive("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_keep_alive("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_keep_alive("6m").unwrap_err().contains("at most 5m"));
        assert!(parse_keep_alive("forever").unwrap_err().contains("`3s`"));
        let cli = Cli::try_parse_from(["serve"]).expect("parses");
        assert_eq!(cli.serve.outbound_keep_alive, Duration::from_secs(3));
        let cli = Cli::try_parse_from(["serve", "--outbound-keep-alive", "0s"]).expect("parses");
        assert_eq!(cli.serve.outbound_keep_alive, Duration::ZERO);
    }

    #[test]
    fn job_leases_table() {
        assert_eq!(parse_job_lease("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_job_lease("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_job_lease("2m"), Ok(Duration::from_secs(120)));
        assert!(
            parse_job_lease("500ms")
                .unwrap_err()
                .contains("at least `1s`")
        );
        assert!(
            parse_job_lease("soon")
                .unwrap_err()
                .contains("such as `60s`")
        );
    }
}
