//! Which runbook failures will fail again the same way. Such a failure escalates the episode at
//! once, with the reason on its OpsItem, instead of using up the attempt cap on retries that
//! cannot succeed; a passing one (throttling, a timeout, an internal error) is retried after the
//! cool-down as before.
//!
//! SSM says why a step failed in `StepExecutions[].FailureDetails.FailureType` (Action,
//! Permission, Throttling, Verification, Internal: the GetAutomationExecution reference) and in
//! its message; the start itself can be refused for good (access denied, an unknown document, a
//! parameter it rejects).

use super::REFUSED;

/// Why a failed outcome will fail again the same way, if it will.
pub fn will_fail_again(
    status: &str,
    failure_type: Option<&str>,
    message: Option<&str>,
) -> Option<&'static str> {
    if status == REFUSED {
        return Some("SSM refused the start for good");
    }
    let message = message.unwrap_or_default();
    let says = |needles: &[&str]| needles.iter().any(|needle| message.contains(needle));
    // A passing failure first: a throttled or timed-out step may well succeed next time.
    if matches!(failure_type, Some("Throttling" | "Internal"))
        || says(&[
            "Throttling",
            "ThrottlingException",
            "RequestLimitExceeded",
            "Rate exceeded",
            "TooManyRequests",
            "InternalError",
            "InternalFailure",
            "ServiceUnavailable",
            "timed out",
        ])
    {
        return None;
    }
    if failure_type == Some("Permission")
        || says(&[
            "AccessDenied",
            "is not authorized to perform",
            "UnauthorizedOperation",
            "not authorized",
        ])
    {
        return Some("the automation role may not do what the runbook needs");
    }
    if says(&[
        "InvalidAutomationExecutionParametersException",
        "InvalidParameter",
        "ValidationException",
        "failed to satisfy constraint",
        "does not match the allowed pattern",
    ]) {
        return Some("the runbook rejects a parameter the mapping gives it");
    }
    if failure_type == Some("Verification")
        || says(&[
            "InvalidPermission.NotFound",
            "InvalidGroup.NotFound",
            "NoSuchBucket",
            ".NotFound",
            "does not exist",
        ])
    {
        return Some("the runbook cannot apply to this resource as it is");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages as SSM and the services it calls write them (GetAutomationExecution's
    /// FailureMessage: "Step fails when it is …").
    #[test]
    fn failures_that_repeat_are_told_from_those_that_pass() {
        let permanent = [
            (
                "Failed",
                Some("Action"),
                "Step fails when it is Executing. Fail reason: An error occurred (InvalidPermission.NotFound) when calling the RevokeSecurityGroupIngress operation: The specified rule does not exist in this security group.",
            ),
            (
                "Failed",
                Some("Permission"),
                "Step fails when it is Executing. Fail reason: An error occurred (UnauthorizedOperation) when calling the RevokeSecurityGroupIngress operation: You are not authorized to perform this operation.",
            ),
            (
                "Failed",
                None,
                "User: arn:aws:sts::123456789012:assumed-role/TaremAutomation/x is not authorized to perform: s3:PutBucketVersioning",
            ),
            (
                "Failed",
                Some("Verification"),
                "Step fails when it is Verifying. The group is not named default.",
            ),
            (
                "Failed",
                None,
                "InvalidAutomationExecutionParametersException: Parameter \"GroupId\" value \"sg-1 (vpc-2)\" does not match the allowed pattern",
            ),
            (REFUSED, None, "AutomationDefinitionNotFoundException"),
        ];
        for (status, kind, message) in permanent {
            assert!(
                will_fail_again(status, kind, Some(message)).is_some(),
                "{message}"
            );
        }
        let passing = [
            ("TimedOut", None, "Step timed out while step is verifying."),
            (
                "Failed",
                Some("Throttling"),
                "Step fails when it is Executing. Fail reason: Rate exceeded",
            ),
            (
                "Failed",
                None,
                "An error occurred (RequestLimitExceeded) when calling the DescribeSecurityGroups operation",
            ),
            ("Failed", Some("Internal"), "Internal server error"),
            ("Cancelled", None, ""),
            (
                "Failed",
                None,
                "Step failed for a reason tarem does not know",
            ),
        ];
        for (status, kind, message) in passing {
            assert_eq!(
                will_fail_again(status, kind, Some(message)),
                None,
                "{message}"
            );
        }
    }
}
