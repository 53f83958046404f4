//! Starting and stopping the whole service: the store, the HTTP API on a
//! listener, and the job workers. `rescind serve` and the end-to-end tests
//! both go through [`start`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, AppState};
use crate::demo::DemoErp;
use crate::jobs::{IntegrationProcessors, PluginProcessors, WorkerConfig, WorkerPool};
use crate::plugins::{CallLimits, PluginRuntime, RuntimeConfig};
use crate::store::{Durability, Store, StoreOptions};

/// Everything `start` needs.
#[derive(Clone)]
pub struct ServiceConfig {
    /// Address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Bootstrap admin token (`RESCIND_ADMIN_TOKEN`).
    pub admin_token: Option<String>,
    /// SQLite `synchronous` setting.
    pub durability: Durability,
    /// Job workers; `None` runs no workers (jobs stay queued).
    pub workers: Option<WorkerConfig>,
    /// The integration processors the workers run.
    pub processors: Option<Arc<dyn IntegrationProcessors>>,
    /// Demo mode: seed an empty store with demo data and run the demo ERP.
    pub demo: bool,
}

impl std::fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceConfig")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("durability", &self.durability)
            .field("workers", &self.workers)
            .field("demo", &self.demo)
            .finish_non_exhaustive()
    }
}

impl ServiceConfig {
    /// Defaults for a data directory and listen address.
    pub fn new(listen: SocketAddr, data_dir: impl Into<PathBuf>) -> Self {
        ServiceConfig {
            listen,
            data_dir: data_dir.into(),
            admin_token: None,
            durability: Durability::Normal,
            workers: Some(WorkerConfig::default()),
            processors: None,
            demo: false,
        }
    }
}

/// A running service.
#[derive(Debug)]
pub struct RunningService {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The shared state (store, metrics, …).
    pub state: AppState,
    /// The admin token in force: the configured one, or in demo mode a
    /// generated one (for printing once at start).
    pub admin_token: Option<String>,
    /// The demo ERP, in demo mode.
    pub demo_erp: Option<Arc<DemoErp>>,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    workers: Option<WorkerPool>,
}

/// Opens the store, binds the listener and serves the API.
pub async fn start(config: ServiceConfig) -> anyhow::Result<RunningService> {
    let mut options = StoreOptions::new(&config.data_dir);
    options.durability = config.durability;
    let store = Store::open(&options)
        .await
        .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
    let admin_token = match (&config.admin_token, config.demo) {
        (Some(token), _) => Some(token.clone()),
        (None, true) => Some(api::new_token()),
        (None, false) => None,
    };
    let state = AppState::new(store.clone(), admin_token.as_deref());
    let demo_erp = if config.demo {
        let erp = Arc::new(DemoErp::start().await.context("starting the demo ERP")?);
        if store.order_count().await? == 0 {
            erp.seed(&store).await.context("seeding the demo data")?;
        }
        Some(erp)
    } else {
        None
    };
    let processors = match (&config.workers, config.processors) {
        (Some(_), None) => Some(bundled_processors(&config.data_dir)?),
        (_, processors) => processors,
    };
    let workers = match (config.workers, processors) {
        (Some(worker_config), Some(processors)) => {
            let pool = WorkerPool::start(
                store,
                processors,
                Arc::clone(&state.metrics),
                Arc::clone(&state.job_wakeup),
                worker_config,
            );
            state.readiness.set_workers_running(true);
            Some(pool)
        }
        _ => None,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (stop, mut stopped) = watch::channel(false);
    let mut routes = api::routes();
    if let Some(erp) = &demo_erp {
        routes = routes.merge(erp.routes());
    }
    let app = api::with_middleware(routes, state.clone());
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
    });
    tracing::info!(%addr, "rescind listening");
    Ok(RunningService {
        addr,
        state,
        admin_token,
        demo_erp,
        stop,
        server,
        workers,
    })
}

/// The plugin runtime with the plugins bundled in the binary, caching
/// compiled code in the data directory so that a restart does not
/// recompile.
pub fn bundled_processors(
    data_dir: &std::path::Path,
) -> anyhow::Result<Arc<dyn IntegrationProcessors>> {
    let runtime = PluginRuntime::new(RuntimeConfig {
        cache_dir: Some(data_dir.join("plugin-cache")),
        ..RuntimeConfig::default()
    })
    .context("starting the plugin runtime")?;
    let processors = PluginProcessors::new(runtime, crate::bundled::BUNDLED, CallLimits::default())
        .context("loading the bundled plugins")?;
    tracing::info!(plugins = ?processors.names(), "integration processors loaded");
    Ok(Arc::new(processors))
}

impl RunningService {
    /// Stops accepting requests and claiming jobs, lets running requests
    /// and attempts finish (up to `grace`), gives unfinished jobs back to the
    /// queue, and closes the store.
    pub async fn shutdown(self, grace: Duration) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        if let Some(workers) = self.workers {
            self.state.readiness.set_workers_running(false);
            workers.shutdown(grace).await;
        }
        match tokio::time::timeout(grace, self.server).await {
            Ok(joined) => joined.context("server task")?.context("server")?,
            Err(_) => tracing::warn!("requests still running after the grace period"),
        }
        self.state.store.close().await;
        Ok(())
    }
}
