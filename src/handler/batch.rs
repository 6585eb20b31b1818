//! An invocation, whatever it carries: one event (EventBridge), an SQS batch, or SNS records.
//! Records are handled each on its own, concurrently up to `PINHOOK_BATCH_CONCURRENCY`; an SQS
//! batch answers with `batchItemFailures` naming only the records a redelivery could fix, so a
//! poisoned record never blocks the others and a completed one is never redelivered.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};
use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tracing::{Instrument, error, info_span, warn};

use super::Pinhook;
use super::outcome::{HandlerError, Summary};
use crate::aws::{AutoScalingApi, Ec2Api};
use crate::context::Deadline;
use crate::event::{Delivery, Record, Source};

/// What an invocation answers Lambda, and the summary of each action it handled.
#[derive(Debug, Serialize)]
pub struct Answer {
    /// The function's response: the summary of a single event, `batchItemFailures` for an SQS
    /// batch, the summaries of SNS records.
    pub response: Value,
    pub summaries: Vec<Summary>,
}

impl<A: AutoScalingApi, E: Ec2Api> Pinhook<A, E> {
    /// Handles one invocation of the function. An error is returned to Lambda only when a
    /// redelivery of the whole invocation could fix it: a single event, or an SNS record, that
    /// failed that way. An SQS batch names its failed records instead.
    pub async fn invoke(
        &self,
        payload: &Value,
        deadline: Deadline,
    ) -> Result<Answer, HandlerError> {
        let (source, records) = match Delivery::parse(payload) {
            Delivery::Single(incoming) => {
                let summary = self.handle_incoming(incoming, deadline).await?;
                return Ok(Answer {
                    response: to_value(&summary),
                    summaries: vec![summary],
                });
            }
            Delivery::Records(source, records) => (source, records),
        };
        let limit = self.settings.batch_concurrency.max(1) as usize;
        let handled: Vec<(Option<String>, Result<Summary, HandlerError>)> = stream::iter(records)
            .map(|Record { id, incoming }| {
                let span = info_span!("record", message_id = id.as_deref().unwrap_or("-"));
                async move { (id, self.handle_incoming(incoming, deadline).await) }.instrument(span)
            })
            .buffer_unordered(limit)
            .collect()
            .await;
        let mut summaries = Vec::new();
        let mut failures = Vec::new();
        let mut unnamed = None;
        for (id, result) in handled {
            match result {
                Ok(summary) => summaries.push(summary),
                Err(err) => {
                    warn!(message_id = id.as_deref().unwrap_or("-"), error = %err, "record failed; it is delivered again");
                    match id {
                        Some(id) if source == Source::Sqs => failures.push(id),
                        _ => unnamed = Some(err),
                    }
                }
            }
        }
        // A failed record that cannot be named (an SNS record, or an SQS record without a
        // message id) fails the invocation: everything is delivered again, and what was
        // completed finds itself done.
        if let Some(err) = unnamed {
            error!(error = %err, "returning the error to Lambda for redelivery");
            return Err(err);
        }
        let response = match source {
            Source::Sqs => {
                let mut response = SqsBatchResponse::default();
                response.batch_item_failures = failures
                    .into_iter()
                    .map(|id| {
                        let mut failure = BatchItemFailure::default();
                        failure.item_identifier = id;
                        failure
                    })
                    .collect();
                to_value(&response)
            }
            Source::Sns => to_value(&summaries),
        };
        Ok(Answer {
            response,
            summaries,
        })
    }
}

fn to_value(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
