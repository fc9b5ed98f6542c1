//! What can go wrong with a `tarem` command, and the one place that turns it into an exit code.

use tarem_shared::error::PortError;

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
    /// network).
    #[error("{0}")]
    Aws(String),
}

impl CliError {
    /// The process exit code: 0 is success, and each failure has its own.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Problems(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Aws(_) => 3,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        CliError::Usage(message.into())
    }
}

impl From<PortError> for CliError {
    fn from(error: PortError) -> Self {
        CliError::Aws(error.to_string())
    }
}
