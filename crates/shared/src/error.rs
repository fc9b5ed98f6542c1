//! Errors at the ports, classified once: retryable (try the record again later) or permanent
//! (park it with a reason). Adapters map their service's error codes onto [`ErrorKind`].

use std::fmt;

/// What kind of failure an outside call had; decides retry versus park.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The service asked us to slow down (throttling, rate exceeded).
    Throttled,
    /// The service could not answer now (5xx, connection reset).
    Unavailable,
    /// The call timed out.
    Timeout,
    /// A service quota that frees up over time (e.g. SSM's concurrent automation limit).
    LimitExceeded,
    /// The thing asked for does not exist.
    NotFound,
    /// We are not allowed to do this.
    AccessDenied,
    /// The request was invalid and will stay invalid.
    Invalid,
    /// An idempotency token was reused with different parameters.
    Conflict,
    /// The account lacks what the call needs (the Support API needs a Business, Enterprise
    /// On-Ramp or Enterprise support plan).
    SubscriptionRequired,
}

impl ErrorKind {
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Throttled
                | ErrorKind::Unavailable
                | ErrorKind::Timeout
                | ErrorKind::LimitExceeded
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ErrorKind::Throttled => "throttled",
            ErrorKind::Unavailable => "service unavailable",
            ErrorKind::Timeout => "timed out",
            ErrorKind::LimitExceeded => "limit exceeded",
            ErrorKind::NotFound => "not found",
            ErrorKind::AccessDenied => "access denied",
            ErrorKind::Invalid => "invalid request",
            ErrorKind::Conflict => "conflict",
            ErrorKind::SubscriptionRequired => "subscription required",
        };
        f.write_str(text)
    }
}

/// A failed call to a port: which operation, what kind of failure, and the service's own words
/// (with its error code when it gave one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed ({kind}): {message}")]
pub struct PortError {
    pub operation: &'static str,
    pub kind: ErrorKind,
    pub message: String,
}

impl PortError {
    pub fn new(operation: &'static str, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            operation,
            kind,
            message: message.into(),
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

/// An error and its causes, each said once, joined by ": " (`dispatch failure: io error:
/// Connection refused`): readable in a log line or a terminal, without the SDK's debug dump.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![];
    let mut next = Some(error);
    while let Some(current) = next {
        let text = current.to_string();
        // Wrappers often repeat their source's words; say each once.
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = current.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod chain_tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("dispatch failure")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_names_each_cause_once_without_debug_dumps() {
        let error = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        ));
        assert_eq!(
            error_chain(&error),
            "dispatch failure: Connection refused (os error 111)"
        );
    }
}
