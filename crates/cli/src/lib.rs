//! The `tarem` operator CLI, as a library so the end-to-end tests drive exactly what users run.

pub mod mapping_file;
pub mod mappings;
pub mod replay_aws;
pub mod simulate;

/// A problem with the command line or the files it names: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
