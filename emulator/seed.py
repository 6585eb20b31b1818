"""Seeds the local emulator with what a sample event names, so that replaying the sample acts on
a real instance: the group, its hooks (with the event's NotificationMetadata), a pool of two
members, and the instance waiting on the event's lifecycle action with the event's token.

    .venv/bin/python emulator/seed.py events/launch.json [--endpoint http://127.0.0.1:5055]

A launch sample gets a new instance in Pending:Wait (Warmed:Pending:Wait for a launch into the
warm pool). A terminate sample gets an instance in service holding a member of the pool, then
terminating: if the launch sample of the same instance was seeded and replayed first, that
instance is the one that terminates. Everything goes through the AWS API, except giving the
instance the sample's id and the action the sample's token (the emulator's /_pinhook/adopt).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from typing import Any

import boto3

REGION = "us-east-1"
ZONE = "us-east-1a"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
PINHOOK_HOOKS = {LAUNCHING: "pinhook-launch", TERMINATING: "pinhook-terminate"}


class SeedError(Exception):
    pass


def control(endpoint: str, route: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{endpoint}/_pinhook/{route}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        raise SeedError(json.loads(err.read()).get("error", str(err))) from err


class World:
    def __init__(self, endpoint: str) -> None:
        session = boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        self.endpoint = endpoint
        self.ec2 = session.client("ec2", endpoint_url=endpoint)
        self.asg = session.client("autoscaling", endpoint_url=endpoint)

    def subnet(self) -> str:
        found = self.ec2.describe_subnets(Filters=[{"Name": "tag:Name", "Values": ["pinhook-samples"]}])[
            "Subnets"
        ]
        if found:
            return found[0]["SubnetId"]
        vpc = self.ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
        subnet = self.ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24", AvailabilityZone=ZONE)["Subnet"][
            "SubnetId"
        ]
        self.ec2.create_tags(Resources=[subnet], Tags=[{"Key": "Name", "Value": "pinhook-samples"}])
        return subnet

    def group(self, name: str) -> dict[str, Any]:
        found = self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])
        if found["AutoScalingGroups"]:
            return found["AutoScalingGroups"][0]
        subnet = self.subnet()
        templates = self.ec2.describe_launch_templates(
            Filters=[{"Name": "launch-template-name", "Values": ["pinhook-samples"]}]
        )["LaunchTemplates"]
        if not templates:
            self.ec2.create_launch_template(
                LaunchTemplateName="pinhook-samples",
                LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"},
            )
        self.asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": "pinhook-samples"},
            MinSize=0,
            MaxSize=1,
            DesiredCapacity=0,
            VPCZoneIdentifier=subnet,
        )
        return self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]

    def hook(self, group: str, name: str, transition: str, metadata: str | None) -> None:
        hooks = self.asg.describe_lifecycle_hooks(AutoScalingGroupName=group, LifecycleHookNames=[name])[
            "LifecycleHooks"
        ]
        if hooks:
            return
        params: dict[str, Any] = {
            "AutoScalingGroupName": group,
            "LifecycleHookName": name,
            "LifecycleTransition": transition,
            "HeartbeatTimeout": 600,
            "DefaultResult": "ABANDON" if transition == LAUNCHING else "CONTINUE",
        }
        if metadata is not None:
            params["NotificationMetadata"] = metadata
        self.asg.put_lifecycle_hook(**params)

    def pool(self, config: dict[str, Any]) -> None:
        pool = config["pool"]
        tags = [{"Key": "pinhook:pool", "Value": pool}]
        if config["pin"] == "eni":
            have = self.ec2.describe_network_interfaces(
                Filters=[{"Name": "tag:pinhook:pool", "Values": [pool]}]
            )["NetworkInterfaces"]
            for _ in range(2 - len(have)):
                self.ec2.create_network_interface(
                    SubnetId=self.subnet(),
                    TagSpecifications=[{"ResourceType": "network-interface", "Tags": tags}],
                )
        else:
            have = self.ec2.describe_addresses(Filters=[{"Name": "tag:pinhook:pool", "Values": [pool]}])[
                "Addresses"
            ]
            for _ in range(2 - len(have)):
                self.ec2.allocate_address(
                    Domain="vpc",
                    TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": tags}],
                )

    def instance_state(self, instance: str) -> str | None:
        found = self.asg.describe_auto_scaling_instances(InstanceIds=[instance])
        states = [i["LifecycleState"] for i in found["AutoScalingInstances"]]
        return states[0] if states else None

    def new_instance(self, group: str, warm: bool) -> str:
        """A new instance of the group, waiting on its launch hooks; its id. A scale-out draws
        on the warm pool first, so the instance may be one that waited there."""
        waiting = "Warmed:Pending:Wait" if warm else "Pending:Wait"
        before = self.known_instances(group)
        if warm:
            warmed = self.asg.describe_warm_pool(AutoScalingGroupName=group).get("Instances", [])
            self.asg.put_warm_pool(
                AutoScalingGroupName=group, MinSize=len(warmed) + 1, MaxGroupPreparedCapacity=0
            )
        else:
            desired = self.group(group)["DesiredCapacity"]
            self.asg.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=desired + 1)
        after = self.known_instances(group)
        new = [i for i, state in after.items() if state == waiting and before.get(i) != waiting]
        if not new:
            raise SeedError(f"group {group} launched no instance")
        return sorted(new)[0]

    def known_instances(self, group: str) -> dict[str, str]:
        """The group's instances (the warm pool's too), with their lifecycle states."""
        pages = self.asg.get_paginator("describe_auto_scaling_instances").paginate()
        return {
            i["InstanceId"]: i["LifecycleState"]
            for page in pages
            for i in page["AutoScalingInstances"]
            if i["AutoScalingGroupName"] == group
        }

    def hold_member(self, instance: str, config: dict[str, Any]) -> None:
        """Pins a pool member to the instance by hand, as a completed launch would have."""
        pool = config["pool"]
        if config["pin"] == "eni":
            enis = self.ec2.describe_network_interfaces(
                Filters=[
                    {"Name": "tag:pinhook:pool", "Values": [pool]},
                    {"Name": "status", "Values": ["available"]},
                ]
            )["NetworkInterfaces"]
            if not enis:
                raise SeedError(f"pool {pool} has no free ENI")
            member = enis[0]["NetworkInterfaceId"]
            self.ec2.attach_network_interface(NetworkInterfaceId=member, InstanceId=instance, DeviceIndex=1)
            tag = "pinhook:eni"
        else:
            addresses = self.ec2.describe_addresses(Filters=[{"Name": "tag:pinhook:pool", "Values": [pool]}])[
                "Addresses"
            ]
            free = [a for a in addresses if not a.get("AssociationId")]
            if not free:
                raise SeedError(f"pool {pool} has no free address")
            member = free[0]["AllocationId"]
            self.ec2.associate_address(AllocationId=member, InstanceId=instance)
            tag = "pinhook:eip"
        self.ec2.create_tags(Resources=[member], Tags=[{"Key": "pinhook:holder", "Value": instance}])
        self.ec2.create_tags(Resources=[instance], Tags=[{"Key": tag, "Value": member}])


def lifecycle_fields(event: dict[str, Any]) -> dict[str, Any]:
    """The lifecycle action's fields, however the sample delivers them: an EventBridge event's
    detail, an SQS message's body (or the SNS envelope in it), an SNS record's Message."""
    if "detail" in event:
        return event.get("detail") or {}
    records = event.get("Records") or [{}]
    record = records[0] if isinstance(records[0], dict) else {}
    try:
        if record.get("eventSource") == "aws:sqs":
            fields = json.loads(record.get("body") or "{}")
            if fields.get("Type") == "Notification":
                fields = json.loads(fields.get("Message") or "{}")
            return fields
        if record.get("EventSource") == "aws:sns":
            return json.loads((record.get("Sns") or {}).get("Message") or "{}")
    except ValueError:
        pass
    return {}


def seed(world: World, event: dict[str, Any]) -> str:
    detail = lifecycle_fields(event)
    group = detail.get("AutoScalingGroupName")
    hook = detail.get("LifecycleHookName")
    wanted = detail.get("EC2InstanceId")
    token = detail.get("LifecycleActionToken")
    transition = detail.get("LifecycleTransition")
    if not (group and hook and wanted and token and transition in PINHOOK_HOOKS):
        raise SeedError(
            "the event names no lifecycle action (group, hook, instance, token, transition): nothing to seed"
        )
    metadata = detail.get("NotificationMetadata")
    try:
        config = json.loads(metadata) if metadata else None
    except ValueError:
        config = None
    pinhooks = isinstance(config, dict) and "pin" in config and "pool" in config
    world.group(group)
    world.hook(group, hook, transition, metadata)
    if pinhooks:
        for other, name in PINHOOK_HOOKS.items():
            if name != hook:
                world.hook(group, name, other, metadata)
        world.pool(config)
    state = world.instance_state(wanted)
    warm = detail.get("Destination") == "WarmPool" and transition == LAUNCHING
    if transition == LAUNCHING:
        if state is None:
            current = world.new_instance(group, warm)
            control(world.endpoint, "adopt", {"instance_id": current, "as": wanted})
        control(world.endpoint, "adopt", {"instance_id": wanted, "tokens": {hook: token}})
        return f"{wanted} of {group} waits on {hook} ({world.instance_state(wanted)})"
    if state is None:
        current = world.new_instance(group, False)
        control(world.endpoint, "adopt", {"instance_id": current, "as": wanted})
        state = world.instance_state(wanted)
    if state == "Pending:Wait":
        # Its launch as pinhook would have completed it: in service, holding a member.
        world.asg.complete_lifecycle_action(
            AutoScalingGroupName=group,
            LifecycleHookName=PINHOOK_HOOKS[LAUNCHING],
            InstanceId=wanted,
            LifecycleActionResult="CONTINUE",
        )
        if pinhooks:
            world.hold_member(wanted, config)
        state = world.instance_state(wanted)
    if state == "InService":
        world.asg.terminate_instance_in_auto_scaling_group(
            InstanceId=wanted, ShouldDecrementDesiredCapacity=True
        )
    control(world.endpoint, "adopt", {"instance_id": wanted, "tokens": {hook: token}})
    return f"{wanted} of {group} waits on {hook} ({world.instance_state(wanted)})"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", nargs="+", help="sample event files")
    parser.add_argument("--endpoint", default="http://127.0.0.1:5055")
    args = parser.parse_args(argv)
    world = World(args.endpoint)
    for path in args.events:
        with open(path, encoding="utf-8") as f:
            event = json.load(f)
        try:
            print(f"{path}: {seed(world, event)}")
        except SeedError as err:
            print(f"{path}: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
