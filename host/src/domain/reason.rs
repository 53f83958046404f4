//! Cancellation reasons (SPEC §2.5, AaaS seed): the four codes; a customer's
//! own request may only use `CUSTOMER_CANCELLATION`, which is also its
//! default; staff must give one.

use std::fmt;

use super::authority::Requester;
use super::refusal::Refusal;

/// Why an order is cancelled, for the ERP's reporting (AaaS seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CancellationReason {
    /// Items are unavailable in the warehouse.
    OutOfStock,
    /// The customer asked to cancel before shipment.
    CustomerCancellation,
    /// A prepaid order was not paid in time.
    NoPayment,
    /// Customer service cancelled it for another reason.
    CustomerService,
}

impl CancellationReason {
    /// Every reason, in the seed's order.
    pub const ALL: [CancellationReason; 4] = [
        CancellationReason::OutOfStock,
        CancellationReason::CustomerCancellation,
        CancellationReason::NoPayment,
        CancellationReason::CustomerService,
    ];

    /// The wire code, e.g. `OUT_OF_STOCK`.
    pub fn code(self) -> &'static str {
        match self {
            CancellationReason::OutOfStock => "OUT_OF_STOCK",
            CancellationReason::CustomerCancellation => "CUSTOMER_CANCELLATION",
            CancellationReason::NoPayment => "NO_PAYMENT",
            CancellationReason::CustomerService => "CUSTOMER_SERVICE",
        }
    }

    /// The reason whose code is exactly `code` (codes are case-sensitive, as
    /// the ERP receives them verbatim).
    pub fn parse(code: &str) -> Option<CancellationReason> {
        CancellationReason::ALL
            .into_iter()
            .find(|r| r.code() == code)
    }
}

impl fmt::Display for CancellationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The reason a request ends up with:
/// - an unknown code is `InvalidReason`, whoever sends it;
/// - a customer gets `CUSTOMER_CANCELLATION` by default, and any other known
///   code is `ReasonNotAllowed`;
/// - staff must give a code: none is `InvalidReason`.
pub fn resolve_reason(actor: &Requester, raw: Option<&str>) -> Result<CancellationReason, Refusal> {
    let parsed = match raw {
        None => None,
        Some(code) => {
            Some(
                CancellationReason::parse(code).ok_or_else(|| Refusal::InvalidReason {
                    reason: Some(code.to_owned()),
                })?,
            )
        }
    };
    match (actor.is_staff(), parsed) {
        (true, Some(reason)) => Ok(reason),
        (true, None) => Err(Refusal::InvalidReason { reason: None }),
        (false, None | Some(CancellationReason::CustomerCancellation)) => {
            Ok(CancellationReason::CustomerCancellation)
        }
        (false, Some(other)) => Err(Refusal::ReasonNotAllowed {
            reason: other.code().to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        // AaaS seed: "OUT_OF_STOCK CUSTOMER_CANCELLATION NO_PAYMENT CUSTOMER_SERVICE".
        for reason in CancellationReason::ALL {
            assert_eq!(CancellationReason::parse(reason.code()), Some(reason));
        }
        assert_eq!(CancellationReason::parse("out_of_stock"), None);
    }

    #[test]
    fn reason_table() {
        // AaaS seed: four reasons; SPEC §2.5: customers only CUSTOMER_CANCELLATION, staff must give one.
        use CancellationReason::*;
        let customer = Requester::Customer {
            customer_number: "C-1".into(),
        };
        let invalid = |r: Option<&str>| {
            Err(Refusal::InvalidReason {
                reason: r.map(str::to_owned),
            })
        };
        let not_allowed = |r: &str| {
            Err(Refusal::ReasonNotAllowed {
                reason: r.to_owned(),
            })
        };
        let cases: Vec<(
            &Requester,
            Option<&str>,
            Result<CancellationReason, Refusal>,
        )> = vec![
            (&customer, None, Ok(CustomerCancellation)),
            (
                &customer,
                Some("CUSTOMER_CANCELLATION"),
                Ok(CustomerCancellation),
            ),
            (&customer, Some("OUT_OF_STOCK"), not_allowed("OUT_OF_STOCK")),
            (&customer, Some("NO_PAYMENT"), not_allowed("NO_PAYMENT")),
            (
                &customer,
                Some("CUSTOMER_SERVICE"),
                not_allowed("CUSTOMER_SERVICE"),
            ),
            (&customer, Some("BORED"), invalid(Some("BORED"))),
            (&Requester::Service, None, invalid(None)),
            (&Requester::Admin, None, invalid(None)),
            (&Requester::Service, Some("OUT_OF_STOCK"), Ok(OutOfStock)),
            (&Requester::Admin, Some("NO_PAYMENT"), Ok(NoPayment)),
            (
                &Requester::Service,
                Some("CUSTOMER_CANCELLATION"),
                Ok(CustomerCancellation),
            ),
            (
                &Requester::Service,
                Some("CUSTOMER_SERVICE"),
                Ok(CustomerService),
            ),
            (&Requester::Service, Some(""), invalid(Some(""))),
            (
                &Requester::Service,
                Some("out_of_stock"),
                invalid(Some("out_of_stock")),
            ),
        ];
        for (actor, raw, expected) in cases {
            assert_eq!(resolve_reason(actor, raw), expected, "{actor:?} {raw:?}");
        }
    }
}
