"""pinhook's local AWS emulator: moto in server mode, made as strict as AWS where pinhook depends on it.

moto is looser than AWS in exactly the places where pinhook's safety lives. This module patches
moto's EC2 and Auto Scaling backends so that, like AWS:

* AttachNetworkInterface refuses an ENI that is in use (InvalidNetworkInterface.InUse), a device
  index the instance already uses (InvalidParameterValue) and an ENI in another Availability Zone
  (InvalidParameterCombination). Every API request runs under one lock, so two claims of the same
  ENI are serialised as AWS serialises them: one wins, the other gets the error.
* An attachment goes through `attaching` before `attached`, a detachment through `detaching`
  before the ENI is `available`; the primary interface (device index 0) can never be detached;
  a terminated instance leaves its secondary ENIs `available`.
* A group with a launch hook puts each new instance in `Pending:Wait` with a lifecycle action
  token (one per hook), a group with a terminate hook puts leaving instances in
  `Terminating:Wait`. CompleteLifecycleAction (by token or instance id) and
  RecordLifecycleActionHeartbeat exist and answer an unknown or used token with AWS's
  ValidationError "No active Lifecycle Action found ...". A wait that is not completed or
  heartbeated within the hook's HeartbeatTimeout ends with the hook's DefaultResult.
* PutLifecycleHook keeps NotificationMetadata, and unassociated Elastic IPs carry no instance id.
* New instances of a group are spread over the group's subnets (and so its AZs) as AWS balances
  them, instead of all landing in the first subnet. With a boot delay, a new group instance stays
  `pending` that long, as EC2 keeps it while it boots, and AttachNetworkInterface and
  AssociateAddress refuse it meanwhile with AWS's `IncorrectInstanceState`.
* With a read lag, EC2's Describe calls are eventually consistent as AWS documents them: a
  describe may answer as the same describe did up to that long ago.

Beyond AWS's API it serves a small control API under /_pinhook/ for demos and tests: the pending
lifecycle actions with the EventBridge event AWS would send for each, "concurrent claimers" that
take an ENI or an address just before an instance's claim lands, injected faults, the boot delay
and read lag, and per-action call counts. It binds to 127.0.0.1 only and exits when the process
that started it exits.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import signal
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import parse_qs

from moto.autoscaling import models as asg_models
from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.exceptions import EC2ClientError, InvalidNetworkAttachmentIdError
from moto.ec2.models import elastic_ip_addresses, elastic_network_interfaces
from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.models.instances import Instance
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix, random_eip_association_id
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
DETAIL_TYPE = {
    LAUNCHING: "EC2 Instance-launch Lifecycle Action",
    TERMINATING: "EC2 Instance-terminate Lifecycle Action",
}
WAIT_STATE = {LAUNCHING: "Pending:Wait", TERMINATING: "Terminating:Wait"}
# Instances waiting in a warm pool, ready to be drawn on.
WARMED_STATES = {"Warmed:Stopped", "Warmed:Running", "Warmed:Hibernated"}
# The warm pool of each group, by group name: instances in Warmed:* states.
WARM: dict[str, list[Any]] = {}
# Instances in these states count towards the desired capacity, as in AWS.
COUNTED_STATES = {"Pending", "Pending:Wait", "Pending:Proceed", "InService"}

# One lock for every API request and every timed state change: each AWS call is atomic.
LOCK = threading.RLock()


class Settings:
    """Delays of the asynchronous EC2 state changes, in seconds."""

    attach_delay = 0.2
    detach_delay = 0.3
    # Seconds added to every AWS request before it is served, outside the lock, as the network
    # and AWS's own processing add them (50–150 ms in a Region).
    latency = 0.0
    # How long a new group instance stays `pending`; per group name, or for every group.
    boot_delay = 0.0
    group_boot_delays: dict[str, float] = {}

    def boot_delay_of(self, group: str) -> float:
        return self.group_boot_delays.get(group, self.boot_delay)


SETTINGS = Settings()


def now() -> float:
    return time.time()


def later(delay: float, fn: Callable[[], None]) -> None:
    """Run fn under the lock after delay seconds (at once when delay is 0)."""

    def run() -> None:
        with LOCK:
            fn()

    if delay <= 0:
        run()
        return
    timer = threading.Timer(delay, run)
    timer.daemon = True
    timer.start()


# --------------------------------------------------------------------------------------------
# EC2: network interfaces


def attachment_status(eni: Any) -> str:
    return getattr(eni, "pinhook_attachment_status", "attached")


_original_attachment_init = elastic_network_interfaces.Attachment.__init__


def attachment_init(self: Any, eni: Any) -> None:
    _original_attachment_init(self, eni)
    self.status = attachment_status(eni)


def strict_attach(self: Any, eni_id: str, instance_id: str, device_index: int) -> Any:
    eni = self.get_network_interface(eni_id)
    instance = self.get_instance(instance_id)
    device_index = int(device_index)
    if instance.state != "running" and instance.state != "stopped":
        raise EC2ClientError(
            "IncorrectInstanceState",
            f"The {instance.state} instance '{instance.id}' is not in a valid state for this "
            "operation.",
        )
    CLAIMERS.before_attach(self, instance, eni)
    if eni.instance is not None or eni.status != "available":
        raise EC2ClientError("InvalidNetworkInterface.InUse", f"Interface: [{eni.id}] in use.")
    if device_index in instance.nics:
        raise EC2ClientError(
            "InvalidParameterValue",
            f"Instance '{instance.id}' already has an interface attached at device index "
            f"'{device_index}'.",
        )
    if eni.subnet.availability_zone != instance.availability_zone:
        raise EC2ClientError(
            "InvalidParameterCombination",
            "You may not attach a network interface to an instance if they are not in the "
            "same availability zone",
        )
    instance.attach_eni(eni, device_index)
    eni.pinhook_attachment_status = "attaching"
    attachment_id = eni.attachment_id

    def settle() -> None:
        if eni.attachment_id == attachment_id and attachment_status(eni) == "attaching":
            eni.pinhook_attachment_status = "attached"

    later(SETTINGS.attach_delay, settle)
    return eni.attachment


def strict_detach(self: Any, attachment_id: str) -> None:
    eni = next((e for e in self.enis.values() if e.attachment_id == attachment_id), None)
    if eni is None or eni.instance is None:
        raise InvalidNetworkAttachmentIdError(attachment_id)
    if eni.device_index == 0:
        raise EC2ClientError(
            "OperationNotPermitted",
            "The network interface at device index 0 and networkCard index 0 cannot be detached.",
        )
    if attachment_status(eni) == "detaching":
        return
    eni.pinhook_attachment_status = "detaching"

    def settle() -> None:
        if eni.attachment_id == attachment_id and eni.instance is not None:
            eni.instance.detach_eni(eni)
            eni.pinhook_attachment_status = "attached"

    later(SETTINGS.detach_delay, settle)


_original_terminate = Instance.terminate


def terminate_releasing_enis(self: Any) -> Any:
    """AWS detaches the secondary interfaces of a terminated instance; moto leaves them in use.
    An instance of a group terminated through EC2 (a Spot reclaim, a person) leaves the group at
    once, as Auto Scaling's health check would see it, without its terminate hooks."""
    previous = _original_terminate(self)
    group = getattr(self, "autoscaling_group", None)
    if group is not None:
        for states in (group.instance_states, WARM.get(group.name, [])):
            for state in [s for s in states if s.instance is self]:
                states.remove(state)
        for action in LIFECYCLE.actions:
            if action.pending and action.instance_id == self.id:
                action.result, action.ended_by = "ABANDON", "termination"
    for eni in list(self.nics.values()):
        if eni.device_index != 0 and not eni.delete_on_termination:
            self.detach_eni(eni)
            eni.pinhook_attachment_status = "attached"
        elif eni.delete_on_termination or eni.device_index == 0:
            # The primary interface goes with the instance, and so does its address association.
            address = address_of_interface(self.ec2_backend, eni)
            if address is not None:
                self.ec2_backend.disassociate_address(association_id=address.association_id)
    return previous


def address_instance_id(self: Any) -> str | None:
    """AWS names the instance of the interface the address is on, however it was associated."""
    if self.instance:
        return self.instance.id
    if self.eni is not None and self.eni.instance is not None:
        return self.eni.instance.id
    return None


def address_of_interface(backend: Any, eni: Any) -> Any:
    return next((a for a in backend.addresses if a.eni is eni), None)


def strict_associate(
    self: Any,
    instance: Any = None,
    eni: Any = None,
    address: str | None = None,
    allocation_id: str | None = None,
    reassociate: Any = False,
) -> Any:
    """AssociateAddress as AWS does it in a VPC: with AllowReassociation=false an address that is
    associated with anything else is refused; the same association again is a no-op; an address
    already on the target interface is moved off it (it stays allocated)."""
    if address:
        eip = self.address_by_ip([address])[0]
    else:
        eip = self.address_by_allocation([allocation_id])[0]
    reassociate = str(reassociate).lower() == "true"
    target = eni if eni is not None else (instance.nics.get(0) if instance else None)
    if target is None:
        raise EC2ClientError("InvalidParameterValue", "The instance has no network interface")
    if target.instance is not None and target.instance.state == "pending":
        # As AWS answers for an interface of a booting instance (terraform-provider-aws#19699).
        raise EC2ClientError(
            "IncorrectInstanceState",
            f"The pending-instance-creation instance to which '{target.id}' is attached is not "
            "in a valid state for this operation",
        )
    if target.instance is not None:
        CLAIMERS.before_associate(self, target.instance, eip)
    if eip.eni is target:
        return eip
    if eip.eni is not None or eip.instance is not None:
        if not reassociate:
            raise EC2ClientError(
                "Resource.AlreadyAssociated",
                f"resource {eip.allocation_id} is already associated with associate-id {eip.association_id}",
            )
        self.disassociate_address(association_id=eip.association_id)
    previous = address_of_interface(self, target)
    if previous is not None:
        self.disassociate_address(association_id=previous.association_id)
    eip.instance = None
    eip.eni = target
    target.public_ip = eip.public_ip
    eip.association_id = random_eip_association_id()
    return eip


def address_network_interface_id(self: Any) -> str | None:
    return self.eni.id if self.eni else None


class Claimers:
    """Concurrent claimers on demand: before instance X's next AttachNetworkInterface (or
    AssociateAddress) lands, instance Y takes the very ENI (or address) X asked for, as a second
    claimer racing X would. Several winners for one victim fire one after the other, one per
    claim of the victim's."""

    def __init__(self) -> None:
        self.rules: dict[str, list[str]] = {}
        self.fired: list[dict[str, str]] = []

    def arm(self, victim: str, winners: list[str]) -> None:
        self.rules.setdefault(victim, []).extend(winners)

    def next_winner(self, victim: str) -> str | None:
        winners = self.rules.get(victim)
        if not winners:
            return None
        winner = winners.pop(0)
        if not winners:
            del self.rules[victim]
        return winner

    def before_attach(self, backend: Any, instance: Any, eni: Any) -> None:
        if eni.instance is not None:
            return
        winner_id = self.next_winner(instance.id)
        if winner_id is None:
            return
        winner = backend.get_instance(winner_id)
        index = 1
        while index in winner.nics:
            index += 1
        winner.attach_eni(eni, index)
        eni.pinhook_attachment_status = "attached"
        self.fired.append({"victim": instance.id, "winner": winner_id, "eni": eni.id})

    def before_associate(self, backend: Any, instance: Any, eip: Any) -> None:
        if eip.eni is not None:
            return
        winner_id = self.next_winner(instance.id)
        if winner_id is None:
            return
        winner = backend.get_instance(winner_id)
        primary = winner.nics[0]
        eip.eni = primary
        primary.public_ip = eip.public_ip
        eip.association_id = random_eip_association_id()
        self.fired.append({"victim": instance.id, "winner": winner_id, "allocation_id": eip.allocation_id})


CLAIMERS = Claimers()


# --------------------------------------------------------------------------------------------
# Auto Scaling: lifecycle hooks and actions


class Action:
    def __init__(
        self,
        group: Any,
        hook: Any,
        state: Any,
        transition: str,
        origin: str | None = None,
        destination: str | None = None,
    ) -> None:
        self.token = str(uuid.uuid4())
        self.group = group
        self.group_name = group.name
        self.hook_name = hook.name
        self.instance_id = state.instance.id
        self.transition = transition
        self.metadata = getattr(hook, "notification_metadata", None)
        self.heartbeat_timeout = int(hook.heartbeat_timeout)
        self.default_result = hook.default_result
        self.started = now()
        self.deadline = self.started + self.heartbeat_timeout
        self.global_deadline = self.started + min(172800, 100 * self.heartbeat_timeout)
        self.result: str | None = None
        self.ended_by: str | None = None
        self.complete_calls = {"accepted": 0, "rejected": 0}
        self.heartbeats = 0
        self.origin = origin or ("EC2" if transition == LAUNCHING else "AutoScalingGroup")
        self.destination = destination or (
            "AutoScalingGroup" if transition == LAUNCHING else "EC2"
        )
        self.time = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace(
            "+00:00", "Z"
        )

    @property
    def pending(self) -> bool:
        return self.result is None

    def event(self) -> dict[str, Any]:
        detail = {
            "LifecycleActionToken": self.token,
            "AutoScalingGroupName": self.group_name,
            "LifecycleHookName": self.hook_name,
            "EC2InstanceId": self.instance_id,
            "LifecycleTransition": self.transition,
            "Origin": self.origin,
            "Destination": self.destination,
        }
        if self.metadata is not None:
            detail["NotificationMetadata"] = self.metadata
        return {
            "version": "0",
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, self.token)),
            "detail-type": DETAIL_TYPE[self.transition],
            "source": "aws.autoscaling",
            "account": self.group.account_id,
            "time": self.time,
            "region": self.group.region,
            "resources": [self.group.arn],
            "detail": detail,
        }

    def describe(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "group": self.group_name,
            "hook": self.hook_name,
            "instance_id": self.instance_id,
            "transition": self.transition,
            "pending": self.pending,
            "result": self.result,
            "ended_by": self.ended_by,
            "complete_calls": dict(self.complete_calls),
            "heartbeats": self.heartbeats,
            "event": self.event(),
        }


class Lifecycle:
    """Every lifecycle action the emulator has started, pending or ended."""

    def __init__(self) -> None:
        self.actions: list[Action] = []

    def hooks(self, group: Any, transition: str) -> list[Any]:
        backend = group.autoscaling_backend
        return [
            hook
            for hook in backend.lifecycle_hooks.values()
            if hook.auto_scaling_group_name == group.name
            and hook.lifecycle_transition == transition
        ]

    def start(
        self,
        group: Any,
        state: Any,
        transition: str,
        origin: str | None = None,
        destination: str | None = None,
    ) -> None:
        hooks = self.hooks(group, transition)
        if not hooks:
            self.proceed(group, state, transition, "CONTINUE", destination)
            return
        # Into the warm pool (launched into it, or returning to it) the wait is Warmed:Pending:Wait.
        state.lifecycle_state = (
            "Warmed:Pending:Wait" if destination == "WarmPool" else WAIT_STATE[transition]
        )
        for hook in hooks:
            action = Action(group, hook, state, transition, origin, destination)
            self.actions.append(action)
            target = getattr(hook, "notification_target_arn", None)
            if target:
                NOTIFICATIONS.lifecycle_action(action, target)

    def find(self, token: str | None, group: str, hook: str, instance_id: str | None) -> Action:
        for action in self.actions:
            if not action.pending:
                continue
            if action.group_name != group or action.hook_name != hook:
                continue
            if token and action.token == token:
                return action
            if not token and instance_id and action.instance_id == instance_id:
                return action
        if token:
            raise ValidationError(f"No active Lifecycle Action found with token {token}")
        raise ValidationError(f"No active Lifecycle Action found with instance ID {instance_id}")

    def record_rejected(self, token: str | None, instance_id: str | None) -> None:
        for action in self.actions:
            if (token and action.token == token) or (
                not token and instance_id and action.instance_id == instance_id
            ):
                action.complete_calls["rejected"] += 1
                return

    def end(self, action: Action, result: str, ended_by: str) -> None:
        action.result = result
        action.ended_by = ended_by
        siblings = [
            a
            for a in self.actions
            if a.instance_id == action.instance_id and a.transition == action.transition
        ]
        if any(a.pending for a in siblings):
            return
        group = action.group
        state = next(
            (
                s
                for s in group.instance_states + WARM.get(group.name, [])
                if s.instance.id == action.instance_id
            ),
            None,
        )
        if state is None:
            return
        final = "ABANDON" if any(a.result == "ABANDON" for a in siblings) else "CONTINUE"
        self.proceed(group, state, action.transition, final, action.destination)

    def proceed(
        self, group: Any, state: Any, transition: str, result: str, destination: str | None = None
    ) -> None:
        if destination == "WarmPool" and not (transition == LAUNCHING and result == "ABANDON"):
            settle_warm(group, state)
            return
        if state in WARM.get(group.name, []):
            WARM[group.name].remove(state)
            group.autoscaling_backend.ec2_backend.terminate_instances([state.instance.id])
            return
        if transition == LAUNCHING and result == "CONTINUE":
            state.lifecycle_state = "InService"
            return
        # A terminating instance ends whatever the result; an abandoned launch is terminated
        # (the emulator does not launch a replacement, so tests see exactly what happened).
        group.instance_states = [s for s in group.instance_states if s is not state]
        group.autoscaling_backend.ec2_backend.terminate_instances([state.instance.id])

    def expire(self) -> None:
        t = now()
        for action in list(self.actions):
            if action.pending and (t >= action.deadline or t >= action.global_deadline):
                self.end(action, action.default_result, "timeout")


LIFECYCLE = Lifecycle()


# --------------------------------------------------------------------------------------------
# Auto Scaling's notification targets: a hook's NotificationTargetARN (an SQS queue or an SNS
# topic) gets a test notification when the hook is put and one message per lifecycle action.


def iso_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Notifications:
    """What Auto Scaling published to SNS topics, as Lambda would receive each message from a
    topic subscription: the SNS record of a Lambda event, by topic ARN."""

    def __init__(self) -> None:
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
                    "Timestamp": iso_now(),
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService.pem",
                    "UnsubscribeUrl": f"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={target_arn}",
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
                "Time": iso_now(),
            },
            "Auto Scaling: test notification for group " + group.name,
        )

    def lifecycle_action(self, action: "Action", target_arn: str) -> None:
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
        verb = "LAUNCHING" if action.transition == LAUNCHING else "TERMINATING"
        self.publish(
            target_arn,
            message,
            f"Auto Scaling:  Lifecycle action '{verb}' for instance {action.instance_id} in progress.",
        )


NOTIFICATIONS = Notifications()


def placements(group: Any) -> list[tuple[str | None, str]]:
    """(subnet, AZ) of each of the group's subnets."""
    ec2 = group.autoscaling_backend.ec2_backend
    subnets = [s.strip() for s in (group.vpc_zone_identifier or "").split(",") if s.strip()]
    return [(s, ec2.get_subnet(s).availability_zone) for s in subnets] or [
        (None, az) for az in group.availability_zones
    ]


def run_group_instance(
    group: Any, propagated_tags: dict[str, str], subnet_id: str | None, az: str
) -> Any:
    """One new EC2 instance of the group, from its launch template or configuration, tagged
    aws:autoscaling:groupName as Auto Scaling tags it, booting."""
    tags = dict(propagated_tags)
    tags[asg_models.ASG_NAME_TAG] = group.name
    tags.update(group.instance_tags)
    launch_template = None
    if group.ec2_launch_template:
        if group.ec2_launch_template.id:
            launch_template = {"LaunchTemplateId": group.ec2_launch_template.id}
        elif group.ec2_launch_template.name:
            launch_template = {"LaunchTemplateName": group.ec2_launch_template.name}
    reservation = group.autoscaling_backend.ec2_backend.run_instances(
        group.image_id,
        1,
        group.user_data,
        group.security_groups,
        instance_type=group.instance_type,
        tags={"instance": tags},
        placement=az,
        launch_config=group.launch_config,
        launch_template=launch_template,
        is_instance_type_default=False,
        associate_public_ip=(
            group.launch_config.associate_public_ip_address if group.launch_config else None
        ),
        subnet_id=subnet_id,
    )
    instance = reservation.instances[0]
    instance.autoscaling_group = group
    boot(instance, SETTINGS.boot_delay_of(group.name))
    return instance


def launch_balanced(self: Any, count_needed: int, propagated_tags: dict[str, str]) -> None:
    """Launch count_needed instances spread over the group's subnets, like AWS's AZ balancing,
    drawing on the warm pool first."""
    places = placements(self)
    for _ in range(count_needed):
        warmed = next(
            (s for s in WARM.get(self.name, []) if s.lifecycle_state in WARMED_STATES), None
        )
        if warmed is not None:
            # Scale-out draws on the warm pool first: the instance starts and leaves it.
            WARM[self.name].remove(warmed)
            if warmed.instance._state.name == "stopped":
                warmed.instance.start()
            boot(warmed.instance, SETTINGS.boot_delay_of(self.name))
            warmed.lifecycle_state = "Pending"
            self.instance_states.append(warmed)
            LIFECYCLE.start(self, warmed, LAUNCHING, "WarmPool", "AutoScalingGroup")
            continue
        load = {az: 0 for _, az in places}
        for state in self.instance_states:
            if state.lifecycle_state in COUNTED_STATES and state.instance.availability_zone in load:
                load[state.instance.availability_zone] += 1
        subnet_id, az = min(places, key=lambda p: load[p[1]])
        instance = run_group_instance(self, propagated_tags, subnet_id, az)
        state = asg_models.InstanceState(
            instance,
            lifecycle_state="Pending",
            protected_from_scale_in=self.new_instances_protected_from_scale_in,
        )
        self.instance_states.append(state)
        LIFECYCLE.start(self, state, LAUNCHING)
    fill_warm_pool(self)


def launch_into_warm_pool(group: Any) -> None:
    """One new instance for the warm pool: it waits on the launch hooks in Warmed:Pending:Wait."""
    places = placements(group)
    subnet_id, az = places[len(WARM.get(group.name, [])) % len(places)]
    instance = run_group_instance(group, group.get_propagated_tags(), subnet_id, az)
    state = asg_models.InstanceState(instance, lifecycle_state="Warmed:Pending")
    WARM.setdefault(group.name, []).append(state)
    LIFECYCLE.start(group, state, LAUNCHING, "EC2", "WarmPool")


def warm_pool_target(group: Any) -> int:
    """How many instances the warm pool keeps, as AWS sizes it: MaxGroupPreparedCapacity (or the
    group's maximum) less the desired capacity, and at least MinSize."""
    pool = group.warm_pool
    if pool is None:
        return 0
    prepared = pool.max_group_prepared_capacity
    prepared = group.max_size if prepared in (None, -1, "-1") else int(prepared)
    return max(int(pool.min_size or 0), int(prepared) - int(group.desired_capacity or 0))


def fill_warm_pool(group: Any) -> None:
    while len(WARM.get(group.name, [])) < warm_pool_target(group):
        launch_into_warm_pool(group)


def settle_warm(group: Any, state: Any) -> None:
    """An instance done with its hooks into the warm pool: stopped (or running) there."""
    if state in group.instance_states:
        group.instance_states.remove(state)
    pool_state = group.warm_pool.pool_state if group.warm_pool else "Stopped"
    state.lifecycle_state = f"Warmed:{pool_state}"
    if state not in WARM.setdefault(group.name, []):
        WARM[group.name].append(state)
    if pool_state != "Running" and state.instance._state.name in ("running", "pending"):
        state.instance.stop()


def reuses_on_scale_in(group: Any) -> bool:
    policy = group.warm_pool.instance_reuse_policy if group.warm_pool else None
    return bool(policy) and str(policy.get("ReuseOnScaleIn")).lower() == "true"


def boot(instance: Any, delay: float) -> None:
    """EC2 keeps a new instance `pending` while it boots, then it is `running`."""
    if delay <= 0:
        return
    instance._state.name, instance._state.code = "pending", 0

    def running() -> None:
        if instance._state.name == "pending":
            instance._state.name, instance._state.code = "running", 16

    later(delay, running)


def set_desired_capacity_with_hooks(self: Any, new_capacity: int | None) -> None:
    """Scale to the desired capacity; leaving instances go through the terminate hooks."""
    self.desired_capacity = self.min_size if new_capacity is None else new_capacity
    counted = [s for s in self.instance_states if s.lifecycle_state in COUNTED_STATES]
    delta = (self.desired_capacity or 0) - len(counted)
    if delta > 0:
        self.replace_autoscaling_group_instances(delta, self.get_propagated_tags())
    for _ in range(-delta):
        candidates = [s for s in counted if not s.protected_from_scale_in]
        if not candidates:
            break
        # AWS's default policy: leave the AZ with the most instances first.
        per_az: dict[str, int] = {}
        for s in candidates:
            per_az[s.instance.availability_zone] = per_az.get(s.instance.availability_zone, 0) + 1
        busiest = max(per_az, key=lambda az: per_az[az])
        victim = next(s for s in candidates if s.instance.availability_zone == busiest)
        counted.remove(victim)
        if reuses_on_scale_in(self):
            # Back to the warm pool instead of terminating, through the terminate hooks.
            victim.lifecycle_state = "Warmed:Pending"
            LIFECYCLE.start(self, victim, TERMINATING, "AutoScalingGroup", "WarmPool")
            continue
        begin_termination(self, victim)
    backend = self.autoscaling_backend
    if self.name in backend.autoscaling_groups:
        backend.update_attached_elbs(self.name)
        backend.update_attached_target_groups(self.name)


def begin_termination(group: Any, state: Any) -> None:
    # An instance terminated while it waits on a launch hook: that launch action is over.
    for action in LIFECYCLE.actions:
        if action.pending and action.instance_id == state.instance.id and action.transition == LAUNCHING:
            action.result = "ABANDON"
            action.ended_by = "termination"
    state.lifecycle_state = "Terminating"
    LIFECYCLE.start(group, state, TERMINATING)


def terminate_instance_with_hooks(self: Any, instance_id: str, should_decrement: bool) -> Any:
    state = next(
        (s for g in self.autoscaling_groups.values() for s in g.instance_states
         if s.instance.id == instance_id),
        None,
    )
    if state is None:
        raise ValidationError(f"Instance Id not found - No managed instance found for instance ID: {instance_id}")
    group = state.instance.autoscaling_group
    original_size = group.desired_capacity
    if should_decrement:
        group.desired_capacity = max(0, (group.desired_capacity or 0) - 1)
    begin_termination(group, state)
    if not should_decrement:
        counted = [s for s in group.instance_states if s.lifecycle_state in COUNTED_STATES]
        missing = (group.desired_capacity or 0) - len(counted)
        if missing > 0:
            group.replace_autoscaling_group_instances(missing, group.get_propagated_tags())
    return asg_models.TerminateInstanceActivity(state.instance, original_size)


def put_lifecycle_hook(self: Any) -> Any:
    name = self._get_param("LifecycleHookName")
    group_name = self._get_param("AutoScalingGroupName")
    if group_name not in self.autoscaling_backend.autoscaling_groups:
        raise ValidationError(f"Group {group_name} not found")
    existing = self.autoscaling_backend.lifecycle_hooks.get(f"{group_name}_{name}")
    transition = self._get_param("LifecycleTransition") or (
        existing.lifecycle_transition if existing else None
    )
    if transition not in (LAUNCHING, TERMINATING):
        raise ValidationError(
            "1 validation error detected: Value at 'lifecycleTransition' failed to satisfy "
            "constraint: Member must be autoscaling:EC2_INSTANCE_LAUNCHING or "
            "autoscaling:EC2_INSTANCE_TERMINATING"
        )
    timeout = self._get_int_param("HeartbeatTimeout")
    if timeout is None and existing is not None:
        timeout = existing.heartbeat_timeout
    if timeout is not None and not 30 <= int(timeout) <= 7200:
        raise ValidationError(
            f"Heartbeat timeout {timeout} is not valid: it must be between 30 and 7200 seconds"
        )
    result = self._get_param("DefaultResult") or (existing.default_result if existing else None)
    if result is not None and result not in ("CONTINUE", "ABANDON"):
        raise ValidationError(f"Invalid default result {result}: must be CONTINUE or ABANDON")
    metadata = self._get_param("NotificationMetadata")
    if metadata is None and existing is not None:
        metadata = getattr(existing, "notification_metadata", None)
    if metadata is not None and len(metadata) > 1023:
        raise ValidationError("NotificationMetadata must be at most 1023 characters")
    target = self._get_param("NotificationTargetARN")
    if target is None and existing is not None:
        target = getattr(existing, "notification_target_arn", None)
    role = self._get_param("RoleARN") or (getattr(existing, "role_arn", None) if existing else None)
    if target and not role:
        raise ValidationError("RoleARN is required when NotificationTargetARN is given")
    if target:
        # AWS publishes a test notification first, and refuses a target it cannot reach.
        group = self.autoscaling_backend.autoscaling_groups[group_name]
        NOTIFICATIONS.test_notification(group, target)
    hook = self.autoscaling_backend.create_lifecycle_hook(
        name=name, as_name=group_name, transition=transition, timeout=timeout, result=result
    )
    hook.notification_metadata = metadata
    hook.notification_target_arn = target
    hook.role_arn = role
    return EmptyResult()


def complete_lifecycle_action(self: Any) -> Any:
    token = self._get_param("LifecycleActionToken")
    instance_id = self._get_param("InstanceId")
    result = self._get_param("LifecycleActionResult")
    if result not in ("CONTINUE", "ABANDON"):
        raise ValidationError(f"Invalid lifecycle action result {result}: must be CONTINUE or ABANDON")
    if not token and not instance_id:
        raise ValidationError("Either LifecycleActionToken or InstanceId must be given")
    try:
        action = LIFECYCLE.find(
            token,
            self._get_param("AutoScalingGroupName"),
            self._get_param("LifecycleHookName"),
            instance_id,
        )
    except ValidationError:
        LIFECYCLE.record_rejected(token, instance_id)
        raise
    action.complete_calls["accepted"] += 1
    LIFECYCLE.end(action, result, "CompleteLifecycleAction")
    return EmptyResult()


def record_lifecycle_action_heartbeat(self: Any) -> Any:
    token = self._get_param("LifecycleActionToken")
    instance_id = self._get_param("InstanceId")
    action = LIFECYCLE.find(
        token,
        self._get_param("AutoScalingGroupName"),
        self._get_param("LifecycleHookName"),
        instance_id,
    )
    action.heartbeats += 1
    action.deadline = min(now() + action.heartbeat_timeout, action.global_deadline)
    return EmptyResult()


def group_or_validation_error(self: Any, group_name: str) -> Any:
    group = self.autoscaling_groups.get(group_name)
    if group is None:
        raise ValidationError(f"AutoScalingGroup name not found - AutoScalingGroup '{group_name}' not found")
    return group


def describe_warm_pool(self: Any, group_name: str) -> Any:
    """moto answers an unknown group with a 500; AWS with a ValidationError."""
    return group_or_validation_error(self, group_name).get_warm_pool()


def describe_warm_pool_response(self: Any) -> Any:
    """moto keeps no warm pool instances; the emulator does."""
    group_name = self._get_param("AutoScalingGroupName")
    config = self.autoscaling_backend.describe_warm_pool(group_name=group_name)
    return ActionResult({"WarmPoolConfiguration": config, "Instances": list(WARM.get(group_name, []))})


def put_warm_pool(self: Any, group_name: str, **kwargs: Any) -> None:
    group = group_or_validation_error(self, group_name)
    group.put_warm_pool(**kwargs)
    fill_warm_pool(group)


def describe_auto_scaling_instances(self: Any, instance_ids: list[str]) -> list[Any]:
    """Warm pool instances are Auto Scaling instances too, in their Warmed:* states."""
    states = [
        s
        for group in self.autoscaling_groups.values()
        for s in group.instance_states + WARM.get(group.name, [])
    ]
    return [s for s in states if not instance_ids or s.instance.id in instance_ids]


def tags_of(self: Any) -> list[dict[str, str]]:
    """A resource's own tags, looked up by its id. moto scans every tag of every resource for
    each one (quadratic in a describe of many resources); the answer is the same."""
    if not self.id:
        return []
    tags = self.ec2_backend.tags.get(self.id)
    if not tags:
        return []
    resource_type = EC2_PREFIX_TO_RESOURCE.get(get_prefix(self.id), "")
    return [
        {"resource_id": self.id, "key": key, "value": value, "resource_type": resource_type}
        for key, value in tags.items()
    ]


def install_patches() -> None:
    from terraform_compat import install as install_terraform_compat

    install_terraform_compat()  # what the Terraform provider needs of moto (deploy/terraform)
    TaggedEC2Resource.get_tags = tags_of
    elastic_network_interfaces.Attachment.__init__ = attachment_init
    elastic_network_interfaces.NetworkInterfaceBackend.attach_network_interface = strict_attach
    elastic_network_interfaces.NetworkInterfaceBackend.detach_network_interface = strict_detach
    Instance.terminate = terminate_releasing_enis
    elastic_ip_addresses.ElasticAddress.instance_id = property(address_instance_id)
    elastic_ip_addresses.ElasticAddressBackend.associate_address = strict_associate
    elastic_ip_addresses.ElasticAddress.network_interface_id = property(
        address_network_interface_id
    )
    asg_models.FakeAutoScalingGroup.replace_autoscaling_group_instances = launch_balanced
    asg_models.FakeAutoScalingGroup.set_desired_capacity = set_desired_capacity_with_hooks
    asg_models.AutoScalingBackend.terminate_instance = terminate_instance_with_hooks
    asg_models.AutoScalingBackend.describe_warm_pool = describe_warm_pool
    asg_models.AutoScalingBackend.put_warm_pool = put_warm_pool
    asg_models.AutoScalingBackend.describe_auto_scaling_instances = describe_auto_scaling_instances
    AutoScalingResponse.describe_warm_pool = describe_warm_pool_response
    AutoScalingResponse.put_lifecycle_hook = put_lifecycle_hook
    AutoScalingResponse.complete_lifecycle_action = complete_lifecycle_action
    AutoScalingResponse.record_lifecycle_action_heartbeat = record_lifecycle_action_heartbeat


# --------------------------------------------------------------------------------------------
# The server: one lock around moto, the control API beside it


class Faults:
    """Injected faults, for chaos tests: a share of the requests for the chosen actions fail as
    AWS fails under load (throttling with each service's own code, 500, 503), and a share are
    slow. Failed requests never reach moto, so they change nothing."""

    KINDS = ("throttle", "500", "503")

    def __init__(self) -> None:
        self.rate = 0.0
        self.slow_rate = 0.0
        self.slow_seconds = (0.05, 0.5)
        self.kinds: tuple[str, ...] = self.KINDS
        self.actions: set[str] | None = None
        # Only requests whose parameters contain this text (an instance id, say) fail.
        self.matching: str | None = None
        self.rng = random.Random()
        self.injected: dict[str, int] = {}
        self.slowed = 0
        self.lock = threading.Lock()

    def configure(self, body: dict[str, Any]) -> None:
        with self.lock:
            self.rate = float(body.get("rate", 0.0))
            self.slow_rate = float(body.get("slow_rate", 0.0))
            low, high = body.get("slow_seconds", [0.05, 0.5])
            self.slow_seconds = (float(low), float(high))
            kinds = tuple(body.get("kinds", self.KINDS))
            unknown = [k for k in kinds if k not in self.KINDS]
            if unknown or not kinds:
                raise ValueError(f"unknown fault kinds {unknown}; the kinds are {list(self.KINDS)}")
            self.kinds = kinds
            actions = body.get("actions")
            self.actions = set(actions) if actions else None
            self.matching = str(body["matching"]) if body.get("matching") else None
            if "seed" in body:
                self.rng = random.Random(body["seed"])

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "rate": self.rate,
                "slow_rate": self.slow_rate,
                "injected": dict(self.injected),
                "injected_total": sum(self.injected.values()),
                "slowed": self.slowed,
            }

    def pick(self, action: str, body: bytes = b"") -> tuple[str | None, float]:
        """The fault for this request, if any, and how long to hold it first."""
        with self.lock:
            if self.actions is not None and action not in self.actions:
                return None, 0.0
            if self.matching is not None and self.matching.encode() not in body:
                return None, 0.0
            delay = 0.0
            if self.slow_rate and self.rng.random() < self.slow_rate:
                delay = self.rng.uniform(*self.slow_seconds)
                self.slowed += 1
            if self.rate and self.rng.random() < self.rate:
                kind = self.rng.choice(self.kinds)
                self.injected[kind] = self.injected.get(kind, 0) + 1
                return kind, delay
            return None, delay


FAULTS = Faults()

# The errors AWS answers with, per service (Auto Scaling speaks awsQuery, EC2 its own dialect).
FAULT_ERRORS = {
    ("ec2", "throttle"): (503, "RequestLimitExceeded", "Request limit exceeded."),
    ("ec2", "500"): (500, "InternalError", "An internal error has occurred."),
    ("ec2", "503"): (503, "Unavailable", "The server is overloaded and can't handle the request."),
    ("autoscaling", "throttle"): (400, "Throttling", "Rate exceeded"),
    ("autoscaling", "500"): (500, "InternalFailure", "An internal error occurred."),
    ("autoscaling", "503"): (503, "ServiceUnavailable", "Service is unavailable."),
}


def fault_response(service: str, kind: str) -> tuple[int, bytes]:
    # Auto Scaling speaks awsQuery's errors; every other service here is answered as EC2 is.
    service = "autoscaling" if service == "autoscaling" else "ec2"
    status, code, message = FAULT_ERRORS[(service, kind)]
    request_id = str(uuid.uuid4())
    if service == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
    else:
        kind_of = "Sender" if status < 500 else "Receiver"
        body = (
            '<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">'
            f"<Error><Type>{kind_of}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    return status, body.encode()


def request_service(environ: dict[str, Any]) -> str:
    """The service a SigV4-signed request is for, from its credential scope
    (`Credential=KEY/DATE/REGION/SERVICE/aws4_request`); EC2 when unsigned."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    start = authorization.find("Credential=")
    if start >= 0:
        scope = authorization[start + len("Credential=") :].split(",", 1)[0].split("/")
        if len(scope) >= 5:
            return scope[3]
    return "ec2"


class RateLimits:
    """AWS's per-account, per-Region request rate limits, as token buckets (off by default).

    EC2 ("Request throttling for the Amazon EC2 API", EC2 developer guide): each API action has a
    bucket of its own, sized by its category, refilled continuously; a request takes one token
    or fails with `RequestLimitExceeded` (503). Non-mutating actions (Describe*, Get*, List*,
    Search*) hold 100 tokens and refill 20 a second; one of those requested with neither a filter
    nor pagination draws on a smaller bucket of 50 refilled at 10; mutating actions hold 50 and
    refill 5. Auto Scaling publishes no figures; it throttles per account with `Throttling`
    (400, "Rate exceeded"): modelled as one bucket for the whole service, 40 tokens refilled at 20
    a second (an assumption, set with "autoscaling"). Throttled requests never reach moto."""

    EC2_NON_MUTATING = (100.0, 20.0)
    EC2_UNFILTERED = (50.0, 10.0)
    EC2_MUTATING = (50.0, 5.0)
    AUTOSCALING = (40.0, 20.0)

    def __init__(self) -> None:
        self.enabled = False
        self.limits: dict[str, tuple[float, float]] = {}
        self.buckets: dict[str, list[float]] = {}
        self.allowed: dict[str, int] = {}
        self.throttled: dict[str, int] = {}
        # The category each bucket seen so far was sized by.
        self.categories: dict[str, str] = {}
        # When each throttled request came, for pictures of a run.
        self.throttle_times: list[tuple[float, str]] = []
        self.lock = threading.Lock()

    def configure(self, body: dict[str, Any]) -> None:
        limits: dict[str, tuple[float, float]] = {}
        for name, default in (
            ("ec2_non_mutating", self.EC2_NON_MUTATING),
            ("ec2_unfiltered", self.EC2_UNFILTERED),
            ("ec2_mutating", self.EC2_MUTATING),
            ("autoscaling", self.AUTOSCALING),
        ):
            value = body.get(name, default)
            if (
                not isinstance(value, (list, tuple))
                or len(value) != 2
                or not all(isinstance(v, (int, float)) and v > 0 for v in value)
            ):
                raise ValueError(f"{name} must be [bucket size, refill per second], both > 0")
            limits[name] = (float(value[0]), float(value[1]))
        # Only API actions whose bucket differs from their category's are named here.
        for action, value in (body.get("actions") or {}).items():
            limits[f"action:{action}"] = (float(value[0]), float(value[1]))
        with self.lock:
            self.enabled = bool(body.get("enabled", True))
            self.limits = limits
            self.buckets.clear()
            self.categories.clear()
            self.allowed.clear()
            self.throttled.clear()
            self.throttle_times.clear()

    def bucket_of(self, service: str, action: str, form: dict[str, list[str]]) -> tuple[str, str] | None:
        """The bucket a request draws on, and its category; None for services not limited."""
        if service == "autoscaling":
            return "autoscaling", "autoscaling"
        if service != "ec2":
            return None
        if f"action:{action}" in self.limits:
            return action, f"action:{action}"
        if action.startswith(("Describe", "Get", "List", "Search")):
            filtered = any(k.startswith("Filter.") for k in form) or any(
                k in form for k in ("MaxResults", "NextToken")
            )
            if not filtered:
                return f"{action} (unfiltered)", "ec2_unfiltered"
            return action, "ec2_non_mutating"
        return action, "ec2_mutating"

    def take(self, service: str, action: str, form: dict[str, list[str]]) -> bool:
        """Whether the request may go on; a refusal is counted."""
        with self.lock:
            if not self.enabled:
                return True
            found = self.bucket_of(service, action, form)
            if found is None:
                return True
            bucket, category = found
            self.categories[bucket] = category
            size, refill = self.limits[category]
            t = now()
            tokens, last = self.buckets.get(bucket, [size, t])
            tokens = min(size, tokens + (t - last) * refill)
            if tokens >= 1.0:
                self.buckets[bucket] = [tokens - 1.0, t]
                self.allowed[bucket] = self.allowed.get(bucket, 0) + 1
                return True
            self.buckets[bucket] = [tokens, t]
            self.throttled[bucket] = self.throttled.get(bucket, 0) + 1
            self.throttle_times.append((t, bucket))
            del self.throttle_times[:-200_000]
            return False

    def view(self) -> dict[str, Any]:
        with self.lock:
            return {
                "enabled": self.enabled,
                "limits": {k: list(v) for k, v in self.limits.items()},
                "buckets": {
                    bucket: {
                        "category": category,
                        "size": self.limits[category][0],
                        "refill_per_second": self.limits[category][1],
                        "allowed": self.allowed.get(bucket, 0),
                        "throttled": self.throttled.get(bucket, 0),
                    }
                    for bucket, category in self.categories.items()
                },
                "throttled_total": sum(self.throttled.values()),
                "throttle_times": [[t, b] for t, b in self.throttle_times],
            }


RATE_LIMITS = RateLimits()
RATE_LIMITS.configure({"enabled": False})


# Parameters worth recording for each request, so tests can see exactly what was asked.
RECORDED_PARAMS = (
    "NetworkInterfaceId",
    "InstanceId",
    "AttachmentId",
    "DeviceIndex",
    "AllocationId",
    "AssociationId",
    "LifecycleActionToken",
    "LifecycleActionResult",
    "AutoScalingGroupName",
)


class Calls:
    """Every request the emulator served: counts per action, and a log of the mutating ones."""

    def __init__(self) -> None:
        self.by_action: dict[str, int] = {}
        self.log: list[dict[str, Any]] = []
        # Seconds moto spent serving requests under the lock: the emulator's own serial work.
        self.busy_seconds = 0.0
        self.busy_by_action: dict[str, float] = {}

    def count(self, action: str) -> None:
        self.by_action[action] = self.by_action.get(action, 0) + 1

    def record(self, action: str, form: dict[str, list[str]], status: str, payload: bytes) -> None:
        if action.startswith("Describe"):
            return
        entry: dict[str, Any] = {"action": action, "status": int(status.split()[0])}
        for key in RECORDED_PARAMS:
            if key in form:
                entry[key] = form[key][0]
        if entry["status"] >= 400:
            text = payload.decode("utf-8", "replace")
            start, end = text.find("<Code>"), text.find("</Code>")
            if start >= 0 and end > start:
                entry["code"] = text[start + len("<Code>") : end]
        self.log.append(entry)
        del self.log[:-100_000]


CALLS = Calls()


class ReadLag:
    """EC2's eventual consistency: "the result of an API command you run that affects your
    Amazon EC2 resources might not be immediately visible to all subsequent commands you run"
    (EC2 developer guide, "Eventual consistency"). With a lag of L seconds, each EC2 Describe
    call answers as that same call did at a moment up to L seconds ago (chosen at random, or
    always L ago in mode "max"): the latest answer given at or before that moment, or the
    earliest one still remembered. Auto Scaling's reads are not lagged."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.mode = "random"
        self.rng = random.Random()
        self.history: dict[str, list[tuple[float, list[tuple[str, str]], bytes]]] = {}
        self.stale_answers = 0

    def configure(self, seconds: float, mode: str, seed: Any = None) -> None:
        if seconds < 0 or mode not in ("random", "max"):
            raise ValueError("read_lag must be >= 0 and lag_mode \"random\" or \"max\"")
        self.seconds, self.mode = float(seconds), mode
        if seed is not None:
            self.rng = random.Random(seed)
        if self.seconds == 0:
            self.history.clear()

    def answer(
        self, key: str, headers: list[tuple[str, str]], payload: bytes
    ) -> tuple[list[tuple[str, str]], bytes]:
        t = now()
        entries = self.history.setdefault(key, [])
        entries.append((t, headers, payload))
        # Forget what no request can be answered with any more: everything before the last
        # answer given at or before t - seconds.
        horizon = t - self.seconds
        oldest = 0
        for i, (at, _, _) in enumerate(entries):
            if at <= horizon:
                oldest = i
        del entries[:oldest]
        lag = self.seconds if self.mode == "max" else self.rng.uniform(0, self.seconds)
        chosen = entries[0]
        for entry in entries:
            if entry[0] > t - lag:
                break
            chosen = entry
        if chosen[2] != payload:
            self.stale_answers += 1
        return chosen[1], chosen[2]


LAG = ReadLag()


def request_key(action: str, form: dict[str, list[str]], environ: dict[str, Any]) -> str:
    """The same request, whatever its signature: the action and its parameters."""
    items = sorted((k, v) for k, values in form.items() for v in values)
    return json.dumps([action, environ.get("QUERY_STRING", ""), items])


def request_action(environ: dict[str, Any], body: bytes) -> str:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    form = parse_qs(body.decode("utf-8", "replace")) if body else {}
    values = form.get("Action") or query.get("Action")
    if values:
        return values[0]
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    return target.rsplit(".", 1)[-1] if target else "unknown"


class Emulator:
    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_pinhook/"):
            return self.control(environ, start_response, path[len("/_pinhook/") :])
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        action = request_action(environ, body)
        form = parse_qs(body.decode("utf-8", "replace")) if body else {}
        fault, delay = FAULTS.pick(action, body + environ.get("QUERY_STRING", "").encode())
        delay += SETTINGS.latency
        if delay:
            time.sleep(delay)  # outside the lock: a slow answer does not hold the others up
        service = request_service(environ)
        if fault is None and not RATE_LIMITS.take(service, action, form):
            fault = "throttle"
        if fault is not None:
            status, payload = fault_response(service, fault)
            with LOCK:
                CALLS.count(action)
                CALLS.record(action, form, f"{status} Fault", payload)
            reason = {400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable"}[status]
            start_response(
                f"{status} {reason}",
                [("Content-Type", "text/xml"), ("Content-Length", str(len(payload)))],
            )
            return [payload]
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"] = status
            captured["headers"] = headers
            return lambda _data: None

        with LOCK:
            served = time.perf_counter()
            CALLS.count(action)
            LIFECYCLE.expire()
            chunks = self.app(environ, capture)
            try:
                payload = b"".join(chunks)
            finally:
                close = getattr(chunks, "close", None)
                if close:
                    close()
            CALLS.record(action, form, captured["status"], payload)
            if (
                LAG.seconds > 0
                and service == "ec2"
                and action.startswith("Describe")
                and captured["status"].startswith("200")
            ):
                captured["headers"], payload = LAG.answer(
                    request_key(action, form, environ), captured["headers"], payload
                )
            spent = time.perf_counter() - served
            CALLS.busy_seconds += spent
            CALLS.busy_by_action[action] = CALLS.busy_by_action.get(action, 0.0) + spent
        start_response(captured["status"], captured["headers"])
        return [payload]

    def control(self, environ: dict[str, Any], start_response: Any, route: str) -> Any:
        method = environ.get("REQUEST_METHOD", "GET")
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return reply(start_response, 400, {"error": "the body is not JSON"})
        with LOCK:
            LIFECYCLE.expire()
            if route == "health":
                return reply(start_response, 200, {"status": "ok"})
            if route == "lifecycle-actions" and method == "GET":
                actions = [
                    a.describe()
                    for a in LIFECYCLE.actions
                    if (query.get("all") == "1" or a.pending)
                    and (not query.get("group") or a.group_name == query["group"])
                    and (not query.get("instance") or a.instance_id == query["instance"])
                ]
                return reply(start_response, 200, {"actions": actions})
            if route == "claimers" and method == "POST":
                victim = body.get("instance_id")
                winners = body.get("by_instance_ids") or (
                    [body["by_instance_id"]] if body.get("by_instance_id") else []
                )
                if not victim or not winners:
                    return reply(
                        start_response, 400, {"error": "need instance_id and by_instance_id(s)"}
                    )
                CLAIMERS.arm(victim, winners)
                return reply(start_response, 200, {"armed": {"victim": victim, "winners": winners}})
            if route == "claimers" and method == "GET":
                return reply(start_response, 200, {"fired": CLAIMERS.fired, "armed": CLAIMERS.rules})
            if route == "calls" and method == "GET":
                return reply(
                    start_response,
                    200,
                    {
                        "calls": CALLS.by_action,
                        "total": sum(CALLS.by_action.values()),
                        "busy_seconds": CALLS.busy_seconds,
                        "busy_seconds_by_action": CALLS.busy_by_action,
                    },
                )
            if route == "rate-limits" and method == "POST":
                try:
                    RATE_LIMITS.configure(body)
                except (ValueError, TypeError, IndexError) as err:
                    return reply(start_response, 400, {"error": str(err)})
                return reply(start_response, 200, RATE_LIMITS.view())
            if route == "rate-limits" and method == "GET":
                return reply(start_response, 200, RATE_LIMITS.view())
            if route == "faults" and method == "POST":
                try:
                    FAULTS.configure(body)
                except (ValueError, TypeError) as err:
                    return reply(start_response, 400, {"error": str(err)})
                return reply(start_response, 200, FAULTS.stats())
            if route == "faults" and method == "GET":
                return reply(start_response, 200, FAULTS.stats())
            if route == "requests" and method == "GET":
                wanted = {k: v for k, v in query.items()}
                found = [e for e in CALLS.log if all(str(e.get(k)) == v for k, v in wanted.items())]
                return reply(start_response, 200, {"requests": found})
            if route == "settings" and method == "POST":
                try:
                    apply_settings(body)
                except (ValueError, TypeError) as err:
                    return reply(start_response, 400, {"error": str(err)})
                return reply(start_response, 200, settings_view())
            if route == "settings" and method == "GET":
                return reply(start_response, 200, settings_view())
            if route == "sns-records" and method == "GET":
                records = NOTIFICATIONS.sns_records.get(query.get("topic", ""), [])
                return reply(start_response, 200, {"records": records})
            if route == "adopt" and method == "POST":
                try:
                    return reply(start_response, 200, adopt(body))
                except (ValueError, TypeError, KeyError) as err:
                    return reply(start_response, 400, {"error": str(err)})
        return reply(start_response, 404, {"error": f"no control route {method} /_pinhook/{route}"})


def adopt(body: dict[str, Any]) -> dict[str, Any]:
    """POST /_pinhook/adopt: gives an instance the id a sample event names, and its pending
    lifecycle actions the event's token, so that a replayed sample acts on a real instance
    (emulator/seed.py). {"instance_id", "as", "tokens": {hook: token}, "region"}."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[DEFAULT_ACCOUNT_ID][body.get("region") or "us-east-1"]
    current, wanted = str(body["instance_id"]), str(body.get("as") or body["instance_id"])
    instance = backend.get_instance(current)
    if wanted != current:
        try:
            backend.get_instance(wanted)
        except EC2ClientError:
            pass
        else:
            raise ValueError(f"an instance {wanted} exists already")
        instance.id = wanted
        if current in backend.tags:
            backend.tags[wanted] = backend.tags.pop(current)
        for action in LIFECYCLE.actions:
            if action.instance_id == current:
                action.instance_id = wanted
        group = getattr(instance, "autoscaling_group", None)
        if group is not None:
            for state in group.instance_states + WARM.get(group.name, []):
                if state.instance is instance:
                    state.instance_id = wanted
    adopted = {}
    for hook, token in (body.get("tokens") or {}).items():
        action = next(
            (
                a
                for a in LIFECYCLE.actions
                if a.pending and a.instance_id == wanted and a.hook_name == hook
            ),
            None,
        )
        if action is None:
            raise ValueError(f"{wanted} waits on no lifecycle action of hook {hook}")
        action.token = str(token)
        adopted[hook] = action.describe()
    return {"instance_id": wanted, "actions": adopted}


def apply_settings(body: dict[str, Any]) -> None:
    """POST /_pinhook/settings: delays of the asynchronous state changes, the boot delay (for
    every group, or one group with "group"), and the read lag."""
    unknown = set(body) - {
        "attach_delay", "detach_delay", "boot_delay", "group", "read_lag", "lag_mode", "lag_seed",
        "latency",
    }
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}")
    for key in ("attach_delay", "detach_delay", "latency"):
        if key in body:
            if float(body[key]) < 0:
                raise ValueError(f"{key} must be >= 0")
            setattr(SETTINGS, key, float(body[key]))
    if "boot_delay" in body:
        delay = float(body["boot_delay"])
        if body.get("group"):
            SETTINGS.group_boot_delays[str(body["group"])] = delay
        else:
            SETTINGS.boot_delay = delay
    if "read_lag" in body:
        LAG.configure(float(body["read_lag"]), str(body.get("lag_mode", "random")), body.get("lag_seed"))


def settings_view() -> dict[str, Any]:
    return {
        "attach_delay": SETTINGS.attach_delay,
        "detach_delay": SETTINGS.detach_delay,
        "latency": SETTINGS.latency,
        "boot_delay": SETTINGS.boot_delay,
        "group_boot_delays": dict(SETTINGS.group_boot_delays),
        "read_lag": LAG.seconds,
        "lag_mode": LAG.mode,
        "stale_answers": LAG.stale_answers,
    }


def reply(start_response: Any, status: int, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]


def watch_parent(pid: int, server: Any) -> None:
    """Stop serving when the process that started the emulator is gone."""

    def loop() -> None:
        while True:
            time.sleep(0.5)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                server.shutdown()
                return
            except PermissionError:
                pass

    threading.Thread(target=loop, daemon=True).start()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5055, help="0 picks a free port")
    parser.add_argument("--port-file", help="write the chosen port here once serving")
    parser.add_argument("--parent-pid", type=int, help="exit when this process exits")
    parser.add_argument("--attach-delay", type=float, default=SETTINGS.attach_delay)
    parser.add_argument("--detach-delay", type=float, default=SETTINGS.detach_delay)
    parser.add_argument(
        "--boot-delay", type=float, default=0.0, help="seconds a new group instance stays pending"
    )
    parser.add_argument(
        "--read-lag", type=float, default=0.0, help="seconds EC2's describes may lag its writes"
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds added to every AWS request"
    )
    parser.add_argument(
        "--rate-limits",
        action="store_true",
        help="throttle as AWS does per account (EC2's token buckets, an Auto Scaling rate)",
    )
    args = parser.parse_args(argv)
    SETTINGS.attach_delay = args.attach_delay
    SETTINGS.detach_delay = args.detach_delay
    SETTINGS.boot_delay = args.boot_delay
    SETTINGS.latency = args.latency
    RATE_LIMITS.configure({"enabled": args.rate_limits})
    LAG.configure(args.read_lag, "random")

    install_patches()
    app = Emulator(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", args.port, app, threaded=True, request_handler=quiet_handler())
    port = server.server_address[1]
    if args.port_file:
        tmp = f"{args.port_file}.tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    if args.parent_pid:
        watch_parent(args.parent_pid, server)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"pinhook emulator listening on http://127.0.0.1:{port}", flush=True)
    server.serve_forever()
    return 0


def quiet_handler() -> type:
    class Handler(MotoRequestHandler):
        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            if os.environ.get("PINHOOK_EMULATOR_VERBOSE"):
                super().log_request(code, size)

    return Handler


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
