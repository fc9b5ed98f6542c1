//! What can go wrong with a `tarem` command, and the one place that turns it into an exit code.

use tarem_shared::error::{ErrorKind, PortError};

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line or a file it names is wrong: nothing was done.
    #[error("{0}")]
    Usage(String),
    /// The command ran and found problems (invalid mappings, messages that failed again, no
    /// support plan); it printed them.
    #[error("{0}")]
    Problems(String),
    /// AWS refused or could not be reached (throttling, access denied, a missing table, the
    /// network), said for an operator.
    #[error("{0}")]
    Aws(String),
    /// An AWS call failed; [`CliError::at`] names what it was reaching.
    #[error("{}", readable(.0, None))]
    AwsCall(PortError),
}

impl CliError {
    /// The process exit code: 0 is success, and each failure has its own.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Problems(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Aws(_) | CliError::AwsCall(_) => 3,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        CliError::Usage(message.into())
    }

    /// Names what a failed AWS call was reaching (`table AutomationMappingTable in eu-west-1`).
    pub fn at(self, target: &str) -> Self {
        match self {
            CliError::AwsCall(error) => CliError::Aws(readable(&error, Some(target))),
            other => other,
        }
    }
}

impl From<PortError> for CliError {
    fn from(error: PortError) -> Self {
        CliError::AwsCall(error)
    }
}

/// A failed AWS call in an operator's words: where, what AWS said, and what to check.
fn readable(error: &PortError, target: Option<&str>) -> String {
    let hint = match error.kind {
        ErrorKind::NotFound => "it does not exist there: check the name, --region and --profile",
        ErrorKind::AccessDenied => {
            "the credentials in use may not do this: check --profile and the IAM policy"
        }
        ErrorKind::Timeout => {
            "no answer in time: check the endpoint and the network (--timeout sets the limit)"
        }
        ErrorKind::Unavailable => {
            "AWS could not be reached or failed to answer: check the endpoint and the network, then try again"
        }
        ErrorKind::Throttled | ErrorKind::LimitExceeded => "AWS is throttling: try again shortly",
        ErrorKind::SubscriptionRequired => {
            "the Support API needs a Business, Enterprise On-Ramp or Enterprise support plan"
        }
        ErrorKind::Invalid | ErrorKind::Conflict => "AWS refused the request",
    };
    let place = target.map(|t| format!("{t}: ")).unwrap_or_default();
    format!(
        "{place}{} failed: {}\n  {hint}",
        error.operation, error.message
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aws_failure_names_its_target_and_what_to_check() {
        let error = CliError::from(PortError::new(
            "Scan",
            ErrorKind::NotFound,
            "ResourceNotFoundException: Requested resource not found",
        ))
        .at("table Mappingz in eu-west-1");
        assert_eq!(error.exit_code(), 3);
        let text = error.to_string();
        assert!(
            text.starts_with("table Mappingz in eu-west-1: Scan failed: ResourceNotFoundException"),
            "{text}"
        );
        assert!(
            text.contains("check the name, --region and --profile"),
            "{text}"
        );
    }
}
