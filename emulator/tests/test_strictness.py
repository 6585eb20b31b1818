"""A few rows of the README's table: where the emulator is as strict as AWS and moto is not."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from conftest import LAUNCH_HOOK, Emulator


def error_of(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as err:
        call()
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


def test_attaching_an_eni_in_use_fails_with_invalid_network_interface_in_use(emu: Emulator) -> None:
    net = emu.network()
    first, second = emu.lone_instance(net["a"], count=2)
    eni = emu.eni(net["a"])
    emu.ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=first, DeviceIndex=1)

    code, message = error_of(
        lambda: emu.ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=second, DeviceIndex=1)
    )

    assert (code, message) == ("InvalidNetworkInterface.InUse", f"Interface: [{eni}] in use.")


def test_attaching_at_a_taken_device_index_fails_with_invalid_parameter_value(emu: Emulator) -> None:
    net = emu.network()
    [instance] = emu.lone_instance(net["a"])
    one, two = emu.eni(net["a"]), emu.eni(net["a"])
    emu.ec2.attach_network_interface(NetworkInterfaceId=one, InstanceId=instance, DeviceIndex=1)

    code, message = error_of(
        lambda: emu.ec2.attach_network_interface(NetworkInterfaceId=two, InstanceId=instance, DeviceIndex=1)
    )

    assert code == "InvalidParameterValue"
    assert message == f"Instance '{instance}' already has an interface attached at device index '1'."


def test_attaching_across_availability_zones_fails_with_invalid_parameter_combination(emu: Emulator) -> None:
    net = emu.network()
    [instance] = emu.lone_instance(net["a"])
    eni = emu.eni(net["b"])

    code, message = error_of(
        lambda: emu.ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=instance, DeviceIndex=1)
    )

    assert code == "InvalidParameterCombination"
    assert "not in the same availability zone" in message


def test_the_primary_interface_cannot_be_detached(emu: Emulator) -> None:
    net = emu.network()
    [instance] = emu.lone_instance(net["a"])
    [reservation] = emu.ec2.describe_instances(InstanceIds=[instance])["Reservations"]
    primary = reservation["Instances"][0]["NetworkInterfaces"][0]["Attachment"]["AttachmentId"]

    code, _ = error_of(lambda: emu.ec2.detach_network_interface(AttachmentId=primary))

    assert code == "OperationNotPermitted"


def test_complete_lifecycle_action_checks_the_token_and_applies_the_result(emu: Emulator) -> None:
    net = emu.network()
    group = emu.group([net["a"]], {"launch": LAUNCH_HOOK})
    emu.asg.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=1)
    [action] = emu.actions(group)

    def complete(token: str) -> None:
        emu.asg.complete_lifecycle_action(
            AutoScalingGroupName=group,
            LifecycleHookName="launch",
            LifecycleActionToken=token,
            LifecycleActionResult="CONTINUE",
        )

    wrong = "00000000-0000-0000-0000-000000000000"
    assert error_of(lambda: complete(wrong)) == (
        "ValidationError",
        f"No active Lifecycle Action found with token {wrong}",
    )
    complete(action["token"])
    assert emu.group_instances(group) == [(action["instance_id"], "InService")]
    code, message = error_of(lambda: complete(action["token"]))
    assert (code, message) == (
        "ValidationError",
        f"No active Lifecycle Action found with token {action['token']}",
    )
    [ended] = emu.actions(group, all_=True)
    assert ended["complete_calls"] == {"accepted": 1, "rejected": 1}
    assert ended["event"]["detail"]["LifecycleActionToken"] == action["token"]


def test_put_lifecycle_hook_keeps_notification_metadata(emu: Emulator) -> None:
    net = emu.network()
    metadata = '{"pin":"eni","pool":"licences"}'
    group = emu.group([net["a"]], {"launch": {**LAUNCH_HOOK, "NotificationMetadata": metadata}})

    [hook] = emu.asg.describe_lifecycle_hooks(AutoScalingGroupName=group)["LifecycleHooks"]
    emu.asg.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=1)

    assert hook["NotificationMetadata"] == metadata
    [action] = emu.actions(group)
    assert action["event"]["detail"]["NotificationMetadata"] == metadata
    code, _ = error_of(
        lambda: emu.asg.put_lifecycle_hook(
            AutoScalingGroupName=group,
            LifecycleHookName="long",
            NotificationMetadata="x" * 1024,
            **LAUNCH_HOOK,
        )
    )
    assert code == "ValidationError"


def test_the_control_api_answers_unknown_routes_with_404_and_bad_bodies_with_400(emu: Emulator) -> None:
    status, headers, body = emu.call("GET", "no-such-route")
    assert status == 404 and headers["Content-Type"] == "application/json" and b"error" in body
    assert emu.call("DELETE", "settings")[0] == 404
    assert emu.call("POST", "settings", raw=b"{not json")[0] == 400
    assert emu.call("POST", "settings", {"no_such_setting": 1})[0] == 400
    assert emu.call("POST", "claimers", {"instance_id": "i-1"})[0] == 400
    assert emu.call("POST", "adopt", {})[0] == 400
    assert emu.call("GET", "health", headers={"X-Pinhook-Clock": "no-reading"})[0] == 400
    assert emu.control("GET", "health") == {"status": "ok"}
