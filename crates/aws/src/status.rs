//! What a CloudFormation stack status means for Berth.

/// The phase of a stack, grouped by what Berth does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// An operation runs: wait.
    InProgress,
    /// A CREATE change set exists but was never executed; the stack has no resources.
    Review,
    /// Usable and the last operation succeeded.
    Stable,
    /// Usable, but the last update failed and was rolled back.
    UpdateRolledBack,
    /// The first create failed: the stack holds nothing and must be deleted to retry.
    FailedCreate,
    /// Needs a person (rollback or delete failed).
    NeedsAttention,
    /// Deleted.
    Deleted,
}

pub fn phase(status: &str) -> Phase {
    match status {
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE" => Phase::Stable,
        "UPDATE_ROLLBACK_COMPLETE" | "IMPORT_ROLLBACK_COMPLETE" => Phase::UpdateRolledBack,
        "ROLLBACK_COMPLETE" | "ROLLBACK_FAILED" | "CREATE_FAILED" => Phase::FailedCreate,
        "REVIEW_IN_PROGRESS" => Phase::Review,
        "DELETE_COMPLETE" => Phase::Deleted,
        s if s.ends_with("_IN_PROGRESS") => Phase::InProgress,
        // UPDATE_ROLLBACK_FAILED, DELETE_FAILED, UPDATE_FAILED, IMPORT_ROLLBACK_FAILED and
        // anything CloudFormation adds later.
        _ => Phase::NeedsAttention,
    }
}

/// What a person should do about a stack in [`Phase::NeedsAttention`].
pub fn attention_hint(status: &str) -> &'static str {
    match status {
        "UPDATE_ROLLBACK_FAILED" => {
            "fix the cause named in the stack events, then continue the update rollback \
             (ContinueUpdateRollback) and re-run the step"
        }
        "DELETE_FAILED" => {
            "remove the resources named in the stack events by hand, then delete the stack again"
        }
        _ => "inspect the stack events in the AWS console",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_phases() {
        assert_eq!(phase("CREATE_IN_PROGRESS"), Phase::InProgress);
        assert_eq!(
            phase("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
            Phase::InProgress
        );
        assert_eq!(phase("UPDATE_ROLLBACK_IN_PROGRESS"), Phase::InProgress);
        assert_eq!(phase("UPDATE_ROLLBACK_COMPLETE"), Phase::UpdateRolledBack);
        assert_eq!(phase("ROLLBACK_COMPLETE"), Phase::FailedCreate);
        assert_eq!(phase("UPDATE_ROLLBACK_FAILED"), Phase::NeedsAttention);
        assert_eq!(phase("DELETE_FAILED"), Phase::NeedsAttention);
        assert_eq!(phase("REVIEW_IN_PROGRESS"), Phase::Review);
        assert_eq!(phase("UPDATE_COMPLETE"), Phase::Stable);
        assert_eq!(phase("SOMETHING_NEW"), Phase::NeedsAttention);
    }
}
