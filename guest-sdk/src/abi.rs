//! The component ABI: the generated bindings, their conversion to the public
//! types, and the adapter that `register_integration_processor!` exports.
//! Public only through `__private`, for the macro; not part of the API.

use std::marker::PhantomData;

use crate::{
    Ack, BankDetails, Cancellation, CancellationReason, CancelledLine, Channel,
    IntegrationProcessor, LineKind, Money, Refund, RefundDestination, SubmitError, Tracking,
};

/// Bindings generated from `wit/v0.1.0` (world `integration-processor`).
#[allow(missing_docs, unsafe_op_in_unsafe_fn, rust_2018_idioms)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/v0.1.0",
        world: "integration-processor",
        pub_export_macro: true,
        export_macro_name: "export_processor",
    });
}

use bindings::exports::rescind::erp::processor::Guest;
use bindings::rescind::erp::types as wit;

/// The stamp `register_integration_processor!` puts in the `rescind:sdk`
/// custom section: which SDK built the plugin and which WIT package it speaks.
/// The host reads it to refuse a plugin it cannot serve.
pub const STAMP_TEXT: &str = concat!(
    "sdk=",
    env!("CARGO_PKG_VERSION"),
    "\nwit=",
    wit_package!(),
    "\n"
);

/// The stamp's length, for the array type of the section's static.
pub const STAMP_LEN: usize = STAMP_TEXT.len();

/// The stamp as the fixed-size array a `#[link_section]` static needs.
pub const STAMP: [u8; STAMP_LEN] = {
    let text = STAMP_TEXT.as_bytes();
    let mut out = [0u8; STAMP_LEN];
    let mut i = 0;
    while i < STAMP_LEN {
        out[i] = text[i];
        i += 1;
    }
    out
};

/// Implements the exported WIT interface for any [`IntegrationProcessor`]:
/// converts the generated types to the public ones and back.
pub struct Export<P>(PhantomData<P>);

impl<P: IntegrationProcessor> Guest for Export<P> {
    fn submit_cancellation(cancellation: wit::Cancellation) -> Result<wit::Ack, wit::SubmitError> {
        let cancellation = Cancellation::from(cancellation);
        P::submit_cancellation(&cancellation)
            .map(wit::Ack::from)
            .map_err(wit::SubmitError::from)
    }
}

impl From<wit::Cancellation> for Cancellation {
    fn from(c: wit::Cancellation) -> Self {
        Cancellation {
            request_id: c.request_id,
            attempt: c.attempt,
            order_number: c.order_number,
            erp_order_number: c.erp_order_number,
            business_code: c.business_code,
            customer_number: c.customer_number,
            website: c.website,
            order_date: c.order_date,
            full: c.full,
            lines: c.lines.into_iter().map(CancelledLine::from).collect(),
            all_line_numbers: c.all_line_numbers,
            reason: c.reason.into(),
            date: c.date,
            invoice_reference: c.invoice_reference,
            forced_cancel: c.forced_cancel,
            forced_cancel_with_refund: c.forced_cancel_with_refund,
            refund: c.refund.map(Refund::from),
            bank_details: c.bank_details.map(BankDetails::from),
            for_user: c.for_user,
            tracking: c.tracking.map(Tracking::from),
            parameters: c.parameters,
        }
    }
}

impl From<wit::CancelledLine> for CancelledLine {
    fn from(line: wit::CancelledLine) -> Self {
        CancelledLine {
            line_number: line.line_number,
            sku: line.sku,
            quantity: line.quantity,
            kind: match line.kind {
                wit::LineKind::Product => LineKind::Product,
                wit::LineKind::Discount => LineKind::Discount,
            },
            amount: line.amount.into(),
            tax: line.tax.into(),
            parent_line: line.parent_line,
            erp_line_ref: line.erp_line_ref,
        }
    }
}

impl From<wit::Money> for Money {
    fn from(money: wit::Money) -> Self {
        Money {
            amount_minor: money.amount_minor,
            currency: money.currency,
        }
    }
}

impl From<wit::CancellationReason> for CancellationReason {
    fn from(reason: wit::CancellationReason) -> Self {
        match reason {
            wit::CancellationReason::OutOfStock => CancellationReason::OutOfStock,
            wit::CancellationReason::CustomerCancellation => {
                CancellationReason::CustomerCancellation
            }
            wit::CancellationReason::NoPayment => CancellationReason::NoPayment,
            wit::CancellationReason::CustomerService => CancellationReason::CustomerService,
        }
    }
}

impl From<wit::Refund> for Refund {
    fn from(refund: wit::Refund) -> Self {
        Refund {
            amount: refund.amount.into(),
            to: match refund.to {
                wit::RefundDestination::OriginalPaymentMethod => {
                    RefundDestination::OriginalPaymentMethod
                }
                wit::RefundDestination::BankAccount => RefundDestination::BankAccount,
            },
        }
    }
}

impl From<wit::BankDetails> for BankDetails {
    fn from(bank: wit::BankDetails) -> Self {
        BankDetails {
            account_owner: bank.account_owner,
            iban: bank.iban,
            bic: bank.bic,
        }
    }
}

impl From<wit::Tracking> for Tracking {
    fn from(tracking: wit::Tracking) -> Self {
        Tracking {
            channel: match tracking.channel {
                wit::OrderChannel::Online => Channel::Online,
                wit::OrderChannel::Offline => Channel::Offline,
            },
            session: tracking.session,
            cuid: tracking.cuid,
            offline_channel: tracking.offline_channel,
        }
    }
}

impl From<Ack> for wit::Ack {
    fn from(ack: Ack) -> Self {
        wit::Ack {
            erp_reference: ack.erp_reference,
            message: ack.message,
        }
    }
}

impl From<SubmitError> for wit::SubmitError {
    fn from(error: SubmitError) -> Self {
        match error {
            SubmitError::Rejected(message) => wit::SubmitError::Rejected(message),
            SubmitError::Transient(message) => wit::SubmitError::Transient(message),
            SubmitError::Misconfigured(message) => wit::SubmitError::Misconfigured(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_names_this_sdk_and_the_wit_package() {
        assert_eq!(
            std::str::from_utf8(&STAMP).unwrap(),
            format!("sdk={}\nwit=rescind:erp@0.1.0\n", crate::SDK_VERSION)
        );
    }

    #[test]
    fn the_wit_file_declares_the_package_we_stamp() {
        let wit = include_str!("../../wit/v0.1.0/rescind-erp.wit");
        assert!(
            wit.lines()
                .any(|line| line.trim() == format!("package {};", crate::WIT_PACKAGE)),
            "wit/v0.1.0 does not declare package {}",
            crate::WIT_PACKAGE
        );
    }

    struct Echo;
    impl IntegrationProcessor for Echo {
        fn submit_cancellation(c: &Cancellation) -> Result<Ack, SubmitError> {
            // Proves every field arrived: the test compares the debug form.
            match c.order_number.as_str() {
                "reject" => Err(SubmitError::rejected("no such order")),
                _ => Ok(Ack::with_reference(format!("{c:?}")).with_message("echo")),
            }
        }
    }

    fn wit_sample() -> wit::Cancellation {
        let eur = |amount_minor| wit::Money {
            amount_minor,
            currency: "EUR".into(),
        };
        wit::Cancellation {
            request_id: "req-1".into(),
            attempt: 2,
            order_number: "1001".into(),
            erp_order_number: Some("ERP-1".into()),
            business_code: "B1".into(),
            customer_number: "C-1".into(),
            website: "main".into(),
            order_date: "2024-09-01".into(),
            full: false,
            lines: vec![wit::CancelledLine {
                line_number: 3,
                sku: "PROMO".into(),
                quantity: 1,
                kind: wit::LineKind::Discount,
                amount: eur(-2000),
                tax: eur(-380),
                parent_line: Some(1),
                erp_line_ref: Some("L3".into()),
            }],
            all_line_numbers: vec![1, 2, 3],
            reason: wit::CancellationReason::NoPayment,
            date: "2024-09-09".into(),
            invoice_reference: Some("INV".into()),
            forced_cancel: true,
            forced_cancel_with_refund: true,
            refund: Some(wit::Refund {
                amount: eur(2380),
                to: wit::RefundDestination::BankAccount,
            }),
            bank_details: Some(wit::BankDetails {
                account_owner: "Max".into(),
                iban: "DE89370400440532013000".into(),
                bic: None,
            }),
            for_user: Some("buyer@example.com".into()),
            tracking: Some(wit::Tracking {
                channel: wit::OrderChannel::Offline,
                session: None,
                cuid: None,
                offline_channel: Some("store".into()),
            }),
            parameters: vec![("OrderNumber".into(), "1001".into())],
        }
    }

    #[test]
    fn the_adapter_converts_every_field_both_ways() {
        let ack = <Export<Echo> as Guest>::submit_cancellation(wit_sample()).unwrap();
        let expected = Cancellation {
            request_id: "req-1".into(),
            attempt: 2,
            order_number: "1001".into(),
            erp_order_number: Some("ERP-1".into()),
            business_code: "B1".into(),
            customer_number: "C-1".into(),
            website: "main".into(),
            order_date: "2024-09-01".into(),
            full: false,
            lines: vec![CancelledLine {
                line_number: 3,
                sku: "PROMO".into(),
                quantity: 1,
                kind: LineKind::Discount,
                amount: Money::new(-2000, "EUR"),
                tax: Money::new(-380, "EUR"),
                parent_line: Some(1),
                erp_line_ref: Some("L3".into()),
            }],
            all_line_numbers: vec![1, 2, 3],
            reason: CancellationReason::NoPayment,
            date: "2024-09-09".into(),
            invoice_reference: Some("INV".into()),
            forced_cancel: true,
            forced_cancel_with_refund: true,
            refund: Some(Refund {
                amount: Money::new(2380, "EUR"),
                to: RefundDestination::BankAccount,
            }),
            bank_details: Some(BankDetails {
                account_owner: "Max".into(),
                iban: "DE89370400440532013000".into(),
                bic: None,
            }),
            for_user: Some("buyer@example.com".into()),
            tracking: Some(Tracking {
                channel: Channel::Offline,
                session: None,
                cuid: None,
                offline_channel: Some("store".into()),
            }),
            parameters: vec![("OrderNumber".into(), "1001".into())],
        };
        assert_eq!(ack.erp_reference, Some(format!("{expected:?}")));
        assert_eq!(ack.message.as_deref(), Some("echo"));

        let rejected = <Export<Echo> as Guest>::submit_cancellation(wit::Cancellation {
            order_number: "reject".into(),
            ..wit_sample()
        });
        assert!(matches!(rejected, Err(wit::SubmitError::Rejected(m)) if m == "no such order"));
    }
}
