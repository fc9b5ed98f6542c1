//! The three tables (and the counters in the execution table), as DynamoDB behaves.

mod counters;
mod executions;
mod locks;
mod mappings;
mod tracker;

pub use counters::InMemoryCounters;
pub use executions::InMemoryExecutions;
pub use locks::InMemoryLocks;
pub use mappings::InMemoryMappings;
pub use tracker::InMemoryTracker;
