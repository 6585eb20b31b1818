"""Auto Scaling's read lag: for asg_lag seconds after a lifecycle-state change, reads show the
state before it; writes and lifecycle actions are not lagged."""

from __future__ import annotations

from conftest import LAUNCH_HOOK, Emulator


def group_listing(emu: Emulator, group: str) -> list[tuple[str, str]]:
    [found] = emu.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    return sorted((i["InstanceId"], i["LifecycleState"]) for i in found["Instances"])


def test_a_launch_reads_pending_until_the_lag_has_passed_then_pending_wait(emu: Emulator) -> None:
    # Given Auto Scaling's reads lagging by 5 s
    emu.clock(tick=0)
    net = emu.network()
    group = emu.group([net["a"]], {"launch": LAUNCH_HOOK})
    emu.settings(asg_lag=5.0)
    stale_before = emu.control("GET", "settings")["asg_stale_answers"]

    # When the group launches an instance, which waits on its launch hook
    emu.asg.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=1)
    [action] = emu.actions(group)
    instance = action["instance_id"]

    # Then reads show it Pending until the lag has passed, then Pending:Wait
    assert emu.group_instances(group) == [(instance, "Pending")]
    assert group_listing(emu, group) == [(instance, "Pending")]
    emu.advance(4.9)
    assert emu.group_instances(group) == [(instance, "Pending")]
    emu.advance(0.1)
    assert emu.group_instances(group) == [(instance, "Pending:Wait")]
    assert group_listing(emu, group) == [(instance, "Pending:Wait")]
    assert emu.control("GET", "settings")["asg_stale_answers"] >= stale_before + 3


def test_lifecycle_actions_are_not_lagged(emu: Emulator) -> None:
    emu.clock(tick=0)
    net = emu.network()
    group = emu.group([net["a"]], {"launch": LAUNCH_HOOK})
    emu.settings(asg_lag=5.0)
    emu.asg.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=1)
    [action] = emu.actions(group)

    # The action completes at once, though reads do not show the instance waiting yet
    emu.asg.complete_lifecycle_action(
        AutoScalingGroupName=group,
        LifecycleHookName="launch",
        LifecycleActionToken=action["token"],
        LifecycleActionResult="CONTINUE",
    )

    assert emu.group_instances(group) == [(action["instance_id"], "Pending")]
    emu.advance(5)
    assert emu.group_instances(group) == [(action["instance_id"], "InService")]


def test_with_unlisted_a_new_instance_is_left_out_until_the_lag_has_passed(emu: Emulator) -> None:
    emu.clock(tick=0)
    net = emu.network()
    group = emu.group([net["a"]], {"launch": LAUNCH_HOOK})
    emu.settings(asg_lag=5.0, asg_lag_unlisted=True)

    emu.asg.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=1)
    [action] = emu.actions(group)

    assert emu.group_instances(group) == []
    assert group_listing(emu, group) == []
    assert (
        emu.asg.describe_auto_scaling_instances(InstanceIds=[action["instance_id"]])["AutoScalingInstances"]
        == []
    )
    emu.advance(5)
    assert emu.group_instances(group) == [(action["instance_id"], "Pending:Wait")]


def test_a_terminated_instance_reads_in_service_during_the_lag(emu: Emulator) -> None:
    # Given an instance in service
    emu.clock(tick=0)
    net = emu.network()
    group = emu.group([net["a"]])
    emu.asg.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=1)
    [(instance, state)] = emu.group_instances(group)
    assert state == "InService"
    emu.advance(10)
    emu.settings(asg_lag=3.0)

    # When it is terminated (no terminate hook: it leaves the group at once)
    emu.asg.terminate_instance_in_auto_scaling_group(InstanceId=instance, ShouldDecrementDesiredCapacity=True)

    # Then reads show it in service for the lag, then gone
    assert emu.group_instances(group) == [(instance, "InService")]
    assert group_listing(emu, group) == [(instance, "InService")]
    emu.advance(3)
    assert emu.group_instances(group) == []
    assert group_listing(emu, group) == []


def test_the_settings_show_the_lag(emu: Emulator) -> None:
    shown = emu.settings(asg_lag=2.5, asg_lag_unlisted=True)

    assert (shown["asg_lag"], shown["asg_lag_unlisted"]) == (2.5, True)
    assert emu.call("POST", "settings", {"asg_lag": -1})[0] == 400
