//! Who may cancel (SPEC §2.2): customers their own orders only, staff any
//! order, and only staff may act `forUser` (WebSphere seed: "only a person
//! with the authority to process orders can specify this parameter").

use super::cancellability::WebsiteSettings;
use super::order::Order;
use super::refusal::Refusal;

/// Who is asking, as the API key says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
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

impl Actor {
    /// Whether the actor has the authority to process orders: to cancel any
    /// order, act for another user and give any reason.
    pub fn is_staff(&self) -> bool {
        matches!(self, Actor::Admin | Actor::Service)
    }
}

/// Checks the actor against the order and the website, in this order:
/// 1. a customer's request for another customer's order is `OrderNotFound`
///    (existence does not leak);
/// 2. a customer acting `forUser` is `Forbidden`;
/// 3. a customer on a website whose `allowCancellationRequest` is off is
///    `CancellationNotAllowed` (InsiteCommerce seed). Staff are not subject
///    to the switch.
pub fn authorize(
    order: &Order,
    website: &WebsiteSettings,
    actor: &Actor,
    for_user: Option<&str>,
) -> Result<(), Refusal> {
    let Actor::Customer { customer_number } = actor else {
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
