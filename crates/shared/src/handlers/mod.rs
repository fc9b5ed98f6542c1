//! The three handlers, written against the ports only, so the Lambda binaries (AWS adapters) and
//! `tarem simulate` (in-memory adapters) run the same code.

pub mod check_tracker;
pub mod executions;
pub mod results;

pub use check_tracker::{CheckTracker, Tracked};
pub use executions::{ExecutionHandler, ExecutionOutcome};
pub use results::{
    BatchReport, MappingCache, RecordOutcome, RecordReport, ResultsConfig, ResultsHandler, Step,
};
