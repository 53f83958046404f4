//! The cancel use case: what a cancellation decides and queues, between the
//! API that asks for it and the store that commits it.
//!
//! [`plan`] applies the cancel rules ([`crate::domain::plan_cancellation`])
//! to an order under the configuration, and makes the cancellation's record
//! and its outbox jobs. The store calls it inside its write transaction,
//! with the order and the configuration as that transaction reads them
//! (SQLite's group-commit writer and PostgreSQL's row-locked transaction
//! alike), through the [`Planner`] the API passes in
//! [`crate::store::CancelCommand`]; the store itself holds no cancel rule.

use std::collections::BTreeMap;

use time::Date;

use crate::domain::{
    self, CancelRequest, CancellationPlan, CancelledLineKind, JobDefinition, Order, Refusal,
    Requester,
};
use crate::store::{
    AllocationRecord, BankDetailsRecord, CancellationRecord, CancelledLineRecord, Committed,
    ConfigSnapshot, Planned, Planner, PrunedJobs, RefundRecord, TrackingRecord, WarningRecord,
    format_date, new_job,
};

/// The warning code of a cancellation that no job definition will tell
/// an ERP about: none is enabled, or none of the enabled ones applies to a
/// cancellation of this kind (a full one, when every definition applies to
/// partial ones only).
pub const NOT_COMMUNICATED_TO_ERP: &str = "not-communicated-to-erp";

/// The warning code of a partial cancellation that reaches no ERP because
/// every enabled job definition applies to full cancellations only (the
/// ERPs behind them cancel whole orders): they hear of the order when a
/// cancellation ends it.
pub const PARTIAL_NOT_COMMUNICATED_TO_ERP: &str = "partial-not-communicated-to-erp";

/// The [`Planner`] of every cancellation the API commits.
pub const PLANNER: Planner = plan;

/// Plans a cancellation of `order` under `config`: the cancel rules'
/// verdict, the record, and a job for every enabled definition that applies
/// to it, with the order's number as its `OrderNumber` parameter. No I/O
/// but the clock and the ids: the store reads the order and the
/// configuration inside its transaction and writes what this answers (a
/// [`Planner`]).
pub fn plan(
    config: &ConfigSnapshot,
    order: &Order,
    actor: &Requester,
    request: &CancelRequest,
    today: Date,
    now: i64,
) -> Result<Planned, Refusal> {
    // An unconfigured website keeps the InsiteCommerce default: off.
    let website = config
        .websites
        .get(&order.website)
        .copied()
        .unwrap_or_default();
    let plan = domain::plan_cancellation(order, &config.settings, &website, actor, request, today)?;
    let after = plan.apply(order);
    // Only the definitions that apply to this cancellation make a job: a
    // partial one never reaches a whole-order ERP bound as "full".
    let applicable: Vec<&JobDefinition> = config
        .definitions
        .iter()
        .filter(|definition| definition.applies_to.applies(plan.full))
        .collect();
    let record = cancellation_record(order, &plan, now, &config.definitions, applicable.len());
    let jobs = applicable
        .into_iter()
        .map(|definition| {
            let mut parameters: BTreeMap<String, String> = definition
                .parameters
                .iter()
                .map(|p| (p.name.clone(), p.default_value.clone()))
                .collect();
            parameters.insert("OrderNumber".to_owned(), order.number.clone());
            new_job(definition, &order.number, Some(&record.id), parameters, now)
        })
        .collect();
    Ok(Planned {
        after,
        committed: Committed {
            record,
            jobs,
            pruned: PrunedJobs::default(),
        },
    })
}

/// The cancellation's record as it is stored and answered. `enabled` are
/// the enabled job definitions, `jobs_made` how many of them apply to this
/// cancellation and made a job.
fn cancellation_record(
    order: &Order,
    plan: &CancellationPlan,
    now: i64,
    enabled: &[JobDefinition],
    jobs_made: usize,
) -> CancellationRecord {
    let mut warnings: Vec<WarningRecord> = plan
        .warnings
        .iter()
        .map(|w| WarningRecord {
            code: w.code.to_owned(),
            message: w.message.clone(),
        })
        .collect();
    warnings.extend(unsent_warning(plan.full, enabled, jobs_made));
    let lines = order
        .lines
        .iter()
        .filter(|l| plan.cancelled_lines.contains(&l.number))
        .map(|l| CancelledLineRecord {
            line_number: l.number,
            sku: l.sku.clone(),
            quantity: l.quantity,
            kind: CancelledLineKind::from(&l.kind),
            amount_minor: l.amount_minor,
            tax_minor: l.tax_minor,
            parent_line: l.parent_line,
            erp_line_ref: l.erp_line_ref.clone(),
        })
        .collect();
    CancellationRecord {
        // Time-ordered (v7), so that the id indexes of the cancellations and
        // jobs tables grow at their end instead of dirtying a random page
        // per insert.
        id: uuid::Uuid::now_v7().to_string(),
        order_number: order.number.clone(),
        created_at_ms: now,
        full: plan.full,
        cancelled_lines: plan.cancelled_lines.clone(),
        order_status: plan.new_order_status.clone(),
        voided_minor: plan.voided_minor,
        refund: plan.refund.as_ref().map(|r| RefundRecord {
            amount_minor: r.amount_minor,
            currency: r.currency.as_str().to_owned(),
            to: r.to,
        }),
        released_allocations: plan
            .released_allocations
            .iter()
            .map(|a| AllocationRecord {
                line_number: a.line_number,
                warehouse: a.warehouse.clone(),
                quantity: a.quantity,
                kind: a.kind,
            })
            .collect(),
        approval_cancelled: plan.approval_cancelled,
        warnings,
        erp_configured: jobs_made > 0,
        reason: plan.reason,
        date: format_date(plan.date),
        invoice_reference: plan.invoice_reference.clone(),
        bank_details: plan.bank_details.as_ref().map(|b| BankDetailsRecord {
            account_owner: b.account_owner.clone(),
            iban: b.iban.clone(),
            bic: b.bic.clone(),
        }),
        forced_cancel: plan.forced_cancel,
        forced_cancel_with_refund: plan.forced_cancel_with_refund,
        for_user: plan.for_user.clone(),
        erp_order_number: order.erp_order_number.clone(),
        business_code: order.business_code.clone(),
        customer_number: order.customer_number.clone(),
        website: order.website.clone(),
        order_date: format_date(order.order_date),
        currency: order.currency.as_str().to_owned(),
        all_line_numbers: order.lines.iter().map(|l| l.number).collect(),
        lines,
        tracking: order.tracking.as_ref().map(|t| TrackingRecord {
            channel: t.channel,
            session: t.session.clone(),
            cuid: t.cuid.clone(),
            offline_channel: t.offline_channel.clone(),
        }),
    }
}

/// The warning of a cancellation that made no job, saying why no ERP will
/// hear of it; `None` when a job was made.
fn unsent_warning(
    full: bool,
    enabled: &[JobDefinition],
    jobs_made: usize,
) -> Option<WarningRecord> {
    if jobs_made > 0 {
        return None;
    }
    let names = || {
        enabled
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (code, message) = if enabled.is_empty() {
        (
            NOT_COMMUNICATED_TO_ERP,
            "no enabled job definition: this cancellation was committed here but not \
             communicated to the ERP"
                .to_owned(),
        )
    } else if full {
        (
            NOT_COMMUNICATED_TO_ERP,
            format!(
                "no enabled job definition applies to full cancellations ({} apply to partial \
                 ones only): this cancellation was committed here but not communicated to the ERP",
                names()
            ),
        )
    } else {
        (
            PARTIAL_NOT_COMMUNICATED_TO_ERP,
            format!(
                "every enabled job definition ({}) applies to full cancellations only: this \
                 partial cancellation was committed here but not communicated to any ERP, which \
                 hears of the order when a cancellation ends it",
                names()
            ),
        )
    };
    Some(WarningRecord {
        code: code.to_owned(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AppliesTo, RetryPolicy};

    fn definition(name: &str, applies_to: AppliesTo) -> JobDefinition {
        JobDefinition {
            name: name.to_owned(),
            job_type: "Execution".to_owned(),
            connection: "erp".to_owned(),
            preprocessor: None,
            integration_processor: "webhook".to_owned(),
            post_processor: None,
            parameters: Vec::new(),
            retry: RetryPolicy::default(),
            enabled: true,
            applies_to,
        }
    }

    #[test]
    fn a_cancellation_that_made_no_job_says_why() {
        let full_only = [definition("OrderCancel", AppliesTo::Full)];
        let partial_only = [definition("LineCancel", AppliesTo::Partial)];
        // (full, enabled definitions, jobs made, expected warning code)
        let table: [(bool, &[JobDefinition], usize, Option<&str>); 6] = [
            (true, &[], 0, Some(NOT_COMMUNICATED_TO_ERP)),
            (false, &[], 0, Some(NOT_COMMUNICATED_TO_ERP)),
            (false, &full_only, 0, Some(PARTIAL_NOT_COMMUNICATED_TO_ERP)),
            (true, &partial_only, 0, Some(NOT_COMMUNICATED_TO_ERP)),
            (true, &full_only, 1, None),
            (false, &partial_only, 1, None),
        ];
        for (full, enabled, jobs_made, expected) in table {
            let warning = unsent_warning(full, enabled, jobs_made);
            assert_eq!(
                warning.as_ref().map(|w| w.code.as_str()),
                expected,
                "full {full}, {} enabled, {jobs_made} made",
                enabled.len()
            );
            if let Some(warning) = warning {
                for d in enabled {
                    assert!(warning.message.contains(&d.name), "{}", warning.message);
                }
            }
        }
    }
}
