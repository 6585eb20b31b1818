"""The manual clock: time moves only by explicit advances, clients' clock headers and the tick of
unstamped AWS requests; timers fire at their due time; slow requests and latency of stamped
clients never sleep."""

from __future__ import annotations

import time

from conftest import LAUNCH_HOOK_ABANDON, Emulator


def test_a_manual_advance_fires_an_attach_settle_exactly_at_its_due_time(emu: Emulator) -> None:
    # Given a manual clock that unstamped requests do not move, and attachments settling in 2 s
    emu.clock(tick=0)
    emu.settings(attach_delay=2.0)
    net = emu.network()
    [instance] = emu.lone_instance(net["a"])
    eni = emu.eni(net["a"])

    # When the ENI is attached
    emu.ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=instance, DeviceIndex=1)

    # Then it stays attaching until the clock reaches its due time, and not a moment longer
    timers = [t for t in emu.clock()["timers"] if t["what"] == f"attach settle {eni}"]
    assert len(timers) == 1 and abs(timers[0]["due"] - emu.now() - 2.0) < 1e-6
    emu.advance(1.9)
    assert emu.eni_status(eni) == ("in-use", "attaching")
    fired = emu.advance(0.1)["fired"]
    assert fired >= 1
    assert emu.eni_status(eni) == ("in-use", "attached")


def test_a_clock_header_advances_by_each_clients_own_elapsed_time(emu: Emulator) -> None:
    emu.clock(tick=0)
    start = emu.now()

    def health(client: str, reading: float) -> float:
        emu.control("GET", "health", headers={"X-Pinhook-Clock": f"{client} {reading}"})
        return emu.now() - start

    # The first sighting of a client advances nothing, whatever its reading
    assert health("alpha", 100.0) == 0.0
    # Each later one advances by how far that client's clock moved
    assert abs(health("alpha", 103.0) - 3.0) < 1e-9
    # Another client's clock has an origin of its own
    assert abs(health("beta", 7.0) - 3.0) < 1e-9
    assert abs(health("beta", 9.0) - 5.0) < 1e-9
    # A reading behind the client's latest moves nothing, and is not remembered as its latest
    assert abs(health("alpha", 102.0) - 5.0) < 1e-9
    assert abs(health("alpha", 104.0) - 6.0) < 1e-9


def test_unstamped_aws_requests_tick_and_control_requests_do_not(emu: Emulator) -> None:
    emu.clock(tick=0.5)
    start = emu.now()

    emu.ec2.describe_vpcs()
    emu.ec2.describe_vpcs()
    emu.control("GET", "health")
    emu.control("GET", "settings")

    assert abs(emu.now() - start - 1.0) < 1e-9


def test_a_stamped_slow_request_lands_at_its_due_time_even_if_nobody_collects_it(emu: Emulator) -> None:
    # Given a client on the manual clock whose attaches are slowed by 3 s
    emu.clock(tick=0)
    net = emu.network()
    [instance] = emu.lone_instance(net["a"])
    eni = emu.eni(net["a"])
    emu.control(
        "POST",
        "faults",
        {"slow_rate": 1.0, "slow_seconds": [3, 3], "actions": ["AttachNetworkInterface"], "seed": 1},
    )

    # When it asks to attach
    status, headers, body = emu.aws(
        "ec2",
        {
            "Action": "AttachNetworkInterface",
            "NetworkInterfaceId": eni,
            "InstanceId": instance,
            "DeviceIndex": "1",
        },
        {"X-Pinhook-Clock": "slow-client 50"},
    )

    # Then it is told to wait 3 s for a ticket, and the attach has not happened yet
    assert status == 202 and body == b""
    assert float(headers["X-Pinhook-Delay"]) == 3.0
    ticket = headers["X-Pinhook-Ticket"]
    assert emu.eni_status(eni)[0] == "available"
    emu.advance(2.9)
    assert emu.eni_status(eni)[0] == "available"
    # The attach lands at its due time, though the client never came back for the answer
    emu.advance(0.1)
    assert emu.eni_status(eni)[0] == "in-use"
    landed = emu.control("GET", f"requests?action=AttachNetworkInterface&NetworkInterfaceId={eni}")[
        "requests"
    ]
    assert [r["status"] for r in landed] == [200]
    # And the answer waits for it, as moto gave it
    status, _, answer = emu.call("GET", f"deferred/{ticket}")
    assert status == 200 and b"<attachmentId>" in answer
    assert emu.call("GET", "deferred/d-nonexistent")[0] == 404


def test_a_stamped_client_collects_its_slow_answer_after_sleeping_on_its_own_clock(emu: Emulator) -> None:
    emu.clock(tick=0)
    net = emu.network()
    [instance] = emu.lone_instance(net["a"])
    eni = emu.eni(net["a"])
    emu.control(
        "POST",
        "faults",
        {"slow_rate": 1.0, "slow_seconds": [2, 2], "actions": ["AttachNetworkInterface"], "seed": 2},
    )
    status, headers, _ = emu.aws(
        "ec2",
        {
            "Action": "AttachNetworkInterface",
            "NetworkInterfaceId": eni,
            "InstanceId": instance,
            "DeviceIndex": "1",
        },
        {"X-Pinhook-Clock": "sleeper 10"},
    )
    assert status == 202

    # The client slept 2 s on its clock, and collects with its clock header
    status, answer_headers, answer = emu.call(
        "GET", f"deferred/{headers['X-Pinhook-Ticket']}", headers={"X-Pinhook-Clock": "sleeper 12"}
    )

    assert status == 200
    assert b"<attachmentId>" in answer
    assert "xml" in answer_headers["Content-Type"]
    assert emu.eni_status(eni)[0] == "in-use"


def test_a_deferred_answer_collected_early_says_how_long_is_left(emu: Emulator) -> None:
    emu.clock(tick=0)
    emu.control(
        "POST", "faults", {"slow_rate": 1.0, "slow_seconds": [4, 4], "actions": ["DescribeVpcs"], "seed": 3}
    )
    status, headers, _ = emu.aws("ec2", {"Action": "DescribeVpcs"}, {"X-Pinhook-Clock": "early 0"})
    assert status == 202

    status, again, _ = emu.call(
        "GET", f"deferred/{headers['X-Pinhook-Ticket']}", headers={"X-Pinhook-Clock": "early 1"}
    )

    assert status == 202
    assert abs(float(again["X-Pinhook-Delay"]) - 3.0) < 1e-6


def test_latency_for_a_stamped_client_is_a_header_not_a_sleep(emu: Emulator) -> None:
    emu.settings(latency=30.0)
    started = time.monotonic()

    status, headers, body = emu.aws("ec2", {"Action": "DescribeVpcs"}, {"X-Pinhook-Clock": "fast 0"})

    assert status == 200 and b"DescribeVpcsResponse" in body
    assert float(headers["X-Pinhook-Delay"]) == 30.0
    assert time.monotonic() - started < 5


def test_a_lifecycle_wait_times_out_on_the_manual_clock(emu: Emulator) -> None:
    # Given an instance waiting on a launch hook with a 60 s heartbeat timeout
    emu.clock(tick=0)
    net = emu.network()
    group = emu.group([net["a"]], {"launch": LAUNCH_HOOK_ABANDON})
    emu.asg.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=1)
    [(instance, state)] = emu.group_instances(group)
    assert state == "Pending:Wait"

    # When a heartbeat comes after 50 s, and then nothing for 60 s
    emu.advance(50)
    emu.asg.record_lifecycle_action_heartbeat(
        AutoScalingGroupName=group, LifecycleHookName="launch", InstanceId=instance
    )
    emu.advance(59.9)
    assert emu.group_instances(group) == [(instance, "Pending:Wait")]
    emu.advance(0.1)

    # Then the wait ends with the hook's default result
    [action] = emu.actions(group, all_=True)
    assert (action["result"], action["ended_by"], action["heartbeats"]) == ("ABANDON", "timeout", 1)
    assert emu.group_instances(group) == []


def test_the_clock_switches_modes_without_going_back(emu: Emulator) -> None:
    emu.advance(3600)
    ahead = emu.now()

    real = emu.clock(mode="real")
    manual = emu.clock(mode="manual")

    assert real["mode"] == "real" and real["now"] >= ahead
    assert manual["mode"] == "manual" and manual["now"] >= real["now"]
    assert emu.call("POST", "clock/advance", {"seconds": -1})[0] == 400
    assert emu.call("POST", "clock", {"mode": "sundial"})[0] == 400
