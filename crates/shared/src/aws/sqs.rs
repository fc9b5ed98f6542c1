//! The failure queues on SQS: handlers park what they cannot use there, and `tarem dlq replay`
//! reads it back.

use super::errors::port_error;
use crate::error::PortError;
use crate::ports::{ParkedQueue, ParkingLot, QueueMessage, Target, parked_body};
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use serde_json::Value;

/// One queue, by URL.
#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }
}

/// SQS's message size limit; a larger payload is parked truncated, with a note, rather than lost.
const MAX_BODY_BYTES: usize = 256 * 1024;

#[async_trait]
impl ParkingLot for SqsQueue {
    async fn park(&self, target: Target, payload: &Value, reason: &str) -> Result<(), PortError> {
        let mut body = parked_body(target, payload, reason).to_string();
        if body.len() > MAX_BODY_BYTES {
            body = parked_body(
                target,
                &Value::String(body.chars().take(MAX_BODY_BYTES / 2).collect()),
                &format!("{reason} (payload truncated to fit SQS's 256 KB limit)"),
            )
            .to_string();
        }
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|error| port_error("SendMessage", &error))?;
        Ok(())
    }
}

#[async_trait]
impl ParkedQueue for SqsQueue {
    async fn receive(&self, max: usize) -> Result<Vec<QueueMessage>, PortError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|error| port_error("ReceiveMessage", &error))?;
        Ok(output
            .messages()
            .iter()
            .filter_map(|message| {
                Some(QueueMessage {
                    id: message.message_id()?.to_owned(),
                    receipt: message.receipt_handle()?.to_owned(),
                    body: message.body().unwrap_or_default().to_owned(),
                })
            })
            .collect())
    }

    async fn delete(&self, receipt: &str) -> Result<(), PortError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|error| port_error("DeleteMessage", &error))?;
        Ok(())
    }

    async fn release(&self, receipt: &str) -> Result<(), PortError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|error| port_error("ChangeMessageVisibility", &error))?;
        Ok(())
    }
}
