//! Test guest `trivial`: accepts every cancellation with the reference
//! `trivial`, without a single host call. The dispatch benchmark uses it to
//! measure what the host adds around a call.

use rescind_guest::{Ack, Cancellation, IntegrationProcessor, SubmitError};

/// Accepts at once.
pub struct Trivial;

impl IntegrationProcessor for Trivial {
    fn submit_cancellation(_cancellation: &Cancellation) -> Result<Ack, SubmitError> {
        Ok(Ack {
            erp_reference: Some("trivial".into()),
            message: None,
        })
    }
}

rescind_guest::register_integration_processor!(Trivial);

#[cfg(test)]
mod tests {
    use super::*;
    use rescind_guest::testing::{Connection, sample_cancellation};

    #[test]
    fn accepts_without_touching_the_host() {
        let connection = Connection::new("http://127.0.0.1:9");
        let ack = connection
            .submit::<Trivial>(&sample_cancellation())
            .unwrap();
        assert_eq!(ack.erp_reference.as_deref(), Some("trivial"));
        assert!(connection.requests().is_empty());
        assert!(connection.logs().is_empty());
    }
}
