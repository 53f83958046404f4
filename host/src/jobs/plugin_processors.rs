//! The workers' [`IntegrationProcessors`] backed by the plugin runtime:
//! loaded components by name, each attempt a fresh sandboxed call.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::{Delivery, DeliveryOutcome, IntegrationProcessors, Submission};
use crate::plugins::{
    BankDetails, CallLimits, CallOutcome, Cancellation, CancellationReason, CancelledLine,
    ConnectionContext, LineKind, Money, OrderChannel, Plugin, PluginError, PluginRuntime, Refund,
    RefundDestination, Tracking,
};
use crate::store::{AttemptLogLine, CancellationRecord};

/// Integration processors run by the plugin runtime.
pub struct PluginProcessors {
    runtime: PluginRuntime,
    plugins: HashMap<String, Arc<Plugin>>,
    limits: CallLimits,
}

impl std::fmt::Debug for PluginProcessors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginProcessors")
            .field("plugins", &self.plugins.keys().collect::<Vec<_>>())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl PluginProcessors {
    /// Loads each `(name, component bytes)` into the runtime.
    pub fn new(
        runtime: PluginRuntime,
        components: &[(&str, &[u8])],
        limits: CallLimits,
    ) -> Result<Self, PluginError> {
        let mut plugins = HashMap::new();
        for (name, bytes) in components {
            plugins.insert((*name).to_owned(), runtime.load(name, bytes)?);
        }
        Ok(PluginProcessors {
            runtime,
            plugins,
            limits,
        })
    }

    /// The runtime (for loading more plugins).
    pub fn runtime(&self) -> &PluginRuntime {
        &self.runtime
    }

    /// Names of the loaded processors.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.plugins.keys().cloned().collect();
        names.sort();
        names
    }
}

impl IntegrationProcessors for PluginProcessors {
    fn submit<'a>(
        &'a self,
        processor: &'a str,
        submission: &'a Submission,
    ) -> Pin<Box<dyn Future<Output = Delivery> + Send + 'a>> {
        Box::pin(async move {
            let Some(plugin) = self.plugins.get(processor) else {
                return Delivery {
                    outcome: DeliveryOutcome::UnknownProcessor(processor.to_owned()),
                    log: Vec::new(),
                    elapsed: std::time::Duration::ZERO,
                    plugin_version: None,
                };
            };
            let cancellation = wit_cancellation(submission);
            let connection = ConnectionContext {
                base_url: submission.connection.base_url.clone(),
                allowed_hosts: submission.connection.allowed_hosts.clone(),
                settings: submission.connection.settings.clone(),
                secrets: submission.connection.secrets.clone(),
            };
            let report = plugin
                .submit(&cancellation, &connection, &self.limits)
                .await;
            Delivery {
                outcome: match report.outcome {
                    CallOutcome::Accepted {
                        erp_reference,
                        message,
                    } => DeliveryOutcome::Accepted {
                        erp_reference,
                        message,
                    },
                    CallOutcome::Rejected(m) => DeliveryOutcome::Rejected(m),
                    CallOutcome::Transient(m) => DeliveryOutcome::Transient(m),
                    CallOutcome::Misconfigured(m) => DeliveryOutcome::Misconfigured(m),
                    CallOutcome::Trapped(m) => DeliveryOutcome::Trapped(m),
                    CallOutcome::DeadlineExceeded(d) => DeliveryOutcome::DeadlineExceeded(d),
                    CallOutcome::MemoryCapExceeded(b) => DeliveryOutcome::MemoryCapExceeded(b),
                },
                log: report
                    .log
                    .into_iter()
                    .map(|line| AttemptLogLine {
                        level: line.level.as_str().to_owned(),
                        message: format!("[{}] {}", line.source.as_str(), line.message),
                    })
                    .collect(),
                elapsed: report.elapsed,
                plugin_version: Some(format!("sha256:{}", plugin.sha256())),
            }
        })
    }
}

/// The WIT record for one attempt of a cancellation's job.
fn wit_cancellation(submission: &Submission) -> Cancellation {
    let c: &CancellationRecord = &submission.cancellation;
    let money = |amount_minor: i64| Money {
        amount_minor,
        currency: c.currency.clone(),
    };
    Cancellation {
        request_id: submission.request_id.clone(),
        attempt: submission.attempt,
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
                kind: if l.kind == "discount" {
                    LineKind::Discount
                } else {
                    LineKind::Product
                },
                amount: money(l.amount_minor),
                tax: money(l.tax_minor),
                parent_line: l.parent_line,
                erp_line_ref: l.erp_line_ref.clone(),
            })
            .collect(),
        all_line_numbers: c.all_line_numbers.clone(),
        reason: match c.reason.as_str() {
            "OUT_OF_STOCK" => CancellationReason::OutOfStock,
            "NO_PAYMENT" => CancellationReason::NoPayment,
            "CUSTOMER_SERVICE" => CancellationReason::CustomerService,
            _ => CancellationReason::CustomerCancellation,
        },
        date: c.date.clone(),
        invoice_reference: c.invoice_reference.clone(),
        forced_cancel: c.forced_cancel,
        forced_cancel_with_refund: c.forced_cancel_with_refund,
        refund: c.refund.as_ref().map(|r| Refund {
            amount: Money {
                amount_minor: r.amount_minor,
                currency: r.currency.clone(),
            },
            to: if r.to == "bankAccount" {
                RefundDestination::BankAccount
            } else {
                RefundDestination::OriginalPaymentMethod
            },
        }),
        bank_details: c.bank_details.as_ref().map(|b| BankDetails {
            account_owner: b.account_owner.clone(),
            iban: b.iban.clone(),
            bic: b.bic.clone(),
        }),
        for_user: c.for_user.clone(),
        tracking: c.tracking.as_ref().map(|t| Tracking {
            channel: if t.channel == "offline" {
                OrderChannel::Offline
            } else {
                OrderChannel::Online
            },
            session: t.session.clone(),
            cuid: t.cuid.clone(),
            offline_channel: t.offline_channel.clone(),
        }),
        parameters: submission
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}
