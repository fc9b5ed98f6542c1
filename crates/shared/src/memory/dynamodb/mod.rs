//! The three tables (and the counters in the execution table), as DynamoDB behaves.

mod counters;
mod executions;
mod mappings;
mod tracker;

pub use counters::InMemoryCounters;
pub use executions::InMemoryExecutions;
pub use mappings::InMemoryMappings;
pub use tracker::InMemoryTracker;
