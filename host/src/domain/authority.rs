//! Who may cancel (SPEC §2.2): customers their own orders only, staff any
//! order, and only staff may act `forUser` (WebSphere seed: "only a person
//! with the authority to process orders can specify this parameter").

use super::cancellability::WebsiteSettings;
use super::order::Order;
use super::refusal::Refusal;

/// Who asks for a cancellation, with the authority the request's API key
/// gives: the party the cancel rules judge. (The HTTP caller is the API's
/// `Caller`; who made an admin write is the audit log's `AuditActor`; what a
/// key may do at all is the store's `Role`.)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Requester {
    /// An operator: may do everything.
    Admin,
    /// Customer service or an integration: cancels any order.
    Service,
    /// A customer, bound to one customer number: own orders only.
    Customer {
        /// The customer number the key is bound to.
        customer_number: String,
    },
}

impl Requester {
    /// Whether the requester has the authority to process orders: to cancel any
    /// order, act for another user and give any reason.
    pub fn is_staff(&self) -> bool {
        matches!(self, Requester::Admin | Requester::Service)
    }
}

/// Checks the requester against the order and the website, in this order:
/// 1. a customer's request for another customer's order is `OrderNotFound`
///    (existence does not leak);
/// 2. a customer acting `forUser` is `Forbidden`;
/// 3. a customer on a website whose `allowCancellationRequest` is off is
///    `CancellationNotAllowed` (InsiteCommerce seed). Staff are not subject
///    to the switch.
pub fn authorize(
    order: &Order,
    website: &WebsiteSettings,
    actor: &Requester,
    for_user: Option<&str>,
) -> Result<(), Refusal> {
    let Requester::Customer { customer_number } = actor else {
        return Ok(());
    };
    if *customer_number != order.customer_number {
        return Err(Refusal::OrderNotFound);
    }
    if for_user.is_some() {
        return Err(Refusal::Forbidden);
    }
    if !website.allow_cancellation_request {
        return Err(Refusal::CancellationNotAllowed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::api_order;

    #[test]
    fn authority_table() {
        // SPEC §2.2 (customers: own orders, 404 otherwise), WebSphere seed (forUser needs the
        // authority to process orders), InsiteCommerce seed (AllowCancellationRequest).
        let order = api_order();
        let owner = Requester::Customer {
            customer_number: "C-1".into(),
        };
        let stranger = Requester::Customer {
            customer_number: "C-2".into(),
        };
        let open = WebsiteSettings {
            allow_cancellation_request: true,
        };
        let closed = WebsiteSettings::default();
        type Case<'a> = (
            &'a Requester,
            WebsiteSettings,
            Option<&'a str>,
            Result<(), Refusal>,
        );
        let cases: Vec<Case<'_>> = vec![
            (&owner, open, None, Ok(())),
            (&owner, closed, None, Err(Refusal::CancellationNotAllowed)),
            (&owner, open, Some("C-1"), Err(Refusal::Forbidden)),
            (&owner, closed, Some("someone"), Err(Refusal::Forbidden)),
            (&stranger, open, None, Err(Refusal::OrderNotFound)),
            (&stranger, closed, Some("C-1"), Err(Refusal::OrderNotFound)),
            (
                &Requester::Service,
                closed,
                Some("buyer@example.com"),
                Ok(()),
            ),
            (&Requester::Admin, closed, None, Ok(())),
            (&Requester::Service, open, None, Ok(())),
        ];
        for (actor, website, for_user, expected) in cases {
            assert_eq!(
                authorize(&order, &website, actor, for_user),
                expected,
                "{actor:?} {website:?} {for_user:?}"
            );
        }
        assert!(Requester::Admin.is_staff() && Requester::Service.is_staff() && !owner.is_staff());
    }
}
