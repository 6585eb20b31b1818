//! What one invocation carries, by the way Auto Scaling delivered it: an EventBridge event (one
//! action), an SQS batch (each message's body is Auto Scaling's notification JSON, or an SNS
//! envelope around it when the queue subscribes to a topic), or SNS records (each `Message` is
//! that JSON). Every record becomes the same [`Incoming`] an EventBridge event does.

use aws_lambda_events::sns::SnsEvent;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use serde::Deserialize;
use serde_json::Value;

use super::{EventError, Incoming};

/// Where a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Sqs,
    Sns,
}

/// One message of an SQS batch or of an SNS event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The SQS `messageId` (what `batchItemFailures` names) or the SNS `MessageId`.
    pub id: Option<String>,
    pub incoming: Incoming,
}

/// What one invocation carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// An EventBridge event, or any single event invoked directly.
    Single(Incoming),
    /// An SQS batch, or SNS records.
    Records(Source, Vec<Record>),
}

impl Delivery {
    pub fn parse(value: &Value) -> Self {
        let first = value.get("Records").and_then(|r| r.get(0));
        let source = first.and_then(|r| r.get("eventSource").or_else(|| r.get("EventSource")));
        match source.and_then(Value::as_str) {
            Some("aws:sqs") => Self::Records(Source::Sqs, sqs_records(value)),
            Some("aws:sns") => Self::Records(Source::Sns, sns_records(value)),
            _ => Self::Single(Incoming::parse(value)),
        }
    }
}

/// An SQS batch, read as the typed event; a batch that does not read as a whole (a record with
/// a field of the wrong type) is read record by record, so one broken record stands alone.
fn sqs_records(value: &Value) -> Vec<Record> {
    if let Ok(event) = SqsEvent::deserialize(value) {
        return event.records.into_iter().map(sqs_record).collect();
    }
    records(value)
        .iter()
        .map(|raw| match SqsMessage::deserialize(raw) {
            Ok(message) => sqs_record(message),
            Err(err) => Record {
                id: raw
                    .get("messageId")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                incoming: broken(format!("the SQS record is not valid: {err}")),
            },
        })
        .collect()
}

fn sqs_record(message: SqsMessage) -> Record {
    let incoming = match message.body.as_deref() {
        Some(body) => from_body(body, "SQS message body"),
        None => broken("the SQS message has no body".into()),
    };
    Record {
        id: message.message_id,
        incoming,
    }
}

/// SNS records, read as the typed event, or record by record when one is broken.
fn sns_records(value: &Value) -> Vec<Record> {
    if let Ok(event) = SnsEvent::deserialize(value) {
        return event
            .records
            .into_iter()
            .map(|record| Record {
                id: Some(record.sns.message_id),
                incoming: from_body(&record.sns.message, "SNS Message"),
            })
            .collect();
    }
    records(value)
        .iter()
        .map(|raw| {
            let sns = raw.get("Sns");
            let id = sns
                .and_then(|s| s.get("MessageId"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let incoming = match sns.and_then(|s| s.get("Message")).and_then(Value::as_str) {
                Some(message) => from_body(message, "SNS Message"),
                None => broken("the SNS record has no Sns.Message".into()),
            };
            Record { id, incoming }
        })
        .collect()
}

fn records(value: &Value) -> &[Value] {
    value
        .get("Records")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// A message's text: Auto Scaling's notification JSON, an SNS envelope around it (a queue
/// subscribed to a topic without raw message delivery), or an EventBridge event (a queue that
/// an EventBridge rule targets: EC2's state changes, or lifecycle events).
fn from_body(text: &str, what: &str) -> Incoming {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(err) => return broken(format!("the {what} is not JSON: {err}")),
    };
    if value.get("detail-type").is_some() {
        return Incoming::parse(&value);
    }
    let envelope = value.get("Type").and_then(Value::as_str) == Some("Notification");
    match value.get("Message").and_then(Value::as_str) {
        Some(message) if envelope => from_body(message, "SNS Message in the SQS message body"),
        _ => Incoming::from_notification(&value),
    }
}

/// A record that names no lifecycle action: rejected, and never redelivered.
fn broken(reason: String) -> Incoming {
    Incoming::Malformed {
        error: EventError::Record(reason),
        action: None,
        transition: None,
        metadata: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::Transition;

    fn notification() -> Value {
        json!({
            "Origin": "EC2", "LifecycleHookName": "pinhook-launch", "Destination": "AutoScalingGroup",
            "AccountId": "123456789012", "RequestId": "4f1c", "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
            "AutoScalingGroupName": "licensed-app", "Service": "AWS Auto Scaling", "Time": "2026-11-21T09:00:00.000Z",
            "EC2InstanceId": "i-1234567890abcdef0", "LifecycleActionToken": "71514b9d-6a40-4b26-8523-05e7e0000000",
            "NotificationMetadata": "{\"pin\":\"eni\",\"pool\":\"licence\"}"
        })
    }

    fn sqs(bodies: &[String]) -> Value {
        let records: Vec<Value> = bodies
            .iter()
            .enumerate()
            .map(|(n, body)| {
                json!({
                    "messageId": format!("m-{n}"), "receiptHandle": "r", "body": body,
                    "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                    "md5OfBody": "x", "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:pinhook", "awsRegion": "us-east-1"
                })
            })
            .collect();
        json!({ "Records": records })
    }

    fn sns(message: &str) -> Value {
        json!({"Records": [{
            "EventSource": "aws:sns", "EventVersion": "1.0",
            "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:pinhook:1",
            "Sns": {
                "Type": "Notification", "MessageId": "s-1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:pinhook",
                "Subject": "Auto Scaling: Lifecycle action 'LAUNCHING'", "Message": message,
                "Timestamp": "2026-11-21T09:00:00.000Z", "SignatureVersion": "1", "Signature": "x",
                "SigningCertUrl": "https://sns", "UnsubscribeUrl": "https://sns", "MessageAttributes": {}
            }
        }]})
    }

    fn action_of(incoming: &Incoming) -> (&str, Transition) {
        match incoming {
            Incoming::Action(action) => (action.instance.as_str(), action.transition),
            other => panic!("not an action: {other:?}"),
        }
    }

    #[test]
    fn every_source_becomes_the_same_lifecycle_action() {
        let body = notification().to_string();
        let envelope =
            json!({"Type": "Notification", "MessageId": "e", "Message": body}).to_string();
        let Delivery::Records(Source::Sqs, records) =
            Delivery::parse(&sqs(&[body.clone(), envelope]))
        else {
            panic!("not an SQS batch");
        };
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].id.as_deref(), Some("m-0"));
        for record in &records {
            assert_eq!(
                action_of(&record.incoming),
                ("i-1234567890abcdef0", Transition::Launch)
            );
        }
        let Delivery::Records(Source::Sns, records) = Delivery::parse(&sns(&body)) else {
            panic!("not SNS records");
        };
        assert_eq!(records[0].id.as_deref(), Some("s-1"));
        assert_eq!(
            action_of(&records[0].incoming),
            ("i-1234567890abcdef0", Transition::Launch)
        );
    }

    #[test]
    fn test_notifications_and_other_notifications_are_ignored() {
        let test = json!({
            "AccountId": "123456789012", "RequestId": "r", "AutoScalingGroupARN": "arn:aws:autoscaling:x",
            "AutoScalingGroupName": "licensed-app", "Service": "AWS Auto Scaling",
            "Event": "autoscaling:TEST_NOTIFICATION", "Time": "2026-11-21T09:00:00.000Z"
        });
        let launch = json!({"Event": "autoscaling:EC2_INSTANCE_LAUNCH", "EC2InstanceId": "i-1"});
        let Delivery::Records(_, records) =
            Delivery::parse(&sqs(&[test.to_string(), launch.to_string()]))
        else {
            panic!("not an SQS batch");
        };
        assert_eq!(
            records[0].incoming,
            Incoming::TestNotification {
                group: Some("licensed-app".into())
            }
        );
        assert!(matches!(records[1].incoming, Incoming::NotLifecycle { .. }));
    }

    #[test]
    fn a_broken_record_stands_alone_and_says_what_is_wrong() {
        let mut missing = notification();
        missing.as_object_mut().unwrap().remove("EC2InstanceId");
        let batch = sqs(&[
            "not json".into(),
            missing.to_string(),
            notification().to_string(),
        ]);
        let Delivery::Records(_, records) = Delivery::parse(&batch) else {
            panic!("not an SQS batch");
        };
        match &records[0].incoming {
            Incoming::Malformed { error, action, .. } => {
                assert!(
                    error
                        .to_string()
                        .starts_with("the SQS message body is not JSON"),
                    "{error}"
                );
                assert!(action.is_none());
            }
            other => panic!("{other:?}"),
        }
        match &records[1].incoming {
            Incoming::Malformed { error, .. } => {
                assert_eq!(
                    error.to_string(),
                    "the lifecycle event has no EC2InstanceId"
                );
            }
            other => panic!("{other:?}"),
        }
        action_of(&records[2].incoming);
        // a record whose body has the wrong type does not break the batch
        let mut batch = sqs(&[notification().to_string(), notification().to_string()]);
        batch["Records"][0]["body"] = json!(42);
        let Delivery::Records(_, records) = Delivery::parse(&batch) else {
            panic!("not an SQS batch");
        };
        assert!(matches!(records[0].incoming, Incoming::Malformed { .. }));
        action_of(&records[1].incoming);
    }

    #[test]
    fn an_eventbridge_event_is_a_single_delivery() {
        let event = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
        assert_eq!(
            Delivery::parse(&event),
            Delivery::Single(Incoming::Scheduled)
        );
    }
}
