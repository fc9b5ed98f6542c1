//! The `tarem` operator CLI, as a library so the end-to-end tests drive exactly what users run.
//!
//! - [`commands`]: one module per command, each with its own arguments and `run()`.
//! - [`output`]: standard output that survives a closed pipe ([`out!`]).
//! - [`error`]: the one error type; [`CliError::exit_code`] is the one place exit codes are
//!   decided.
//! - The work behind the commands: [`simulate`] (the local loop), [`mappings`] and
//!   [`mapping_file`] (mappings as code), [`plan`], [`replay_aws`] (the replay tool's AWS side), [`stack`] (the deployed stack, read).

pub mod accounts;
pub mod blast;
pub mod commands;
pub mod doctor;
pub mod error;
pub mod inputs;
pub mod mapping_file;
pub mod mappings;
pub mod output;
pub mod pack;
pub mod plan;
pub mod replay_aws;
pub mod simulate;
pub mod stack;
pub mod status;

pub use error::CliError;
