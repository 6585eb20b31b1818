"""Auto Scaling's notification targets: a hook's NotificationTargetARN (an SQS queue or an SNS
topic of moto's) gets a test notification when the hook is put and one message per lifecycle
action; what reached a topic is kept as Lambda would receive it from a topic subscription."""

from __future__ import annotations

import json
import uuid
from typing import Any

from moto.autoscaling.exceptions import ValidationError

from .clock import iso_millis
from .state import current


class Notifications:
    def __init__(self) -> None:
        # The SNS record of a Lambda event, by topic ARN.
        self.sns_records: dict[str, list[dict[str, Any]]] = {}

    def publish(self, target_arn: str, message: dict[str, Any], subject: str) -> None:
        """Sends the message to the target; ValidationError, as AWS answers PutLifecycleHook,
        when the target does not exist."""
        from moto.sns.exceptions import TopicNotFound
        from moto.sns.models import sns_backends
        from moto.sqs.exceptions import QueueDoesNotExist
        from moto.sqs.models import sqs_backends

        parts = target_arn.split(":")
        if len(parts) < 6 or parts[2] not in ("sqs", "sns"):
            raise ValidationError(f"Invalid notification target ARN: {target_arn}")
        service, region, account, name = parts[2], parts[3], parts[4], parts[5]
        body = json.dumps(message)
        try:
            if service == "sqs":
                sqs_backends[account][region].send_message(name, body)
                return
            topic = sns_backends[account][region].get_topic(target_arn)
            message_id = topic.publish(body, subject=subject)
        except (QueueDoesNotExist, TopicNotFound) as err:
            raise ValidationError(
                f"Unable to publish test message to notification target {target_arn} using IAM "
                "role arn. Please check your target and role configuration and try to put "
                "lifecycle hook again."
            ) from err
        self.sns_records.setdefault(target_arn, []).append(
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{target_arn}:{uuid.uuid4()}",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message_id,
                    "TopicArn": target_arn,
                    "Subject": subject,
                    "Message": body,
                    "Timestamp": iso_millis(current().now()),
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService.pem",
                    "UnsubscribeUrl": (
                        "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
                        f"&SubscriptionArn={target_arn}"
                    ),
                    "MessageAttributes": {},
                },
            }
        )

    def test_notification(self, group: Any, target_arn: str) -> None:
        self.publish(
            target_arn,
            {
                "AccountId": group.account_id,
                "RequestId": str(uuid.uuid4()),
                "AutoScalingGroupARN": group.arn,
                "AutoScalingGroupName": group.name,
                "Service": "AWS Auto Scaling",
                "Event": "autoscaling:TEST_NOTIFICATION",
                "Time": iso_millis(current().now()),
            },
            "Auto Scaling: test notification for group " + group.name,
        )

    def lifecycle_action(self, action: Any, target_arn: str) -> None:
        """The LifecycleHookNotification AWS sends for an action: the fields of the
        EventBridge event's detail, at the top level."""
        detail = action.event()["detail"]
        message = {
            "Origin": detail["Origin"],
            "LifecycleHookName": detail["LifecycleHookName"],
            "Destination": detail["Destination"],
            "AccountId": action.group.account_id,
            "RequestId": str(uuid.uuid4()),
            "LifecycleTransition": detail["LifecycleTransition"],
            "AutoScalingGroupName": detail["AutoScalingGroupName"],
            "Service": "AWS Auto Scaling",
            "Time": action.time,
            "EC2InstanceId": detail["EC2InstanceId"],
            "LifecycleActionToken": detail["LifecycleActionToken"],
        }
        if "NotificationMetadata" in detail:
            message["NotificationMetadata"] = detail["NotificationMetadata"]
        verb = "LAUNCHING" if action.transition == "autoscaling:EC2_INSTANCE_LAUNCHING" else "TERMINATING"
        self.publish(
            target_arn,
            message,
            f"Auto Scaling:  Lifecycle action '{verb}' for instance {action.instance_id} in progress.",
        )
