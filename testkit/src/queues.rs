//! Lifecycle actions delivered through SQS and SNS, as Auto Scaling publishes them to a hook's
//! notification target and Lambda's event source mapping drains them.

use serde_json::{Value, json};

use crate::world::{App, World};
use crate::{HOOK_ROLE, REGION};
use pinhook::Deadline;
use std::time::Duration;

/// An SQS queue of the emulator's.
#[derive(Debug, Clone)]
pub struct Queue {
    pub url: String,
    pub arn: String,
}

impl World {
    /// A new SQS queue.
    pub async fn queue(&self, name: &str) -> Queue {
        let url = self
            .sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned();
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap();
        let arn = attributes
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .unwrap()
            .clone();
        Queue { url, arn }
    }

    /// A new SNS topic: its ARN.
    pub async fn topic(&self, name: &str) -> String {
        self.sns
            .create_topic()
            .name(name)
            .send()
            .await
            .unwrap()
            .topic_arn()
            .unwrap()
            .to_owned()
    }

    /// Subscribes the queue to the topic, as a queue behind a topic receives it: the SNS
    /// envelope around each message.
    pub async fn subscribe(&self, topic: &str, queue: &Queue) {
        self.sns
            .subscribe()
            .topic_arn(topic)
            .protocol("sqs")
            .endpoint(&queue.arn)
            .send()
            .await
            .unwrap();
    }

    /// A lifecycle hook whose notifications go to `target` (a queue or a topic).
    pub async fn hook_to(
        &self,
        group: &str,
        hook: &str,
        transition: &str,
        metadata: &str,
        target: &str,
    ) {
        self.asg
            .put_lifecycle_hook()
            .auto_scaling_group_name(group)
            .lifecycle_hook_name(hook)
            .lifecycle_transition(transition)
            .heartbeat_timeout(600)
            .default_result(if transition.ends_with("LAUNCHING") {
                "ABANDON"
            } else {
                "CONTINUE"
            })
            .notification_metadata(metadata)
            .notification_target_arn(target)
            .role_arn(HOOK_ROLE)
            .send()
            .await
            .unwrap();
    }

    /// Up to ten messages from the queue, as the records of the SQS event Lambda's event source
    /// mapping would build from them; received messages stay invisible for `visibility` seconds.
    pub async fn receive(&self, queue: &Queue, visibility: i32) -> Vec<Value> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        received
            .messages()
            .iter()
            .map(|m| {
                let attributes: serde_json::Map<String, Value> = m
                    .attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                            .collect()
                    })
                    .unwrap_or_default();
                json!({
                    "messageId": m.message_id(),
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "attributes": attributes,
                    "messageAttributes": {},
                    "md5OfBody": m.md5_of_body(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": queue.arn,
                    "awsRegion": REGION,
                })
            })
            .collect()
    }

    /// Deletes the records' messages from the queue, as the event source mapping does for the
    /// records a batch did not report as failed.
    pub async fn delete(&self, queue: &Queue, records: &[Value]) {
        for record in records {
            self.sqs
                .delete_message()
                .queue_url(&queue.url)
                .receipt_handle(record["receiptHandle"].as_str().unwrap_or_default())
                .send()
                .await
                .unwrap();
        }
    }

    /// What Auto Scaling published to the topic, each message as an SNS event a Lambda
    /// subscription would receive.
    pub fn sns_events(&self, topic: &str) -> Vec<Value> {
        let found = self
            .emulator
            .control("GET", &format!("sns-records?topic={topic}"), None);
        found["records"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|record| json!({ "Records": [record] }))
            .collect()
    }
}

/// An SQS event of these records.
pub fn sqs_event(records: &[Value]) -> Value {
    json!({ "Records": records })
}

/// Drains the queue into the handler as Lambda's SQS event source mapping does: batches of up
/// to ten, the messages of each batch deleted unless `batchItemFailures` names them. The
/// answer of each batch.
pub async fn drain(world: &World, app: &App, queue: &Queue) -> Vec<pinhook::handler::Answer> {
    poll_queue(world, queue, |event| async move {
        let answer = app
            .invoke(&event, Deadline::after(Duration::from_secs(60)))
            .await
            .unwrap_or_else(|e| panic!("the handler failed the whole batch: {e}"));
        (answer.response.clone(), answer)
    })
    .await
}

/// The project's SQS poller, as Lambda's event source mapping runs it: receives batches of up to
/// ten until the queue is empty, hands each to `deliver` as an SQS event, and deletes the
/// messages its response does not name in `batchItemFailures` (those come back after the
/// visibility timeout). What `deliver` made of each batch.
pub async fn poll_queue<T, F, Fut>(world: &World, queue: &Queue, mut deliver: F) -> Vec<T>
where
    F: FnMut(Value) -> Fut,
    Fut: std::future::Future<Output = (Value, T)>,
{
    let mut delivered = Vec::new();
    loop {
        let records = world.receive(queue, 30).await;
        if records.is_empty() {
            return delivered;
        }
        let (response, made) = deliver(sqs_event(&records)).await;
        let failed: Vec<&str> = response["batchItemFailures"]
            .as_array()
            .map(|f| {
                f.iter()
                    .filter_map(|i| i["itemIdentifier"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        let done: Vec<Value> = records
            .iter()
            .filter(|r| !failed.contains(&r["messageId"].as_str().unwrap_or_default()))
            .cloned()
            .collect();
        world.delete(queue, &done).await;
        delivered.push(made);
    }
}
