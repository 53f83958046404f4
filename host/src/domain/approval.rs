//! The B2B order-approval request: a pending one is cancelled with the order
//! (SPEC §2.5, WebSphere seed: "If there is a pending order approve request
//! for a B2B buyer, this URL cancels it").
//!
//! Rule choice: only a cancellation that leaves no active line cancels the
//! approval. After a partial cancellation the rest of the order still awaits
//! its approver, so the request stays pending. Approvals that are not pending
//! (approved, rejected, cancelled) are never touched.

/// An order-approval request of a B2B buyer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// Where the request stands.
    pub state: ApprovalState,
}

/// The states of an approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovalState {
    /// Awaiting the approver.
    Pending,
    /// The approver approved the order.
    Approved,
    /// The approver rejected it.
    Rejected,
    /// Cancelled, with its order.
    Cancelled,
}

/// Whether a cancellation cancels the approval: only a full one, and only of
/// a pending request.
pub fn cancels_approval(approval: Option<&Approval>, full: bool) -> bool {
    full && approval.is_some_and(|a| a.state == ApprovalState::Pending)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_pending_approval_is_cancelled_and_only_by_a_full_cancellation() {
        // WebSphere seed: "If there is a pending order approve request ... cancels it".
        use ApprovalState::*;
        let cases = [
            (Some(Pending), true, true),
            (Some(Pending), false, false),
            (Some(Approved), true, false),
            (Some(Rejected), true, false),
            (Some(Cancelled), true, false),
            (None, true, false),
        ];
        for (state, full, expected) in cases {
            let approval = state.map(|state| Approval { state });
            assert_eq!(
                cancels_approval(approval.as_ref(), full),
                expected,
                "{state:?} full={full}"
            );
        }
    }
}
