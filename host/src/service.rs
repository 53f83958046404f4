//! Starting and stopping the whole service: the store, the HTTP API on a
//! listener, and the job workers. `rescind serve` and the end-to-end tests
//! both go through [`start`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, AppState};
use crate::store::{Durability, Store, StoreOptions};

/// Everything `start` needs.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Bootstrap admin token (`RESCIND_ADMIN_TOKEN`).
    pub admin_token: Option<String>,
    /// SQLite `synchronous` setting.
    pub durability: Durability,
}

impl ServiceConfig {
    /// Defaults for a data directory and listen address.
    pub fn new(listen: SocketAddr, data_dir: impl Into<PathBuf>) -> Self {
        ServiceConfig {
            listen,
            data_dir: data_dir.into(),
            admin_token: None,
            durability: Durability::Normal,
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
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
}

/// Opens the store, binds the listener and serves the API.
pub async fn start(config: ServiceConfig) -> anyhow::Result<RunningService> {
    let mut options = StoreOptions::new(&config.data_dir);
    options.durability = config.durability;
    let store = Store::open(&options)
        .await
        .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
    let state = AppState::new(store, config.admin_token.as_deref());
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (stop, mut stopped) = watch::channel(false);
    let app = api::router(state.clone());
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
        stop,
        server,
    })
}

impl RunningService {
    /// Stops accepting requests, lets running requests finish (up to
    /// `grace`), and closes the store.
    pub async fn shutdown(self, grace: Duration) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        match tokio::time::timeout(grace, self.server).await {
            Ok(joined) => joined.context("server task")?.context("server")?,
            Err(_) => tracing::warn!("requests still running after the grace period"),
        }
        self.state.store.close().await;
        Ok(())
    }
}
