//! An SQS queue, as SQS behaves (a received message is invisible until deleted or its
//! visibility timeout passes).

use super::{Faults, lock};
use crate::error::PortError;
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// An SQS queue: what handlers park, and what `tarem dlq replay` reads back.
#[derive(Default)]
pub struct InMemoryQueue {
    pub(crate) faults: Arc<Faults>,
    state: Mutex<QueueState>,
}

#[derive(Default)]
struct QueueState {
    messages: Vec<crate::ports::QueueMessage>,
    /// Received and not yet deleted: invisible, as during SQS's visibility timeout.
    in_flight: std::collections::HashSet<String>,
    sent: u64,
}

impl InMemoryQueue {
    pub fn send(&self, body: String) {
        let mut state = lock(&self.state);
        state.sent += 1;
        let id = format!("msg-{}", state.sent);
        state.messages.push(crate::ports::QueueMessage {
            receipt: format!("receipt-{id}"),
            id,
            body,
        });
    }

    /// Messages still in the queue (received or not).
    pub fn messages(&self) -> Vec<crate::ports::QueueMessage> {
        lock(&self.state).messages.clone()
    }

    /// The visibility timeout passes: received messages can be received again.
    pub fn expire_visibility(&self) {
        lock(&self.state).in_flight.clear();
    }
}

#[async_trait::async_trait]
impl crate::ports::ParkingLot for InMemoryQueue {
    async fn park(
        &self,
        target: crate::ports::Target,
        payload: &Value,
        reason: &str,
    ) -> Result<(), PortError> {
        self.faults.check("queue.park")?;
        self.send(crate::ports::parked_body(target, payload, reason).to_string());
        Ok(())
    }
}

#[async_trait::async_trait]
impl crate::ports::ParkedQueue for InMemoryQueue {
    async fn receive(&self, max: usize) -> Result<Vec<crate::ports::QueueMessage>, PortError> {
        self.faults.check("queue.receive")?;
        let mut state = lock(&self.state);
        let visible: Vec<_> = state
            .messages
            .iter()
            .filter(|m| !state.in_flight.contains(&m.receipt))
            .take(max)
            .cloned()
            .collect();
        state
            .in_flight
            .extend(visible.iter().map(|m| m.receipt.clone()));
        Ok(visible)
    }

    async fn delete(&self, receipt: &str) -> Result<(), PortError> {
        self.faults.check("queue.delete")?;
        let mut state = lock(&self.state);
        state.messages.retain(|m| m.receipt != receipt);
        state.in_flight.remove(receipt);
        Ok(())
    }

    async fn release(&self, receipt: &str) -> Result<(), PortError> {
        self.faults.check("queue.release")?;
        lock(&self.state).in_flight.remove(receipt);
        Ok(())
    }
}
