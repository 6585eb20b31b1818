"""Auto Scaling groups scaling as AWS scales them: new instances balanced over the group's AZs
(drawing on the warm pool first), through the launch hooks; leaving instances through the
terminate hooks; an instance terminated in EC2 leaves its group at once."""

from __future__ import annotations

from typing import Any

from moto.autoscaling import models as asg_models
from moto.autoscaling.exceptions import ValidationError

from . import warm_pools
from .lifecycle import LAUNCHING, TERMINATING
from .state import current

# Instances in these states count towards the desired capacity, as in AWS.
COUNTED_STATES = {"Pending", "Pending:Wait", "Pending:Proceed", "InService"}


def placements(group: Any) -> list[tuple[str | None, str]]:
    """(subnet, AZ) of each of the group's subnets."""
    ec2 = group.autoscaling_backend.ec2_backend
    subnets = [s.strip() for s in (group.vpc_zone_identifier or "").split(",") if s.strip()]
    return [(s, ec2.get_subnet(s).availability_zone) for s in subnets] or [
        (None, az) for az in group.availability_zones
    ]


def run_group_instance(group: Any, propagated_tags: dict[str, str], subnet_id: str | None, az: str) -> Any:
    """One new EC2 instance of the group, from its launch template or configuration, tagged
    aws:autoscaling:groupName as Auto Scaling tags it, booting (the group's boot delay: see
    ec2_strict.run_instances)."""
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
    return instance


def launch_balanced(self: Any, count_needed: int, propagated_tags: dict[str, str]) -> None:
    """Launch count_needed instances spread over the group's subnets, like AWS's AZ balancing,
    drawing on the warm pool first."""
    st = current()
    places = placements(self)
    for _ in range(count_needed):
        warmed = next(
            (s for s in st.warm_pool(self.name) if s.lifecycle_state in warm_pools.WARMED_STATES), None
        )
        if warmed is not None:
            # Scale-out draws on the warm pool first: the instance starts (and boots) and leaves it.
            st.warm[self.name].remove(warmed)
            warm_pools.start_warmed(self, warmed.instance)
            warmed.lifecycle_state = "Pending"
            self.instance_states.append(warmed)
            st.lifecycle.start(self, warmed, LAUNCHING, "WarmPool", "AutoScalingGroup")
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
        st.lifecycle.start(self, state, LAUNCHING)
    warm_pools.fill_warm_pool(self)


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
        if warm_pools.reuses_on_scale_in(self):
            # Back to the warm pool instead of terminating, through the terminate hooks.
            victim.lifecycle_state = "Warmed:Pending"
            current().lifecycle.start(self, victim, TERMINATING, "AutoScalingGroup", "WarmPool")
            continue
        begin_termination(self, victim)
    backend = self.autoscaling_backend
    if self.name in backend.autoscaling_groups:
        backend.update_attached_elbs(self.name)
        backend.update_attached_target_groups(self.name)


def begin_termination(group: Any, state: Any) -> None:
    lifecycle = current().lifecycle
    # An instance terminated while it waits on a launch hook: that launch action is over.
    lifecycle.end_for_termination(state.instance.id, LAUNCHING)
    state.lifecycle_state = "Terminating"
    lifecycle.start(group, state, TERMINATING)


def terminate_instance_with_hooks(self: Any, instance_id: str, should_decrement: bool) -> Any:
    state = next(
        (
            s
            for g in self.autoscaling_groups.values()
            for s in g.instance_states
            if s.instance.id == instance_id
        ),
        None,
    )
    if state is None:
        raise ValidationError(
            f"Instance Id not found - No managed instance found for instance ID: {instance_id}"
        )
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


def leave_group_on_termination(instance: Any) -> None:
    """An instance of a group terminated through EC2 (a Spot reclaim, a person) leaves the group
    at once, as Auto Scaling's health check would see it, without its terminate hooks."""
    group = getattr(instance, "autoscaling_group", None)
    if group is None:
        return
    st = current()
    for states in (group.instance_states, st.warm_pool(group.name)):
        for state in [s for s in states if s.instance is instance]:
            states.remove(state)
    st.lifecycle.end_for_termination(instance.id)


def install() -> None:
    asg_models.FakeAutoScalingGroup.replace_autoscaling_group_instances = launch_balanced
    asg_models.FakeAutoScalingGroup.set_desired_capacity = set_desired_capacity_with_hooks
    asg_models.AutoScalingBackend.terminate_instance = terminate_instance_with_hooks
