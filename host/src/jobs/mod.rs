//! The job workers: claim due jobs from the outbox with a lease, run the job
//! definition's integration processor, record every attempt, and retry
//! passing failures with exponential backoff and full jitter.

pub mod backoff;
