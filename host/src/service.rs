//! Starting and stopping the whole service: the store, the HTTP API on a
//! listener, and the job workers. `rescind serve` and the end-to-end tests
//! both go through [`start`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, AppState};
use crate::jobs::retention::JobRetention;
use crate::jobs::{PluginProcessors, WorkerConfig, WorkerPool};
use crate::plugins::registry::{
    DatabaseStore, DirectoryStore, FolderEvent, FolderWatch, FolderWatchConfig, PluginRegistry,
    RegistryConfig, RegistryStore, TrustedKey, follow_shared_store,
};
use crate::plugins::{CallLimits, PluginRuntime, ResolveOverrides, RuntimeConfig};
use crate::store::{AdminWrite, AuditActor, Durability, SecretsKeySource, Store, StoreOptions};

/// Everything `start` needs.
#[derive(Clone)]
pub struct ServiceConfig {
    /// Address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// Where the store, its secrets key and the plugins are kept.
    pub data_dir: PathBuf,
    /// Bootstrap admin token (`RESCIND_ADMIN_TOKEN`).
    pub admin_token: Option<String>,
    /// SQLite `synchronous` setting.
    pub durability: Durability,
    /// PostgreSQL instead of the data directory's SQLite file
    /// (`--database-url`, `RESCIND_DATABASE_URL`): the store several
    /// replicas share.
    pub database_url: Option<String>,
    /// Where the key sealing connection secrets comes from
    /// (`RESCIND_SECRETS_KEY`, or the data directory's key file).
    pub secrets_key: SecretsKeySource,
    /// Job workers; `None` runs no workers (jobs stay queued).
    pub workers: Option<WorkerConfig>,
    /// How long finished jobs are kept (`--job-retention`), and how often
    /// the service deletes those past it.
    pub job_retention: JobRetention,
    /// How often the service looks for finished jobs past the retention.
    pub job_retention_every: Duration,
    /// The plugins: where they are kept, watched and cached, and whom the
    /// host trusts.
    pub plugins: PluginsConfig,
    /// Parts composed into the service besides the API and the workers
    /// (`rescind serve --demo` adds its demo ERP this way), started in this
    /// order once the store is open.
    pub companions: Vec<Arc<dyn Companion>>,
}

/// A part that whoever starts a service composes into it, such as the demo
/// mode's ERP. It is started once the store is open, before the plugins
/// folder is watched, the workers run and requests are served; it may serve
/// routes of its own beside the API (behind the same middleware); the
/// running service keeps it until it is shut down.
pub trait Companion: std::fmt::Debug + Send + Sync + 'static {
    /// What it is, for logs and errors.
    fn name(&self) -> &str;

    /// Starts it over the opened store and answers the routes it serves
    /// (an empty router for none). An error stops the service from
    /// starting.
    fn start<'a>(&'a self, store: &'a Store) -> BoxFuture<'a, anyhow::Result<Router<AppState>>>;
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
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "<redacted>"),
            )
            .field("secrets_key", &self.secrets_key)
            .field("workers", &self.workers)
            .field("job_retention", &self.job_retention)
            .field("job_retention_every", &self.job_retention_every)
            .field("plugins", &self.plugins)
            .field(
                "companions",
                &self.companions.iter().map(|c| c.name()).collect::<Vec<_>>(),
            )
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
            database_url: None,
            secrets_key: SecretsKeySource::KeyFile,
            workers: Some(WorkerConfig::default()),
            job_retention: JobRetention::default(),
            job_retention_every: crate::jobs::retention::DEFAULT_EVERY,
            plugins: PluginsConfig::default(),
            companions: Vec::new(),
        }
    }
}

/// Where the plugin registry keeps its versions and compiled code, which
/// folder it watches, and what it accepts.
#[derive(Debug, Clone)]
pub struct PluginsConfig {
    /// The watched folder: `NAME.wasm` dropped there is uploaded and
    /// activated. `None`: no folder is watched.
    pub watch_dir: Option<PathBuf>,
    /// How the folder is watched.
    pub watch_config: FolderWatchConfig,
    /// Compiled-code cache. `None`: `<data-dir>/plugins/cache`.
    pub cache_dir: Option<PathBuf>,
    /// Upload limits and trusted signing keys.
    pub registry: RegistryConfig,
    /// Bounds of every plugin call.
    pub limits: CallLimits,
    /// Store the plugins bundled in the binary (webhook, aaas, websphere,
    /// personalization) and activate each that has no operator-chosen
    /// version.
    pub install_bundled: bool,
    /// Host names pinned to addresses for plugins' outbound requests
    /// (`rescind serve --resolve NAME=IP`).
    pub resolve: ResolveOverrides,
    /// How long plugins' outbound connections stay open for their next
    /// requests (`rescind serve --outbound-keep-alive`).
    pub keep_alive: Duration,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            watch_dir: None,
            watch_config: FolderWatchConfig::default(),
            cache_dir: None,
            registry: RegistryConfig::default(),
            limits: CallLimits::default(),
            install_bundled: true,
            resolve: ResolveOverrides::default(),
            keep_alive: RuntimeConfig::default().keep_alive,
        }
    }
}

impl PluginsConfig {
    /// Adds keys whose signature an upload must carry (any one of them).
    pub fn trust(mut self, keys: impl IntoIterator<Item = TrustedKey>) -> Self {
        self.registry.trusted_keys.extend(keys);
        self
    }
}

/// A running service.
#[derive(Debug)]
pub struct RunningService {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The shared state (store, metrics, …).
    pub state: AppState,
    /// The admin token in force, as configured (for printing once at
    /// start).
    pub admin_token: Option<String>,
    /// The plugin registry.
    pub plugins: PluginRegistry,
    /// The folder watch, while it runs.
    pub plugin_watch: Option<FolderWatch>,
    /// Kept until the service is shut down.
    companions: Vec<Arc<dyn Companion>>,
    /// On a store shared by replicas: the task that brings the registry up
    /// to date with the others' changes.
    plugin_follower: Option<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    workers: Option<WorkerPool>,
    /// The periodic job retention, when it is on.
    retention: Option<JoinHandle<()>>,
}

/// Turns transparent huge pages off for this process, as `rescind serve`
/// does before it starts anything (Linux; elsewhere nothing to do).
///
/// The allocator the binary ships with (mimalloc) asks the kernel for huge
/// pages on its memory. Then the first touch of each 2 MiB region, and of
/// each region the allocator gave back and uses again, has the kernel zero
/// all 2 MiB at once, on the thread that touched it: a request's or a
/// plugin call's, which allocates its sandbox afresh each time. With 4 KiB
/// pages a touch zeroes 4 KiB. Measured on two cores (`BENCHMARKS.md`),
/// medians over many runs whose spread is wider: a cancellation about
/// 0.93× the CPU, a delivery about 0.95×. The setting holds for the whole
/// process and for the processes it starts. Answers whether it took.
pub fn without_huge_pages() -> bool {
    #[cfg(target_os = "linux")]
    {
        rustix::thread::disable_transparent_huge_pages(true).is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// The most free memory at the top of one of the C library's heaps that it
/// keeps for reuse instead of giving back to the kernel: see
/// [`steady_c_heap`].
pub const C_HEAP_TRIM_THRESHOLD: usize = 8 << 20;

/// Has the C library keep up to [`C_HEAP_TRIM_THRESHOLD`] of freed memory
/// at the top of each of its heaps for reuse, as `rescind serve` does
/// before it starts anything (Linux with glibc; elsewhere nothing to do).
///
/// SQLite allocates through the C library's `malloc`, not through the
/// binary's allocator. glibc gives the free top of a heap back to the
/// kernel once it passes the trim threshold (128 KiB to start with, moved
/// up and down by glibc as it goes), and the next allocation there has the
/// kernel fault the pages in again, zeroed, on the store's threads. Whether
/// a run fell into that churn changed from run to run: on two cores the
/// same deliveries made 13,000 minor page faults with the setting and up to
/// 50 times as many without, taking 1.06–1.15× the CPU (`BENCHMARKS.md`).
/// A fixed threshold keeps at most this much per heap, less than glibc's
/// own threshold can grow to (64 MiB). The setting holds for the whole
/// process. Answers whether it took.
pub fn steady_c_heap() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let threshold = libc::c_int::try_from(C_HEAP_TRIM_THRESHOLD).unwrap_or(libc::c_int::MAX);
        // SAFETY: `mallopt` sets one of glibc's allocator parameters under
        // its own lock; it takes two integers and touches no memory of ours.
        unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, threshold) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Opens the store, binds the listener and serves the API. A bootstrap
/// admin token shorter than [`crate::keys::MIN_ADMIN_TOKEN_CHARS`] is
/// refused before anything is opened.
pub async fn start(config: ServiceConfig) -> anyhow::Result<RunningService> {
    if let Some(token) = &config.admin_token {
        crate::keys::check_admin_token(token)?;
    }
    let mut options = StoreOptions::new(&config.data_dir);
    options.durability = config.durability;
    options.secrets_key = config.secrets_key.clone();
    options.database_url = config.database_url.clone();
    let store = Store::open(&options).await.with_context(|| {
        if config.database_url.is_some() {
            "opening the store in PostgreSQL".to_owned()
        } else {
            format!("opening the store in {}", config.data_dir.display())
        }
    })?;
    let admin_token = config.admin_token.clone();
    let plugins = open_plugins(&config.data_dir, &config.plugins, &store).await?;
    // Replicas sharing the store: what another one uploads or activates
    // reaches this one's registry.
    let plugin_follower = DatabaseStore::of(&store).map(|_| {
        let changes = Arc::new(tokio::sync::Notify::new());
        store.wake_on_plugin_changes(Arc::clone(&changes));
        follow_shared_store(plugins.clone(), changes)
    });
    let state = AppState::new(store.clone(), admin_token.as_deref()).with_plugins(plugins.clone());
    // The operator console beside the API (not in its OpenAPI document).
    let mut routes = crate::console::mount(api::routes());
    for companion in &config.companions {
        let own = companion
            .start(&store)
            .await
            .with_context(|| format!("starting the {}", companion.name()))?;
        routes = routes.merge(own);
    }
    let plugin_watch = if let Some(dir) = config.plugins.watch_dir.clone() {
        let (watch, events) =
            FolderWatch::start(plugins.clone(), &dir, config.plugins.watch_config.clone())
                .context("watching the plugins folder")?;
        tokio::spawn(count_folder_events(
            events,
            Arc::clone(&state.metrics),
            state.store.clone(),
        ));
        tracing::info!(dir = %dir.display(), "watching for NAME.wasm plugin files");
        Some(watch)
    } else {
        None
    };
    let workers = config.workers.map(|worker_config| {
        let processors = Arc::new(PluginProcessors::new(
            plugins.clone(),
            config.plugins.limits,
        ));
        let pool = WorkerPool::start(
            store,
            processors,
            Arc::clone(&state.metrics),
            Arc::clone(&state.job_wakeup),
            worker_config,
        );
        // Jobs committed by other replicas sharing the store wake these
        // workers too.
        state.store.wake_on_new_jobs(Arc::clone(&state.job_wakeup));
        state.readiness.set_workers_running(true);
        pool
    });
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (stop, mut stopped) = watch::channel(false);
    let retention = match config.job_retention {
        JobRetention::Off => None,
        JobRetention::Keep(keep) => Some(tokio::spawn(crate::jobs::retention::run_periodically(
            state.store.clone(),
            Arc::clone(&state.metrics),
            keep,
            config.job_retention_every,
            stop.subscribe(),
        ))),
    };
    let app = api::with_middleware(routes, state.clone());
    let server = tokio::spawn(async move {
        // The peer's address reaches the handlers (the console's sign-in
        // limit counts failures by it).
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
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
        plugins,
        plugin_watch,
        plugin_follower,
        stop,
        server,
        workers,
        retention,
        companions: config.companions,
    })
}

/// Opens the plugin registry: every stored version, each plugin's active
/// one loaded (from the compile cache when it has it), and the plugins
/// bundled in the binary installed. The versions are kept in the database
/// when `store` is on PostgreSQL (shared by the replicas), in the data
/// directory otherwise; the compile cache is always the data directory's.
pub async fn open_plugins(
    data_dir: &std::path::Path,
    config: &PluginsConfig,
    store: &Store,
) -> anyhow::Result<PluginRegistry> {
    let cache_dir = config
        .cache_dir
        .clone()
        .unwrap_or_else(|| data_dir.join("plugins").join("cache"));
    let runtime = PluginRuntime::new(RuntimeConfig {
        cache_dir: Some(cache_dir),
        resolve: config.resolve.clone(),
        keep_alive: config.keep_alive,
        ..RuntimeConfig::default()
    })
    .context("starting the plugin runtime")?;
    let directory = data_dir.join("plugins").join("store");
    let plugin_store: RegistryStore = match DatabaseStore::of(store) {
        Some(shared) => {
            // A data directory moved to PostgreSQL: its plugins move too.
            if directory.is_dir() {
                let local = DirectoryStore::open(&directory).context("opening the plugin store")?;
                let adopted = shared
                    .adopt(&local)
                    .await
                    .context("copying the data directory's plugins into the database")?;
                if adopted > 0 {
                    tracing::info!(
                        versions = adopted,
                        dir = %directory.display(),
                        "plugin versions copied into the database"
                    );
                }
            }
            shared.into()
        }
        None => DirectoryStore::open(directory)
            .context("opening the plugin store")?
            .into(),
    };
    let mut registry_config = config.registry.clone();
    // The binary's own plugins are as trusted as the binary: no signature.
    registry_config
        .builtin_versions
        .extend(crate::bundled::BUNDLED.iter().map(|(name, bytes)| {
            (
                (*name).to_owned(),
                format!("sha256:{}", hex::encode(Sha256::digest(bytes))),
            )
        }));
    if registry_config.trusted_keys.is_empty() {
        tracing::warn!(
            "no trusted plugin signing keys (--trusted-key): plugin uploads and activations \
             are not checked for signatures, so any admin token can run any code; see \
             SECURITY.md"
        );
    }
    let registry = PluginRegistry::open(runtime, plugin_store, registry_config)
        .await
        .context("opening the plugin registry")?;
    if config.install_bundled {
        for (name, bytes) in crate::bundled::BUNDLED {
            let (info, active) = registry
                .install_bundled(name, bytes.to_vec())
                .await
                .with_context(|| format!("installing the bundled plugin {name}"))?;
            tracing::debug!(plugin = name, version = %info.version, active, "bundled plugin installed");
        }
    }
    let active: Vec<String> = registry
        .list()
        .into_iter()
        .filter_map(|p| Some(format!("{}@{}", p.name, p.active?)))
        .collect();
    tracing::info!(plugins = ?active, "integration processors ready");
    Ok(registry)
}

/// Counts what the folder watch did, for `/metrics`.
async fn count_folder_events(
    mut events: tokio::sync::mpsc::Receiver<FolderEvent>,
    metrics: Arc<crate::metrics::Metrics>,
    store: Store,
) {
    while let Some(event) = events.recv().await {
        let outcome = match &event {
            FolderEvent::Loaded { file, version } => {
                // An upload and activation like `PUT /v1/admin/plugins/{name}`,
                // made by whoever can write to the folder.
                let write = AdminWrite {
                    actor: AuditActor::PluginsFolder,
                    method: "PUT".to_owned(),
                    path: format!("/v1/admin/plugins/{}", version.name),
                    status: 201,
                    summary: format!(
                        "{} loaded from the watched folder as version {} and activated",
                        file.file_name().map_or_else(
                            || file.display().to_string(),
                            |n| n.to_string_lossy().into_owned()
                        ),
                        version.version
                    ),
                    request_id: None,
                };
                if let Err(error) = store.append_audit(&write).await {
                    tracing::error!(%error, ?write, "a plugin loaded from the watched folder could not be recorded in the audit log");
                }
                "loaded"
            }
            FolderEvent::AlreadyStored { .. } => "already-stored",
            FolderEvent::Refused { .. } => "refused",
            FolderEvent::Unsettled { .. } => "unsettled",
        };
        metrics.plugin_folder_event(outcome);
    }
}

impl RunningService {
    /// Stops accepting requests and claiming jobs, lets running requests
    /// and attempts finish (up to `grace`), gives unfinished jobs back to the
    /// queue, and closes the store.
    pub async fn shutdown(self, grace: Duration) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        if let Some(mut retention) = self.retention {
            // It stops at once: a batch cut short is rolled back.
            if tokio::time::timeout(grace, &mut retention).await.is_err() {
                tracing::warn!("the job retention still ran after the grace period");
                retention.abort();
            }
        }
        if let Some(workers) = self.workers {
            self.state.readiness.set_workers_running(false);
            workers.shutdown(grace).await;
        }
        match tokio::time::timeout(grace, self.server).await {
            Ok(joined) => joined.context("server task")?.context("server")?,
            Err(_) => tracing::warn!("requests still running after the grace period"),
        }
        drop(self.plugin_watch);
        if let Some(follower) = self.plugin_follower {
            follower.abort();
        }
        // Only now: the workers' last attempts may have called a companion
        // (the demo ERP).
        drop(self.companions);
        self.state.store.close().await;
        Ok(())
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod c_heap_tests {
    use std::alloc::{GlobalAlloc as _, Layout, System};

    /// Blocks of the probe: the size of SQLite's larger allocations, under
    /// glibc's threshold for giving a block a mapping of its own.
    const BLOCK: usize = 120 << 10;
    const BLOCKS: usize = 4;
    const ROUNDS: usize = 200;

    /// This thread's minor page faults so far.
    fn faults() -> i64 {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: `getrusage` fills the struct it is given, which is ours
        // and zeroed, and is read only after it answered success.
        let answered = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
        assert_eq!(answered, 0, "getrusage");
        // SAFETY: filled by the successful call above.
        unsafe { usage.assume_init() }.ru_minflt
    }

    /// On a thread of its own (so a heap of its own), allocates [`BLOCKS`]
    /// blocks from the C library, writes every page of each, frees them,
    /// [`ROUNDS`] times over; prints the thread's minor page faults. With
    /// `RESCIND_C_HEAP_PROBE=steady` it first sets what `rescind serve` sets.
    #[test]
    #[ignore = "a probe run by c_heap_keeps_freed_memory_for_reuse, each in a process of its own"]
    fn c_heap_probe() {
        if std::env::var("RESCIND_C_HEAP_PROBE").as_deref() == Ok("steady") {
            assert!(super::steady_c_heap(), "mallopt took the threshold");
        }
        let faults = std::thread::spawn(|| {
            let layout = Layout::from_size_align(BLOCK, 16).unwrap();
            let before = faults();
            for _ in 0..ROUNDS {
                let blocks: Vec<*mut u8> = (0..BLOCKS)
                    .map(|_| {
                        // SAFETY: a non-zero size; the block is checked,
                        // written within its size, and freed below with the
                        // same layout.
                        let block = unsafe { System.alloc(layout) };
                        assert!(!block.is_null());
                        for page in (0..BLOCK).step_by(4096) {
                            // SAFETY: `page` is within the block.
                            unsafe { block.add(page).write_volatile(1) };
                        }
                        block
                    })
                    .collect();
                for block in blocks.into_iter().rev() {
                    // SAFETY: allocated above with this layout, freed once.
                    unsafe { System.dealloc(block, layout) };
                }
            }
            faults() - before
        })
        .join()
        .unwrap();
        println!("c-heap-probe-faults={faults}");
    }

    /// Runs [`c_heap_probe`] in a new process of this test binary, in
    /// `mode`; answers the faults it printed.
    fn probe(mode: &str) -> i64 {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "service::c_heap_tests::c_heap_probe",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("RESCIND_C_HEAP_PROBE", mode)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "the probe ran: {stdout}");
        stdout
            .lines()
            .find_map(|line| {
                line.split_once("c-heap-probe-faults=")
                    .map(|(_, n)| n.trim())
            })
            .unwrap_or_else(|| panic!("the probe printed its faults: {stdout}"))
            .parse()
            .unwrap()
    }

    /// What SQLite frees at the top of a heap is kept and used again with
    /// the setting, where glibc's default hands it back to the kernel and
    /// faults it in again on the next allocation (each probe counts page
    /// faults, not time).
    #[test]
    fn c_heap_keeps_freed_memory_for_reuse() {
        let pages = (BLOCK * BLOCKS / 4096) as i64;
        let default = probe("default");
        let steady = probe("steady");
        assert!(
            default >= pages * ROUNDS as i64 / 2,
            "without the setting glibc gives the freed blocks back every round: \
             {default} faults for {ROUNDS} rounds of {pages} pages"
        );
        assert!(
            steady <= pages * 4,
            "with it the blocks are faulted in once and used again: {steady} faults \
             ({default} without)"
        );
    }
}
