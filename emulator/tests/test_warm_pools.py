"""Warm pools and notification targets, as Auto Scaling runs them through the lifecycle hooks."""

from __future__ import annotations

import json

import boto3

from conftest import LAUNCH_HOOK, REGION, Emulator

TERMINATE_HOOK = {"LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING", "HeartbeatTimeout": 60}


def complete(emu: Emulator, group: str, action: dict) -> None:
    emu.asg.complete_lifecycle_action(
        AutoScalingGroupName=group,
        LifecycleHookName=action["hook"],
        LifecycleActionToken=action["token"],
        LifecycleActionResult="CONTINUE",
    )


def warm(emu: Emulator, group: str) -> list[tuple[str, str]]:
    found = emu.asg.describe_warm_pool(AutoScalingGroupName=group)["Instances"]
    return sorted((i["InstanceId"], i["LifecycleState"]) for i in found)


def test_a_warm_pool_instance_enters_serves_and_returns_through_the_hooks(emu: Emulator) -> None:
    net = emu.network()
    group = emu.group([net["a"]], {"launch": LAUNCH_HOOK, "terminate": TERMINATE_HOOK})

    # Launched into the warm pool, it waits on the launch hook, then rests stopped
    emu.asg.put_warm_pool(
        AutoScalingGroupName=group,
        MinSize=1,
        MaxGroupPreparedCapacity=0,
        PoolState="Stopped",
        InstanceReusePolicy={"ReuseOnScaleIn": True},
    )
    [entering] = emu.actions(group)
    instance = entering["instance_id"]
    detail = entering["event"]["detail"]
    assert (detail["Origin"], detail["Destination"]) == ("EC2", "WarmPool")
    assert warm(emu, group) == [(instance, "Warmed:Pending:Wait")]
    complete(emu, group, entering)
    assert warm(emu, group) == [(instance, "Warmed:Stopped")]
    events = emu.control("GET", f"ec2-events?instance={instance}")["events"]
    assert [e["detail"]["state"] for e in events] == ["pending", "running", "stopping", "stopped"]

    # A scale-out draws on it: it starts and waits on the launch hook again, and the pool refills
    emu.asg.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=1)
    leaving = next(a for a in emu.actions(group) if a["instance_id"] == instance)
    assert (leaving["event"]["detail"]["Origin"], leaving["event"]["detail"]["Destination"]) == (
        "WarmPool",
        "AutoScalingGroup",
    )
    complete(emu, group, leaving)
    assert (instance, "InService") in emu.group_instances(group)
    [(refill, _)] = warm(emu, group)
    assert refill != instance
    complete(emu, group, next(a for a in emu.actions(group) if a["instance_id"] == refill))

    # A scale-in returns it to the pool through the terminate hook
    emu.asg.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=0)
    returning = next(a for a in emu.actions(group) if a["instance_id"] == instance)
    assert returning["transition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert returning["event"]["detail"]["Destination"] == "WarmPool"
    complete(emu, group, returning)
    assert (instance, "Warmed:Stopped") in warm(emu, group)


def test_a_hook_with_an_sqs_target_gets_the_test_notification_and_each_action(emu: Emulator) -> None:
    net = emu.network()
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    sqs = session.client("sqs", endpoint_url=emu.url)
    queue = sqs.create_queue(QueueName="hooks-queue")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    group = emu.group(
        [net["a"]],
        {
            "launch": {
                **LAUNCH_HOOK,
                "NotificationTargetARN": arn,
                "RoleARN": "arn:aws:iam::123456789012:role/hooks",
                "NotificationMetadata": '{"pin":"eip","pool":"egress"}',
            }
        },
    )

    emu.asg.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=1)

    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    bodies = [json.loads(m["Body"]) for m in messages]
    assert bodies[0]["Event"] == "autoscaling:TEST_NOTIFICATION"
    [action] = emu.actions(group)
    assert bodies[1]["LifecycleActionToken"] == action["token"]
    assert bodies[1]["NotificationMetadata"] == '{"pin":"eip","pool":"egress"}'
