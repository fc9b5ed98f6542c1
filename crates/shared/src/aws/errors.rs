//! One mapping from AWS errors to [`ErrorKind`], shared by every adapter: the error code decides
//! first, the HTTP status second. The message keeps the service's code and words.

use crate::error::{ErrorKind, PortError};
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// Classifies an AWS error code (and the HTTP status when the code is not one we know).
pub fn classify(code: &str, status: Option<u16>) -> ErrorKind {
    match code {
        "ThrottlingException"
        | "Throttling"
        | "ThrottledException"
        | "ProvisionedThroughputExceededException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException"
        | "RequestThrottledException"
        | "TooManyUpdates"
        | "LimitExceededException" => ErrorKind::Throttled,
        // Quotas that free up over time: SSM's concurrent automations, OpsCenter's monthly
        // OpsItems. Not invalid requests.
        "AutomationExecutionLimitExceededException" | "OpsItemLimitExceededException" => {
            ErrorKind::LimitExceeded
        }
        "IdempotentParameterMismatch" => ErrorKind::Conflict,
        "SubscriptionRequiredException" => ErrorKind::SubscriptionRequired,
        "AccessDeniedException"
        | "AccessDenied"
        | "UnauthorizedOperation"
        | "UnrecognizedClientException" => ErrorKind::AccessDenied,
        "ResourceNotFoundException"
        | "OpsItemNotFoundException"
        | "AutomationExecutionNotFoundException"
        | "AutomationDefinitionNotFoundException"
        | "AutomationDefinitionVersionNotFoundException"
        | "InvalidDocument"
        | "InvalidResourceId" => ErrorKind::NotFound,
        // Transient on the caller's side: an expired session token is refreshed on retry.
        "RequestTimeout" | "RequestTimeoutException" => ErrorKind::Timeout,
        "ExpiredTokenException" | "ExpiredToken" => ErrorKind::Unavailable,
        "InternalServerError"
        | "InternalServerErrorException"
        | "InternalError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "ServiceUnavailableException" => ErrorKind::Unavailable,
        _ => match status {
            Some(429) => ErrorKind::Throttled,
            Some(status) if status >= 500 => ErrorKind::Unavailable,
            _ => ErrorKind::Invalid,
        },
    }
}

/// Maps any SDK error of any AWS service onto a [`PortError`].
pub fn port_error<E>(operation: &'static str, error: &SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let context = crate::error::error_chain(error);
    match error {
        SdkError::TimeoutError(_) => PortError::new(operation, ErrorKind::Timeout, context),
        SdkError::DispatchFailure(failure) if failure.is_timeout() => {
            PortError::new(operation, ErrorKind::Timeout, context)
        }
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            PortError::new(operation, ErrorKind::Unavailable, context)
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown");
            let status = service.raw().status().as_u16();
            let message = service.err().message().unwrap_or("no message");
            PortError::new(
                operation,
                classify(code, Some(status)),
                format!("{code}: {message}"),
            )
        }
        _ => PortError::new(operation, ErrorKind::Invalid, context),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_decide_before_statuses() {
        assert_eq!(
            classify("ThrottlingException", Some(400)),
            ErrorKind::Throttled
        );
        assert_eq!(
            classify("ProvisionedThroughputExceededException", Some(400)),
            ErrorKind::Throttled
        );
        assert_eq!(
            classify("AutomationExecutionLimitExceededException", Some(400)),
            ErrorKind::LimitExceeded
        );
        assert_eq!(
            classify("OpsItemLimitExceededException", Some(400)),
            ErrorKind::LimitExceeded
        );
        assert_eq!(
            classify("IdempotentParameterMismatch", Some(400)),
            ErrorKind::Conflict
        );
        assert_eq!(
            classify("AccessDeniedException", Some(400)),
            ErrorKind::AccessDenied
        );
        assert_eq!(classify("InvalidDocument", Some(400)), ErrorKind::NotFound);
        assert_eq!(
            classify("ValidationException", Some(400)),
            ErrorKind::Invalid
        );
        assert_eq!(classify("SomethingNew", Some(503)), ErrorKind::Unavailable);
        assert_eq!(classify("SomethingNew", Some(429)), ErrorKind::Throttled);
        assert!(classify("InternalServerError", Some(500)).is_retryable());
        assert!(classify("RequestTimeout", Some(400)).is_retryable());
        assert!(classify("ExpiredTokenException", Some(400)).is_retryable());
    }
}
