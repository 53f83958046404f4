//! The job workers: claim due jobs from the outbox with a lease, run the job
//! definition's integration processor, record every attempt, and retry
//! passing failures with exponential backoff and full jitter.
//!
//! The worker knows nothing of wasmtime: it hands a [`Submission`] to the
//! [`PluginProcessors`] (the plugin registry and runtime) and gets a
//! [`Delivery`] back. What happens next is policy:
//!
//! | outcome | job |
//! |---|---|
//! | accepted | `succeeded`, ERP reference recorded |
//! | rejected, misconfigured, unknown processor | `failed` at once |
//! | transient, trap, deadline, memory cap | `retrying` after a backoff, `failed` after `maxAttempts` |
//!
//! Jobs of one definition for one order go out in the order their
//! cancellations were committed: a job waits while an earlier one of the
//! same order is queued, running or retrying (an ERP refuses a partial
//! cancellation that arrives after the one that ended the order).
//!
//! A running attempt renews its job's lease every third of the lease's
//! length (a heartbeat), so that a slow attempt is never run twice at once.
//! A worker that dies leaves its job `running` with a lease; when the lease
//! expires another worker takes the job up again (the open attempt is
//! recorded as `lease-expired`); a host restarted on its SQLite store takes
//! its own dead run's jobs up at once (`interrupted`). A worker that finds
//! its lease lost stops its attempt and records nothing: its outcome neither
//! moves the job nor counts toward an activation guard. Delivery is at least
//! once; the job's `request_id`, the same for every attempt, lets the ERP
//! drop duplicates.

pub mod backoff;
mod erp_sync;
mod plugin_processors;
mod recorder;
pub mod retention;
mod shadow;
mod worker;

pub use erp_sync::ErpSyncState;
pub use plugin_processors::{PluginProcessors, wit_cancellation};

pub use worker::{Delivery, DeliveryOutcome, Submission, WorkerConfig, WorkerPool, retry_share};
