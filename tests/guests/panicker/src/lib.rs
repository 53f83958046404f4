//! Test guest `panicker`: panics with
//! `plugin panicked on purpose: order <order number>`, which the host must
//! report in the attempt's outcome.

use rescind_guest::{Ack, Cancellation, IntegrationProcessor, SubmitError};

/// Panics on every call.
pub struct Panicker;

impl IntegrationProcessor for Panicker {
    fn submit_cancellation(cancellation: &Cancellation) -> Result<Ack, SubmitError> {
        panic!(
            "plugin panicked on purpose: order {}",
            cancellation.order_number
        )
    }
}

rescind_guest::register_integration_processor!(Panicker);

#[cfg(test)]
mod tests {
    use super::*;
    use rescind_guest::testing::{Connection, sample_cancellation};

    #[test]
    #[should_panic(expected = "plugin panicked on purpose: order 1001")]
    fn panics_naming_the_order() {
        let _ = Connection::new("http://127.0.0.1:9").submit::<Panicker>(&sample_cancellation());
    }
}
