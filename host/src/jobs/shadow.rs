//! Shadow runs on the worker's side: after an attempt of a plugin's active
//! version is recorded, the plugin's shadow run (if it still wants jobs)
//! takes the job, runs its version on the same input in a capture-only
//! sandbox answered with the active version's recorded answers, and keeps
//! how the two versions' requests compare. Nothing the shadow version sends
//! leaves the host, and the job's own outcome never depends on it.

use super::plugin_processors::log_lines;
use super::{Delivery, DeliveryOutcome, PluginProcessors, Submission, wit_cancellation};
use crate::plugins::compare::{SentRequest, Sides, compare};
use crate::plugins::recorded_answers;
use crate::plugins::registry::parse_reference;
use crate::store::{ShadowComparison, ShadowRequest, Store};

/// Bytes kept of one difference or note: a body's diff can be long, and a
/// run keeps every job's.
const MAX_SHADOW_TEXT_BYTES: usize = 4 * 1024;

impl PluginProcessors {
    /// Runs the shadow version of `processor`'s plugin beside the attempt
    /// just recorded, when the plugin has a shadow run that still wants
    /// jobs (the worker calls this only when the attempt's input said so;
    /// taking the job checks again); keeps the comparison in the store.
    /// Only for attempts of a plugin's active version (`name`, not a pinned
    /// `name@sha256:…`) in which the plugin ran. Failures are logged: the
    /// job is not affected.
    pub(super) async fn shadow(
        &self,
        store: &Store,
        processor: &str,
        submission: &Submission,
        delivery: &Delivery,
    ) {
        let Ok((name, None)) = parse_reference(processor) else {
            return;
        };
        let (Some(active_version), Some(exchange)) = (&delivery.plugin_version, &delivery.exchange)
        else {
            return;
        };
        let version = match store
            .take_shadow_job(name, &submission.job_id, submission.attempt, active_version)
            .await
        {
            Ok(Some(version)) => version,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take the job for the plugin's shadow run");
                return;
            }
        };
        let (answers, mut notes) = recorded_answers(&exchange.exchanges);
        if exchange.not_recorded > 0 {
            notes.push(format!(
                "the active version made {} more requests that were not recorded (at most 16 \
                 are kept): they are neither answered nor compared",
                exchange.not_recorded
            ));
        }
        let active: Vec<SentRequest> = exchange.exchanges.iter().map(SentRequest::from).collect();
        let report = match self.registry.resolve(&format!("{name}@{version}")).await {
            Ok(plugin) => {
                let cancellation = wit_cancellation(
                    &submission.cancellation,
                    &submission.request_id,
                    submission.attempt,
                    &submission.parameters,
                );
                let report = plugin
                    .submit_captured(cancellation, &submission.connection, &self.limits, answers)
                    .await;
                let shadow: Vec<SentRequest> = report
                    .exchange
                    .exchanges
                    .iter()
                    .map(SentRequest::from)
                    .collect();
                let comparison = compare(&active, &shadow, Sides::SHADOW);
                let outcome = DeliveryOutcome::from(report.outcome);
                ShadowComparison {
                    identical: comparison.identical(),
                    active_outcome: delivery.outcome.name().to_owned(),
                    shadow_outcome: outcome.name().to_owned(),
                    shadow_message: outcome.message(),
                    requests: comparison
                        .requests
                        .into_iter()
                        .map(|r| ShadowRequest {
                            active: r.recorded,
                            shadow: r.now,
                            differences: r.differences.iter().map(|d| bounded(d)).collect(),
                            skipped: r.skipped,
                        })
                        .collect(),
                    notes: notes.iter().map(|n| bounded(n)).collect(),
                    shadow_log: log_lines(report.log),
                    shadow_ms: u64::try_from(report.elapsed.as_millis()).unwrap_or(u64::MAX),
                }
            }
            // Removed or no longer trusted since the run started.
            Err(error) => ShadowComparison {
                identical: false,
                active_outcome: delivery.outcome.name().to_owned(),
                shadow_outcome: "not-run".to_owned(),
                shadow_message: Some(format!("the shadow version could not be loaded: {error}")),
                requests: Vec::new(),
                notes,
                shadow_log: Vec::new(),
                shadow_ms: 0,
            },
        };
        tracing::info!(
            plugin = name, %version, identical = report.identical,
            "shadow version ran beside the attempt"
        );
        if let Err(e) = store
            .finish_shadow_job(name, &submission.job_id, &report)
            .await
        {
            tracing::warn!(error = %e, "cannot keep the shadow run's comparison");
        }
    }
}

/// `text` cut to [`MAX_SHADOW_TEXT_BYTES`] on a character boundary, with a
/// marker when cut.
fn bounded(text: &str) -> String {
    if text.len() <= MAX_SHADOW_TEXT_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_SHADOW_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n… [cut: {} bytes, {end} kept]",
        &text[..end],
        text.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_on_a_character_boundary() {
        assert_eq!(bounded("short"), "short");
        let long = "é".repeat(MAX_SHADOW_TEXT_BYTES);
        let cut = bounded(&long);
        assert!(cut.len() < MAX_SHADOW_TEXT_BYTES + 64);
        assert!(
            cut.ends_with(&format!(
                "… [cut: {} bytes, {MAX_SHADOW_TEXT_BYTES} kept]",
                long.len()
            )),
            "{}",
            &cut[cut.len() - 60..]
        );
    }
}
