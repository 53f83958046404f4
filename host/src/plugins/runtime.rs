//! The plugin runtime: one engine, one linker, plugins compiled once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use crate::plugins::bindings::{IntegrationProcessor, IntegrationProcessorPre};
use crate::plugins::cache::CompiledCache;
use crate::plugins::call::CallState;
use crate::plugins::compat::{self, Incompatibility, PROCESSOR_EXPORT};
use crate::plugins::config::RuntimeConfig;
use crate::plugins::engine::{EpochTicker, build_engine, engine_fingerprint};
use crate::plugins::error::PluginError;
use crate::plugins::executor::PluginExecutor;
use crate::plugins::host_impl::ErpHost;
use crate::plugins::name::validate_plugin_name;
use crate::plugins::outbound_impl::Network;
use crate::plugins::plugin::Plugin;
use crate::plugins::redact::RedactorCache;

/// How many sets of connection secrets keep their redactor built: more than
/// a host has connections, so that each connection's calls share one.
const REDACTORS_KEPT: usize = 64;

/// What every plugin and call of one runtime share.
pub(crate) struct Shared {
    pub engine: Engine,
    pub config: RuntimeConfig,
    pub linker: Linker<CallState>,
    /// One permit per instance slot of the pool: a call waits for a slot
    /// rather than failing when the pool is full.
    pub slots: tokio::sync::Semaphore,
    /// Pinned names and the TLS roots of outbound requests.
    pub network: Arc<Network>,
    /// The threads plugin calls run on.
    pub executor: PluginExecutor,
    /// The redactors of the connections' secrets, built once per set of
    /// values rather than once per call.
    pub redactors: RedactorCache,
    cache: Option<CompiledCache>,
    compilations: AtomicU64,
    /// Kept alive as long as any plugin can still run.
    _ticker: EpochTicker,
}

/// Loads integration-processor plugins and runs them in a sandbox.
///
/// One per process: it owns the wasmtime engine (pooling allocator, epoch
/// interruption), the thread that advances its epochs and the threads that
/// run plugin calls ([`RuntimeConfig::plugin_threads`]). Cheap to clone.
#[derive(Clone)]
pub struct PluginRuntime {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PluginRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRuntime")
            .field("config", &self.shared.config)
            .field("compilations", &self.compilations())
            .finish_non_exhaustive()
    }
}

impl PluginRuntime {
    /// Builds the engine, the linker with everything a plugin may import,
    /// and opens the compilation cache.
    pub fn new(config: RuntimeConfig) -> Result<Self, PluginError> {
        let runtime_error = |reason: String| PluginError::Runtime { reason };
        let engine = build_engine(&config).map_err(|e| runtime_error(format!("{e:#}")))?;

        let mut linker = Linker::<CallState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
            .and_then(|()| {
                IntegrationProcessor::add_to_linker::<CallState, ErpHost>(
                    &mut linker,
                    CallState::erp_host,
                )
            })
            .map_err(|e| runtime_error(format!("cannot link the host interfaces: {e:#}")))?;

        let cache = match &config.cache_dir {
            Some(dir) => Some(
                CompiledCache::open(dir, engine_fingerprint(&engine)).map_err(|e| {
                    runtime_error(format!(
                        "cannot use the plugin cache directory {}: {e}",
                        dir.display()
                    ))
                })?,
            ),
            None => None,
        };
        let network = Network::new(
            config.resolve.clone(),
            config
                .keep_alive
                .min(crate::plugins::MAX_OUTBOUND_KEEP_ALIVE),
        )
        .map_err(|e| runtime_error(format!("cannot set up TLS for outbound requests: {e}")))?;
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick)
            .map_err(|e| runtime_error(format!("cannot start the epoch ticker: {e}")))?;
        let executor = PluginExecutor::start(config.plugin_threads)
            .map_err(|e| runtime_error(format!("cannot start the plugin threads: {e}")))?;

        Ok(Self {
            shared: Arc::new(Shared {
                slots: tokio::sync::Semaphore::new(config.max_concurrent_calls.max(1) as usize),
                network: Arc::new(network),
                executor,
                redactors: RedactorCache::new(REDACTORS_KEPT),
                engine,
                config,
                linker,
                cache,
                compilations: AtomicU64::new(0),
                _ticker: ticker,
            }),
        })
    }

    /// Starts `task` on the runtime's plugin threads, at their lower
    /// priority, to run as long as it likes. Plugin calls it makes run
    /// where it is; a call made from any other thread is handed to these
    /// threads and its answer handed back, two thread wake-ups more. The
    /// job workers run here, so that a delivery's call costs no hop.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.shared.executor.spawn(task)
    }

    /// The runtime's configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.shared.config
    }

    /// How many times this runtime compiled a component (a load served from
    /// the on-disk cache does not count).
    pub fn compilations(&self) -> u64 {
        self.shared.compilations.load(Ordering::Relaxed)
    }

    /// Outbound connections kept open now for the plugins' next requests
    /// (at most 64; each closes once idle for [`RuntimeConfig::keep_alive`]).
    pub fn idle_connections(&self) -> usize {
        self.shared.network.idle_connections()
    }

    /// Validates, compiles (or loads from the cache) and pre-instantiates a
    /// plugin. Refusals say what is wrong and how to fix it.
    ///
    /// Compiling takes a while (a fraction of a second in a release build,
    /// seconds in a debug one) and blocks the thread: from async code call it
    /// inside `tokio::task::spawn_blocking`.
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<Arc<Plugin>, PluginError> {
        validate_plugin_name(name)?;
        let plugin = name.to_owned();
        let inspection = compat::inspect(bytes).map_err(|refusal| refused(&plugin, refusal))?;

        let sha256 = hex::encode(Sha256::digest(bytes));
        let component = self
            .compile(bytes, &sha256)
            .map_err(|e| PluginError::Malformed {
                plugin: plugin.clone(),
                reason: format!("{e:#}"),
            })?;
        let pre = self
            .shared
            .linker
            .instantiate_pre(&component)
            .map_err(|e| {
                let reason = format!("{e:#}");
                PluginError::UnsatisfiedImport {
                    plugin: plugin.clone(),
                    import: first_quoted(&e.to_string())
                        .unwrap_or("an interface")
                        .to_owned(),
                    reason,
                }
            })?;
        let pre = IntegrationProcessorPre::new(pre).map_err(|e| PluginError::ExportMismatch {
            plugin: plugin.clone(),
            export: PROCESSOR_EXPORT.to_owned(),
            reason: format!("{e:#}"),
        })?;

        let mut warnings = Vec::new();
        if inspection.stamp.is_none() {
            warnings.push(format!(
                "no `{}` stamp: the plugin was not built with the rescind-guest SDK, so its \
                 WIT version could not be checked beyond its `{PROCESSOR_EXPORT}` export",
                compat::SDK_SECTION
            ));
        }
        Ok(Arc::new(Plugin::new(
            plugin,
            format!("sha256:{sha256}"),
            inspection.stamp,
            warnings,
            pre,
            Arc::clone(&self.shared),
        )))
    }

    fn compile(&self, bytes: &[u8], sha256: &str) -> wasmtime::Result<Component> {
        let shared = &self.shared;
        if let Some(component) = shared
            .cache
            .as_ref()
            .and_then(|cache| cache.load(&shared.engine, sha256))
        {
            return Ok(component);
        }
        let component = Component::new(&shared.engine, bytes)?;
        shared.compilations.fetch_add(1, Ordering::Relaxed);
        if let Some(cache) = &shared.cache
            && let Err(err) = cache.store(&component, sha256)
        {
            // The cache only saves time; the plugin is loaded anyway.
            tracing::warn!("cannot cache the compiled plugin: {err:#}");
        }
        Ok(component)
    }
}

fn refused(plugin: &str, refusal: Incompatibility) -> PluginError {
    let plugin = plugin.to_owned();
    match refusal {
        Incompatibility::NotWasm => PluginError::NotWasm { plugin },
        Incompatibility::CoreModule => PluginError::CoreModule { plugin },
        Incompatibility::Malformed(reason) => PluginError::Malformed { plugin, reason },
        Incompatibility::WrongWorld(exports) => PluginError::WrongWorld {
            plugin,
            exports,
            expected: PROCESSOR_EXPORT.to_owned(),
        },
        Incompatibility::IncompatibleSdk(stamp) => PluginError::IncompatibleSdk {
            plugin,
            sdk: stamp.sdk,
            wit: stamp.wit,
        },
        Incompatibility::BadSdkStamp(reason) => PluginError::BadSdkStamp { plugin, reason },
    }
}

/// The first `quoted` name in a message: wasmtime names the unsatisfied
/// import that way (component imports instance `wasi:…`, but …).
fn first_quoted(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once('`')?;
    let (name, _) = rest.split_once('`')?;
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unsatisfied_import_is_named() {
        assert_eq!(
            first_quoted(
                "component imports instance `wasi:sockets/tcp@0.2.6`, but a matching \
                 implementation was not found in the linker"
            ),
            Some("wasi:sockets/tcp@0.2.6")
        );
        assert_eq!(first_quoted("no quotes"), None);
    }
}
