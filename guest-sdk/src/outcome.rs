//! What a plugin answers: an [`Ack`] when the ERP took the cancellation, a
//! [`SubmitError`] that tells the host what to do next when it did not.

/// The ERP accepted the cancellation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ack {
    /// The ERP's reference for the request (e.g. Accounting-as-a-Service
    /// `internalRequestId`); the host records it on the job.
    pub erp_reference: Option<String>,
    /// Anything worth keeping in the job's record.
    pub message: Option<String>,
}

impl Ack {
    /// Accepted, with no reference and no message.
    pub fn new() -> Self {
        Ack::default()
    }

    /// Accepted, with the ERP's reference for the request.
    pub fn with_reference(erp_reference: impl Into<String>) -> Self {
        Ack {
            erp_reference: Some(erp_reference.into()),
            message: None,
        }
    }

    /// Adds a message to keep in the job's record.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

/// Why a submission did not succeed. The variant decides what the host does
/// next, so pick it by what would fix the problem:
///
/// | variant | host does | typical cause |
/// |---|---|---|
/// | [`Rejected`](SubmitError::Rejected) | fails the job, no retry | the ERP answered 4xx with its reason |
/// | [`Transient`](SubmitError::Transient) | retries with backoff | timeout, connection refused, 408, 429, 5xx |
/// | [`Misconfigured`](SubmitError::Misconfigured) | fails the job, no retry | a setting or secret is missing or wrong |
///
/// `?` converts [`http::Error`](crate::http::Error) into the right variant, and
/// [`SubmitError::from_response`] classifies an ERP answer; every plugin shares
/// that mapping.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The ERP refused the cancellation for good: the job fails at once and is
    /// not retried. Carries the ERP's own message.
    #[error("rejected by the ERP: {0}")]
    Rejected(String),
    /// A passing failure: the host retries with exponential backoff up to the
    /// job's maximum.
    #[error("transient failure: {0}")]
    Transient(String),
    /// The connection lacks a setting or secret, or one is invalid: the job
    /// fails at once; the message names what to fix.
    #[error("misconfigured: {0}")]
    Misconfigured(String),
}

impl SubmitError {
    /// The ERP refused the cancellation for good.
    pub fn rejected(message: impl Into<String>) -> Self {
        SubmitError::Rejected(message.into())
    }

    /// A passing failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        SubmitError::Transient(message.into())
    }

    /// The connection needs fixing; say what and where.
    pub fn misconfigured(message: impl Into<String>) -> Self {
        SubmitError::Misconfigured(message.into())
    }

    /// The message without the variant's prefix.
    pub fn message(&self) -> &str {
        match self {
            SubmitError::Rejected(message)
            | SubmitError::Transient(message)
            | SubmitError::Misconfigured(message) => message,
        }
    }

    /// True when the host will retry.
    pub fn is_transient(&self) -> bool {
        matches!(self, SubmitError::Transient(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_pick_the_variant_and_keep_the_message() {
        assert_eq!(
            SubmitError::rejected("no"),
            SubmitError::Rejected("no".into())
        );
        assert!(SubmitError::transient("later").is_transient());
        let error = SubmitError::misconfigured("secret `apiToken` is missing");
        assert_eq!(error.message(), "secret `apiToken` is missing");
        assert_eq!(
            error.to_string(),
            "misconfigured: secret `apiToken` is missing"
        );
    }

    #[test]
    fn ack_builders() {
        let ack = Ack::with_reference("R-1").with_message("ok");
        assert_eq!(ack.erp_reference.as_deref(), Some("R-1"));
        assert_eq!(ack.message.as_deref(), Some("ok"));
        assert_eq!(Ack::new(), Ack::default());
    }
}
