//! The workers' integration processors, backed by the plugin registry:
//! plugins by name or pinned version, each attempt a fresh sandboxed call.

use super::{Delivery, DeliveryOutcome, Submission};
use crate::plugins::registry::{OutcomeEffect, PluginRegistry, RegistryError, parse_reference};
use crate::plugins::{
    BankDetails, CallLimits, CallOutcome, Cancellation, CancelledLine, ConnectionContext, LogLine,
    Money, Refund, SendWindow, Tracking,
};
use crate::store::{AttemptLogLine, CancellationRecord, Connection};

/// A stored connection as the plugin call sees it: the same entries, moved
/// across once when an attempt is prepared (the plugin runtime does not
/// know the store).
impl From<Connection> for ConnectionContext {
    fn from(connection: Connection) -> Self {
        let Connection {
            name,
            base_url,
            allowed_hosts,
            allow_private_network,
            ca_certificates,
            settings,
            secrets,
        } = connection;
        ConnectionContext {
            name,
            base_url,
            allowed_hosts,
            allow_private_network,
            ca_certificates,
            settings,
            secrets,
        }
    }
}

/// Integration processors run by the plugin runtime, resolved through the
/// [`PluginRegistry`] at the start of every attempt: a job definition names
/// a plugin (`aaas`: its active version) or pins one
/// (`aaas@sha256:…`). The attempt holds the resolved version until it ends,
/// so a swap meanwhile never changes the code under it; its outcome is
/// reported back to the registry, whose activation guard may roll the
/// version back and ask for failed jobs to be re-queued.
#[derive(Debug, Clone)]
pub struct PluginProcessors {
    pub(super) registry: PluginRegistry,
    pub(super) limits: CallLimits,
}

impl PluginProcessors {
    /// Processors over `registry`, each call bounded by `limits`.
    pub fn new(registry: PluginRegistry, limits: CallLimits) -> Self {
        PluginProcessors { registry, limits }
    }

    /// The registry the processors are resolved in.
    pub fn registry(&self) -> &PluginRegistry {
        &self.registry
    }
}

/// Whether an attempt's outcome counts against its plugin version in an
/// activation guard: the plugin or its configuration failed. An ERP's
/// rejection is a business answer, not the plugin's failure.
fn counts_as_failure(outcome: &DeliveryOutcome) -> bool {
    match outcome {
        DeliveryOutcome::Call(CallOutcome::Accepted { .. } | CallOutcome::Rejected(_))
        | DeliveryOutcome::UnknownProcessor(_) => false,
        DeliveryOutcome::Call(
            CallOutcome::Transient(_)
            | CallOutcome::Misconfigured(_)
            | CallOutcome::Trapped(_)
            | CallOutcome::DeadlineExceeded(_)
            | CallOutcome::MemoryCapExceeded(_),
        ) => true,
    }
}

impl PluginProcessors {
    /// Runs integration processor `processor` (a plugin name or a pinned
    /// `name@sha256:…`) on a submission; the plugin's outbound requests are
    /// refused once `window` has closed.
    pub async fn submit(
        &self,
        processor: &str,
        submission: &Submission,
        window: Option<&SendWindow>,
    ) -> Delivery {
        let plugin = match self.registry.resolve(processor).await {
            Ok(plugin) => plugin,
            Err(error) => {
                let outcome = match error {
                    RegistryError::UnknownPlugin { .. }
                    | RegistryError::NoActiveVersion { .. }
                    | RegistryError::UnknownVersion { .. } => {
                        tracing::warn!(%error, "integration processor not available");
                        DeliveryOutcome::UnknownProcessor(processor.to_owned())
                    }
                    RegistryError::BadReference { .. } | RegistryError::UntrustedVersion { .. } => {
                        CallOutcome::Misconfigured(error.to_string()).into()
                    }
                    // Reading the store or compiling a pinned version may
                    // work on the next attempt.
                    other => CallOutcome::Transient(format!(
                        "cannot load integration processor {processor:?}: {other}"
                    ))
                    .into(),
                };
                return Delivery::without_call(outcome);
            }
        };
        let cancellation = wit_cancellation(
            &submission.cancellation,
            &submission.request_id,
            submission.attempt,
            &submission.parameters,
        );
        let report = plugin
            .submit_within(cancellation, &submission.connection, &self.limits, window)
            .await;
        Delivery {
            outcome: report.outcome.into(),
            log: log_lines(report.log),
            exchange: Some(report.exchange),
            elapsed: report.elapsed,
            plugin_version: Some(plugin.sha256().to_owned()),
        }
    }

    /// Told after an attempt of job `job_id` on `processor` was recorded in
    /// the store. Answers the jobs to put back in the queue with a fresh
    /// round of attempts (this one's among them, possibly): their failures
    /// came from a plugin version that the activation guard rolled back.
    /// Called only once the attempt is stored, so that every job it names
    /// is already `failed` or `retrying`, never still running.
    pub async fn attempt_recorded(
        &self,
        processor: &str,
        job_id: &str,
        delivery: &Delivery,
    ) -> Vec<String> {
        let Some(version) = &delivery.plugin_version else {
            return Vec::new();
        };
        // A plugin ran, so the reference resolved: it parses.
        let Ok((name, _)) = parse_reference(processor) else {
            return Vec::new();
        };
        let failed = counts_as_failure(&delivery.outcome);
        match self
            .registry
            .record_outcome(name, version, job_id, failed)
            .await
        {
            Ok(OutcomeEffect::Counted) => Vec::new(),
            Ok(OutcomeEffect::Requeue) => vec![job_id.to_owned()],
            Ok(OutcomeEffect::RolledBack(rollback)) => {
                tracing::warn!(
                    plugin = %rollback.plugin, from = %rollback.from, to = %rollback.to,
                    jobs = rollback.failed_attempts.len(),
                    "activation guard rolled the plugin back; re-queueing its failed jobs"
                );
                rollback.failed_attempts
            }
            Err(error) => {
                tracing::error!(%error, "cannot record the attempt's outcome with the plugin registry");
                Vec::new()
            }
        }
    }
}

/// A call's log lines as an attempt keeps them: the source before the
/// message.
pub(super) fn log_lines(log: Vec<LogLine>) -> Vec<AttemptLogLine> {
    log.into_iter()
        .map(|line| AttemptLogLine {
            level: line.level.as_str().to_owned(),
            message: format!("[{}] {}", line.source.as_str(), line.message),
        })
        .collect()
}

/// The WIT record for one attempt of a cancellation's job: what attempt
/// `attempt` of a job with `request_id` and `parameters` submits. The job
/// detail's replay input (`GET /v1/admin/jobs/{id}/attempts/{n}/input`)
/// rebuilds it the same way.
pub fn wit_cancellation(
    c: &CancellationRecord,
    request_id: &str,
    attempt: u32,
    parameters: &std::collections::BTreeMap<String, String>,
) -> Cancellation {
    let money = |amount_minor: i64| Money {
        amount_minor,
        currency: c.currency.clone(),
    };
    Cancellation {
        request_id: request_id.to_owned(),
        attempt,
        order_number: c.order_number.clone(),
        erp_order_number: c.erp_order_number.clone(),
        business_code: c.business_code.clone(),
        customer_number: c.customer_number.clone(),
        website: c.website.clone(),
        order_date: c.order_date.clone(),
        full: c.full,
        lines: c
            .lines
            .iter()
            .map(|l| CancelledLine {
                line_number: l.line_number,
                sku: l.sku.clone(),
                quantity: l.quantity,
                kind: l.kind,
                amount: money(l.amount_minor),
                tax: money(l.tax_minor),
                parent_line: l.parent_line,
                erp_line_ref: l.erp_line_ref.clone(),
            })
            .collect(),
        all_line_numbers: c.all_line_numbers.clone(),
        reason: c.reason,
        date: c.date.clone(),
        invoice_reference: c.invoice_reference.clone(),
        forced_cancel: c.forced_cancel,
        forced_cancel_with_refund: c.forced_cancel_with_refund,
        refund: c.refund.as_ref().map(|r| Refund {
            amount: Money {
                amount_minor: r.amount_minor,
                currency: r.currency.clone(),
            },
            to: r.to,
        }),
        bank_details: c.bank_details.as_ref().map(|b| BankDetails {
            account_owner: b.account_owner.clone(),
            iban: b.iban.clone(),
            bic: b.bic.clone(),
        }),
        for_user: c.for_user.clone(),
        tracking: c.tracking.as_ref().map(|t| Tracking {
            channel: t.channel,
            session: t.session.clone(),
            cuid: t.cuid.clone(),
            offline_channel: t.offline_channel.clone(),
        }),
        parameters: parameters
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}
