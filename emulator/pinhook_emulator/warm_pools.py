"""Warm pools, which moto keeps no instances for: instances launched into the pool wait on the
launch hooks in Warmed:Pending:Wait, then rest stopped (or running) until a scale-out draws on
them; the pool refills to its size; with ReuseOnScaleIn a scale-in returns instances to it."""

from __future__ import annotations

from typing import Any

from moto.autoscaling import models as asg_models
from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult

from .state import current

# Instances waiting in a warm pool, ready to be drawn on.
WARMED_STATES = {"Warmed:Stopped", "Warmed:Running", "Warmed:Hibernated"}


def launch_into_warm_pool(group: Any) -> None:
    """One new instance for the warm pool: it waits on the launch hooks in Warmed:Pending:Wait."""
    from . import groups
    from .lifecycle import LAUNCHING

    st = current()
    places = groups.placements(group)
    subnet_id, az = places[len(st.warm_pool(group.name)) % len(places)]
    instance = groups.run_group_instance(group, group.get_propagated_tags(), subnet_id, az)
    state = asg_models.InstanceState(instance, lifecycle_state="Warmed:Pending")
    st.warm.setdefault(group.name, []).append(state)
    st.lifecycle.start(group, state, LAUNCHING, "EC2", "WarmPool")


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
    while len(current().warm_pool(group.name)) < warm_pool_target(group):
        launch_into_warm_pool(group)


def settle_warm(group: Any, state: Any) -> None:
    """An instance done with its hooks into the warm pool: stopped (or running) there."""
    warm = current().warm
    if state in group.instance_states:
        group.instance_states.remove(state)
    pool_state = group.warm_pool.pool_state if group.warm_pool else "Stopped"
    state.lifecycle_state = f"Warmed:{pool_state}"
    if state not in warm.setdefault(group.name, []):
        warm[group.name].append(state)
    if pool_state != "Running" and state.instance._state.name in ("running", "pending"):
        state.instance.stop()


def start_warmed(group: Any, instance: Any) -> None:
    """A warmed instance drawn by a scale-out: a stopped one starts and boots again (EC2's
    pending, then running); a running one carries on."""
    if instance._state.name == "stopped":
        instance.start()


def reuses_on_scale_in(group: Any) -> bool:
    policy = group.warm_pool.instance_reuse_policy if group.warm_pool else None
    return bool(policy) and str(policy.get("ReuseOnScaleIn")).lower() == "true"


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
    return ActionResult({"WarmPoolConfiguration": config, "Instances": list(current().warm_pool(group_name))})


def put_warm_pool(self: Any, group_name: str, **kwargs: Any) -> None:
    group = group_or_validation_error(self, group_name)
    group.put_warm_pool(**kwargs)
    fill_warm_pool(group)


def install() -> None:
    asg_models.AutoScalingBackend.describe_warm_pool = describe_warm_pool
    asg_models.AutoScalingBackend.put_warm_pool = put_warm_pool
    AutoScalingResponse.describe_warm_pool = describe_warm_pool_response
