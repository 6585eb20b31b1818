"""EC2 instance state-change events: pending and running (after the boot), stopping and stopped,
shutting-down and terminated, each as EventBridge delivers it, on the emulator's clock."""

from __future__ import annotations

import re

from conftest import REGION, Emulator


def states(emu: Emulator, instance: str) -> list[str]:
    return [e["detail"]["state"] for e in emu.control("GET", f"ec2-events?instance={instance}")["events"]]


def test_a_plain_instance_reports_each_state_through_run_stop_start_and_terminate(emu: Emulator) -> None:
    # Given instances of no group that boot for 5 s
    emu.clock(tick=0)
    emu.settings(plain_boot_delay=5.0)
    net = emu.network()

    # When one is run, boots, is stopped, started, and terminated
    [instance] = emu.lone_instance(net["a"])
    assert states(emu, instance) == ["pending"]
    emu.advance(4.9)
    assert states(emu, instance) == ["pending"]
    emu.advance(0.1)
    assert states(emu, instance) == ["pending", "running"]
    emu.ec2.stop_instances(InstanceIds=[instance])
    emu.ec2.start_instances(InstanceIds=[instance])
    assert emu.ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["State"][
        "Name"
    ] == ("pending")
    emu.advance(5)
    emu.ec2.terminate_instances(InstanceIds=[instance])

    # Then each state came as one event, in order
    assert states(emu, instance) == [
        "pending",
        "running",
        "stopping",
        "stopped",
        "pending",
        "running",
        "shutting-down",
        "terminated",
    ]


def test_an_event_is_shaped_as_eventbridge_delivers_it(emu: Emulator) -> None:
    emu.clock(tick=0)
    net = emu.network()
    [instance] = emu.lone_instance(net["a"])

    [pending, running] = emu.control("GET", f"ec2-events?instance={instance}")["events"]

    assert pending["detail-type"] == "EC2 Instance State-change Notification"
    assert pending["source"] == "aws.ec2"
    assert pending["version"] == "0"
    assert pending["account"] == "123456789012"
    assert pending["region"] == REGION
    assert pending["resources"] == [f"arn:aws:ec2:{REGION}:123456789012:instance/{instance}"]
    assert pending["detail"] == {"instance-id": instance, "state": "pending"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", pending["time"])
    assert pending["id"] != running["id"]


def test_a_group_instance_is_running_when_its_boot_ends(emu: Emulator) -> None:
    emu.clock(tick=0)
    net = emu.network()
    group = emu.group([net["a"]])
    emu.settings(boot_delay=3.0, group=group)

    emu.asg.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=1)
    [(instance, _)] = emu.group_instances(group)

    assert states(emu, instance) == ["pending"]
    emu.advance(3)
    assert states(emu, instance) == ["pending", "running"]


def test_since_gives_the_events_after_an_index(emu: Emulator) -> None:
    emu.clock(tick=0)
    net = emu.network()
    mark = emu.control("GET", "ec2-events")["next"]

    [first] = emu.lone_instance(net["a"])
    [second] = emu.lone_instance(net["a"])

    found = emu.control("GET", f"ec2-events?since={mark}")["events"]
    assert [(e["detail"]["instance-id"], e["detail"]["state"]) for e in found] == [
        (first, "pending"),
        (first, "running"),
        (second, "pending"),
        (second, "running"),
    ]


def test_a_terminated_instance_cannot_be_started(emu: Emulator) -> None:
    net = emu.network()
    [instance] = emu.lone_instance(net["a"])
    emu.ec2.terminate_instances(InstanceIds=[instance])

    status, _, body = emu.aws("ec2", {"Action": "StartInstances", "InstanceId.1": instance})

    assert status == 400 and b"IncorrectInstanceState" in body
