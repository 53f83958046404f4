//! The threads plugin code runs on: a tokio runtime of its own, with fewer
//! threads than the machine has cores, so that plugins busy until their
//! deadline can never take every core from the HTTP API and the store. On
//! Linux the threads also run at a lower priority ([`PLUGIN_THREAD_NICE`]):
//! when the API and a plugin want the same core, the API's request goes
//! first.
//!
//! Calls are spawned there and awaited from wherever the caller runs;
//! dropping the caller's future aborts the call (at the guest's next epoch
//! yield, at most one tick later).

use std::future::Future;

use tokio::runtime::{Builder, Runtime};
use tokio::task::{AbortHandle, JoinError};

/// The nice value of the plugin threads (0 is normal, 19 the lowest
/// priority): a busy plugin thread gets about a tenth of a core that a
/// normal thread also wants, and yields to it at once when it wakes.
pub(crate) const PLUGIN_THREAD_NICE: i32 = 10;

/// The plugin threads. Shuts down in the background when dropped, so that
/// it may be dropped from async code.
pub(crate) struct PluginExecutor {
    runtime: Option<Runtime>,
    threads: usize,
}

impl std::fmt::Debug for PluginExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginExecutor")
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl PluginExecutor {
    /// Starts `threads` threads (at least one).
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("rescind-plugin")
            .on_thread_start(lower_priority)
            .enable_all()
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
            threads,
        })
    }

    /// Runs `future` on the plugin threads and waits for it. The call is
    /// aborted if the returned future is dropped first.
    pub async fn run<F>(&self, future: F) -> Result<F::Output, JoinError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let runtime = self
            .runtime
            .as_ref()
            .expect("the runtime is only taken when the executor is dropped");
        let handle = runtime.spawn(future);
        let _abort = AbortOnDrop(handle.abort_handle());
        handle.await
    }
}

impl Drop for PluginExecutor {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Lowers the calling thread's priority to [`PLUGIN_THREAD_NICE`]. Only
/// an optimisation: if the system refuses, the thread runs as it is.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let thread = rustix::thread::gettid();
        if let Err(error) = rustix::process::setpriority_process(Some(thread), PLUGIN_THREAD_NICE) {
            tracing::debug!(%error, "cannot lower the priority of a plugin thread");
        }
    }
}

/// Aborts a spawned call whose caller went away.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn runs_on_the_plugin_threads() {
        let executor = PluginExecutor::start(1).unwrap();
        let name = executor
            .run(async { std::thread::current().name().map(str::to_owned) })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("rescind-plugin"));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn plugin_threads_run_at_the_lower_priority() {
        let caller = rustix::process::getpriority_process(None).unwrap();
        let executor = PluginExecutor::start(1).unwrap();
        let nice = executor
            .run(async { rustix::process::getpriority_process(None) })
            .await
            .unwrap()
            .unwrap();
        // At least as low as asked (a process started lower stays lower).
        assert!(nice >= PLUGIN_THREAD_NICE.max(caller), "{nice}");
        // The caller's own thread is left alone.
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), caller);
    }

    #[tokio::test]
    async fn the_last_holder_may_be_a_call_on_the_plugin_threads() {
        // A call holds its runtime (through the plugin runtime's shared
        // state): when the call outlives every other holder, it drops the
        // executor on one of the executor's own threads.
        let executor = Arc::new(PluginExecutor::start(1).unwrap());
        // Sent when the call ends: whether it ended without a panic.
        let (ended_tx, ended_rx) = std::sync::mpsc::channel::<bool>();
        struct Signal(std::sync::mpsc::Sender<bool>);
        impl Drop for Signal {
            fn drop(&mut self) {
                let _ = self.0.send(!std::thread::panicking());
            }
        }
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let held = Arc::clone(&executor);
        let runtime = executor.runtime.as_ref().unwrap();
        runtime.spawn(async move {
            let _signal = Signal(ended_tx);
            let _ = wait.await;
            drop(held);
        });
        drop(executor);
        go.send(()).unwrap();
        let clean = ended_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the call ended");
        assert!(clean, "dropping the executor on its own thread panicked");
    }

    #[tokio::test]
    async fn dropping_the_caller_aborts_the_call() {
        /// Set when the spawned future is dropped: what an abort does.
        struct Dropped(Arc<AtomicBool>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let executor = PluginExecutor::start(1).unwrap();
        let dropped = Arc::new(AtomicBool::new(false));
        let (started, running) = tokio::sync::oneshot::channel();
        let call = {
            let guard = Dropped(Arc::clone(&dropped));
            executor.run(async move {
                let _guard = guard;
                let _ = started.send(());
                tokio::time::sleep(Duration::from_secs(3600)).await;
            })
        };
        tokio::select! {
            _ = call => panic!("the call sleeps for an hour"),
            _ = running => {}
        }
        // The caller's future is gone: the task must be dropped soon.
        for _ in 0..1000 {
            if dropped.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the call still runs 10 s after its caller went away");
    }
}
