"""Auto Scaling's lifecycle hooks and actions: instances wait in Pending:Wait or Terminating:Wait
with a token per hook until CompleteLifecycleAction, or the hook's timeout on the emulator's
clock; PutLifecycleHook keeps NotificationMetadata and checks what AWS checks."""

from __future__ import annotations

import uuid
from typing import Any

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import EmptyResult

from . import warm_pools
from .clock import iso_millis
from .state import current

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
DETAIL_TYPE = {
    LAUNCHING: "EC2 Instance-launch Lifecycle Action",
    TERMINATING: "EC2 Instance-terminate Lifecycle Action",
}
WAIT_STATE = {LAUNCHING: "Pending:Wait", TERMINATING: "Terminating:Wait"}


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
        self.started = current().now()
        self.deadline = self.started + self.heartbeat_timeout
        self.global_deadline = self.started + min(172800, 100 * self.heartbeat_timeout)
        self.result: str | None = None
        self.ended_by: str | None = None
        self.complete_calls = {"accepted": 0, "rejected": 0}
        self.heartbeats = 0
        self.origin = origin or ("EC2" if transition == LAUNCHING else "AutoScalingGroup")
        self.destination = destination or ("AutoScalingGroup" if transition == LAUNCHING else "EC2")
        self.time = iso_millis(self.started)
        self.timer: Any = None

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
            if hook.auto_scaling_group_name == group.name and hook.lifecycle_transition == transition
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
        state.lifecycle_state = "Warmed:Pending:Wait" if destination == "WarmPool" else WAIT_STATE[transition]
        for hook in hooks:
            action = Action(group, hook, state, transition, origin, destination)
            self.actions.append(action)
            self.arm_timeout(action)
            target = getattr(hook, "notification_target_arn", None)
            if target:
                current().notifications.lifecycle_action(action, target)

    def arm_timeout(self, action: Action) -> None:
        """A wait neither completed nor heartbeated within HeartbeatTimeout (nor within the
        global timeout) ends with the hook's DefaultResult."""
        if action.timer is not None:
            action.timer.cancel()
        due = min(action.deadline, action.global_deadline)

        def expire() -> None:
            if action.pending and current().now() >= due:
                self.end(action, action.default_result, "timeout")

        action.timer = current().later(
            due - current().now(), f"lifecycle timeout {action.hook_name} {action.instance_id}", expire
        )

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

    def end_for_termination(self, instance_id: str, transition: str | None = None) -> None:
        """An instance terminated while it waits: its actions (of that transition) are over."""
        for action in self.actions:
            if (
                action.pending
                and action.instance_id == instance_id
                and (transition is None or action.transition == transition)
            ):
                action.result, action.ended_by = "ABANDON", "termination"
                if action.timer is not None:
                    action.timer.cancel()

    def end(self, action: Action, result: str, ended_by: str) -> None:
        action.result = result
        action.ended_by = ended_by
        if action.timer is not None:
            action.timer.cancel()
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
                for s in group.instance_states + current().warm_pool(group.name)
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
        warm = current().warm
        if destination == "WarmPool" and not (transition == LAUNCHING and result == "ABANDON"):
            warm_pools.settle_warm(group, state)
            return
        if state in warm.get(group.name, []):
            warm[group.name].remove(state)
            group.autoscaling_backend.ec2_backend.terminate_instances([state.instance.id])
            return
        if transition == LAUNCHING and result == "CONTINUE":
            state.lifecycle_state = "InService"
            return
        # A terminating instance ends whatever the result; an abandoned launch is terminated
        # (the emulator does not launch a replacement, so tests see exactly what happened).
        if transition == TERMINATING:
            state.lifecycle_state = "Terminating:Proceed"
        group.instance_states = [s for s in group.instance_states if s is not state]
        group.autoscaling_backend.ec2_backend.terminate_instances([state.instance.id])


# --------------------------------------------------------------------------------------------
# The Auto Scaling API of hooks and actions


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
        current().notifications.test_notification(group, target)
    hook = self.autoscaling_backend.create_lifecycle_hook(
        name=name, as_name=group_name, transition=transition, timeout=timeout, result=result
    )
    hook.notification_metadata = metadata
    hook.notification_target_arn = target
    hook.role_arn = role
    return EmptyResult()


def complete_lifecycle_action(self: Any) -> Any:
    lifecycle = current().lifecycle
    token = self._get_param("LifecycleActionToken")
    instance_id = self._get_param("InstanceId")
    result = self._get_param("LifecycleActionResult")
    if result not in ("CONTINUE", "ABANDON"):
        raise ValidationError(f"Invalid lifecycle action result {result}: must be CONTINUE or ABANDON")
    if not token and not instance_id:
        raise ValidationError("Either LifecycleActionToken or InstanceId must be given")
    try:
        action = lifecycle.find(
            token,
            self._get_param("AutoScalingGroupName"),
            self._get_param("LifecycleHookName"),
            instance_id,
        )
    except ValidationError:
        lifecycle.record_rejected(token, instance_id)
        raise
    action.complete_calls["accepted"] += 1
    lifecycle.end(action, result, "CompleteLifecycleAction")
    return EmptyResult()


def record_lifecycle_action_heartbeat(self: Any) -> Any:
    lifecycle = current().lifecycle
    action = lifecycle.find(
        self._get_param("LifecycleActionToken"),
        self._get_param("AutoScalingGroupName"),
        self._get_param("LifecycleHookName"),
        self._get_param("InstanceId"),
    )
    action.heartbeats += 1
    action.deadline = min(current().now() + action.heartbeat_timeout, action.global_deadline)
    lifecycle.arm_timeout(action)
    return EmptyResult()


def install() -> None:
    AutoScalingResponse.put_lifecycle_hook = put_lifecycle_hook
    AutoScalingResponse.complete_lifecycle_action = complete_lifecycle_action
    AutoScalingResponse.record_lifecycle_action_heartbeat = record_lifecycle_action_heartbeat
