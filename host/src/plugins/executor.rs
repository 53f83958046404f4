//! The threads plugin code runs on: a tokio runtime of its own, with fewer
//! threads than the machine has cores, so that plugins busy until their
//! deadline can never take every core from the HTTP API and the store. On
//! Linux the threads also run at a lower priority ([`PLUGIN_THREAD_NICE`]):
//! when the API and a plugin want the same core, the API's request goes
//! first.
//!
//! Calls are spawned there and awaited from wherever the caller runs;
//! dropping the caller's future aborts the call (at the guest's next epoch
//! yield, at most one tick later). A caller that already runs on these
//! threads (a job worker: see [`PluginExecutor::spawn`]) runs its calls
//! where it is, without the hop: handing a call to another thread and back
//! costs two thread wake-ups, more than a small call itself.

use std::cell::Cell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::FutureExt;
use futures_util::future::Either;
use tokio::runtime::{Builder, Runtime};
use tokio::task::{AbortHandle, JoinError, JoinHandle};

/// The nice value of the plugin threads (0 is normal, 19 the lowest
/// priority): a busy plugin thread gets about a tenth of a core that a
/// normal thread also wants, and yields to it at once when it wakes.
pub(crate) const PLUGIN_THREAD_NICE: i32 = 10;

/// The plugin threads. Shuts down in the background when dropped, so that
/// it may be dropped from async code.
pub(crate) struct PluginExecutor {
    runtime: Option<Runtime>,
    threads: usize,
    /// Tells this executor's threads from every other's.
    id: u64,
}

/// The ids of executors, from 1: 0 is "no executor".
static NEXT_EXECUTOR_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The id of the executor whose thread this is; 0 on every other thread.
    static EXECUTOR_OF_THIS_THREAD: Cell<u64> = const { Cell::new(0) };
}

/// Why a call run by the executor ended without an answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    /// The call panicked (a bug of the host, not of the plugin: a guest's
    /// trap is an answer).
    #[error("it panicked: {0}")]
    Panicked(String),
    /// The executor shut down under it.
    #[error("the plugin threads shut down")]
    ShutDown,
}

impl From<JoinError> for RunError {
    fn from(error: JoinError) -> Self {
        match error.try_into_panic() {
            Ok(payload) => RunError::Panicked(panic_message(payload.as_ref())),
            Err(_) => RunError::ShutDown,
        }
    }
}

/// The message a panic was raised with, when it has one.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "without a message".to_owned())
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
        let id = NEXT_EXECUTOR_ID.fetch_add(1, Ordering::Relaxed);
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("rescind-plugin")
            .on_thread_start(move || {
                EXECUTOR_OF_THIS_THREAD.set(id);
                lower_priority();
            })
            .enable_all()
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
            threads,
            id,
        })
    }

    fn runtime(&self) -> &Runtime {
        self.runtime
            .as_ref()
            .expect("the runtime is only taken when the executor is dropped")
    }

    /// Whether the calling thread is one of this executor's.
    fn is_current(&self) -> bool {
        EXECUTOR_OF_THIS_THREAD.get() == self.id
    }

    /// Runs `future` on the plugin threads and waits for it: where the
    /// caller is when it already runs on them, else spawned there (at
    /// once). The call is aborted if the returned future is dropped first.
    ///
    /// Not an `async fn`: one would keep `future` twice in its own state
    /// (as its argument and where it is awaited), and a plugin call's
    /// future is large; this one holds it once.
    pub fn run<F>(
        &self,
        future: F,
    ) -> impl Future<Output = Result<F::Output, RunError>> + Send + use<F>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if self.is_current() {
            // A panic ends the call, not the caller, as it would in a task
            // of its own.
            return Either::Left(AssertUnwindSafe(future).catch_unwind().map(|ended| {
                ended.map_err(|payload| RunError::Panicked(panic_message(payload.as_ref())))
            }));
        }
        let handle = self.runtime().spawn(future);
        let abort = AbortOnDrop(handle.abort_handle());
        Either::Right(async move {
            let _abort = abort;
            Ok(handle.await?)
        })
    }

    /// Starts `task` on the plugin threads, to run as long as it likes.
    /// The plugin calls it makes run where it is, without a hop; like every
    /// call, it runs at the plugin threads' lower priority.
    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime().spawn(task)
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

    /// The tasks alive on the runtime the calling task runs on.
    fn tasks_alive() -> usize {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    }

    #[tokio::test]
    async fn a_call_from_the_plugin_threads_runs_where_it_is() {
        let executor = Arc::new(PluginExecutor::start(2).unwrap());
        let inner = Arc::clone(&executor);
        let (outside, inside) = executor
            .spawn(async move {
                let outside = (std::thread::current().id(), tasks_alive());
                let inside = inner
                    .run(async { (std::thread::current().id(), tasks_alive()) })
                    .await
                    .unwrap();
                (outside, inside)
            })
            .await
            .unwrap();
        // The same thread, and no task of its own: the worker's task is
        // the only one the fresh executor ever ran.
        assert_eq!(outside, inside);
        assert_eq!(outside.1, 1);
    }

    #[tokio::test]
    async fn another_executors_thread_hands_the_call_over() {
        let first = PluginExecutor::start(1).unwrap();
        let second = Arc::new(PluginExecutor::start(1).unwrap());
        let called = Arc::clone(&second);
        let alive = first
            .spawn(async move { called.run(async { tasks_alive() }).await.unwrap() })
            .await
            .unwrap();
        // A task of its own on the second (fresh) executor: the only one
        // it ever ran.
        assert_eq!(alive, 1);
        let on_second = second
            .spawn(async { EXECUTOR_OF_THIS_THREAD.get() })
            .await
            .unwrap();
        assert_eq!(on_second, second.id);
        assert_ne!(first.id, second.id);
    }

    #[tokio::test]
    async fn a_panicking_call_is_an_error_of_the_call_not_of_its_caller() {
        let executor = Arc::new(PluginExecutor::start(1).unwrap());
        // From elsewhere: the call's own task panics.
        let handed_over: Result<(), RunError> =
            executor.run(async { panic!("the host broke") }).await;
        assert!(
            matches!(&handed_over, Err(RunError::Panicked(m)) if m == "the host broke"),
            "{handed_over:?}"
        );
        // From the plugin threads: the caller's task goes on.
        let inner = Arc::clone(&executor);
        let in_place = executor
            .spawn(async move {
                let answer: Result<(), RunError> =
                    inner.run(async { panic!("{} broke", "the host") }).await;
                (answer, "the caller went on")
            })
            .await
            .expect("the caller's task did not panic");
        assert!(
            matches!(&in_place.0, Err(RunError::Panicked(m)) if m == "the host broke"),
            "{in_place:?}"
        );
        assert_eq!(
            RunError::Panicked("the host broke".into()).to_string(),
            "it panicked: the host broke"
        );
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
