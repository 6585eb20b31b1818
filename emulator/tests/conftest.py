"""One emulator for the whole run, served from a thread on 127.0.0.1 (port 0) on the manual
clock, with boto3 clients and a control-API client; each test leaves the settings as it found
them."""

from __future__ import annotations

import itertools
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

REGION = "us-east-1"
AZ_A, AZ_B = "us-east-1a", "us-east-1b"
_names = itertools.count(1)

DEFAULTS = {
    "attach_delay": 0.2,
    "detach_delay": 0.3,
    "latency": 0.0,
    "boot_delay": 0.0,
    "plain_boot_delay": 0.0,
    "read_lag": 0.0,
    "asg_lag": 0.0,
    "asg_lag_unlisted": False,
    "page_size": 0,
    "unpaginated_limit": 0,
}


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


class Emulator:
    def __init__(self, url: str) -> None:
        self.url = url
        session = boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        # No retries: a throttle or a fault reaches the test as AWS answered it.
        config = Config(retries={"total_max_attempts": 1, "mode": "standard"})
        self.ec2 = session.client("ec2", endpoint_url=url, config=config)
        self.asg = session.client("autoscaling", endpoint_url=url, config=config)

    # The control API --------------------------------------------------------------------------

    def call(
        self,
        method: str,
        route: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(
            f"{self.url}/_pinhook/{route}", data=data, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def control(
        self, method: str, route: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        status, _, data = self.call(method, route, body, headers)
        assert status == 200, f"{method} {route}: {status} {data!r}"
        return json.loads(data)

    def settings(self, **values: Any) -> dict[str, Any]:
        return self.control("POST", "settings", values)

    def clock(self, **values: Any) -> dict[str, Any]:
        return self.control("POST", "clock", values) if values else self.control("GET", "clock")

    def now(self) -> float:
        return self.clock()["now"]

    def advance(self, seconds: float) -> dict[str, Any]:
        return self.control("POST", "clock/advance", {"seconds": seconds})

    # Raw AWS requests (signed), for what boto3 cannot show: status and headers ----------------

    def aws(
        self, service: str, params: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        version = "2016-11-15" if service == "ec2" else "2011-01-01"
        body = urlencode({"Version": version, **params})
        request = AWSRequest(
            method="POST",
            url=f"{self.url}/",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", **(headers or {})},
        )
        SigV4Auth(Credentials("testing", "testing"), service, REGION).add_auth(request)
        prepared = urllib.request.Request(
            f"{self.url}/", data=body.encode(), method="POST", headers=dict(request.headers.items())
        )
        try:
            with urllib.request.urlopen(prepared, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    # Fixtures of the AWS world -----------------------------------------------------------------

    def network(self) -> dict[str, str]:
        vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        a = self.ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=AZ_A)["Subnet"][
            "SubnetId"
        ]
        b = self.ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24", AvailabilityZone=AZ_B)["Subnet"][
            "SubnetId"
        ]
        return {"vpc": vpc, "a": a, "b": b}

    def lone_instance(self, subnet: str, count: int = 1, tags: dict[str, str] | None = None) -> list[str]:
        params: dict[str, Any] = {
            "ImageId": "ami-12c6146b",
            "MinCount": count,
            "MaxCount": count,
            "SubnetId": subnet,
        }
        if tags:
            params["TagSpecifications"] = [
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ]
        return [i["InstanceId"] for i in self.ec2.run_instances(**params)["Instances"]]

    def eni(self, subnet: str, tags: dict[str, str] | None = None) -> str:
        params: dict[str, Any] = {"SubnetId": subnet}
        if tags:
            params["TagSpecifications"] = [
                {
                    "ResourceType": "network-interface",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ]
        return self.ec2.create_network_interface(**params)["NetworkInterface"]["NetworkInterfaceId"]

    def eni_status(self, eni: str) -> tuple[str, str | None]:
        found = self.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
        return found["Status"], (found.get("Attachment") or {}).get("Status")

    def group(self, subnets: list[str], hooks: dict[str, dict[str, Any]] | None = None) -> str:
        """A group of no instances over the subnets, with these hooks (name → PutLifecycleHook
        parameters)."""
        name = unique("group")
        template = unique("template")
        self.ec2.create_launch_template(
            LaunchTemplateName=template,
            LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"},
        )
        self.asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": template},
            MinSize=0,
            MaxSize=10,
            DesiredCapacity=0,
            VPCZoneIdentifier=",".join(subnets),
        )
        for hook, params in (hooks or {}).items():
            self.asg.put_lifecycle_hook(AutoScalingGroupName=name, LifecycleHookName=hook, **params)
        return name

    def group_instances(self, group: str) -> list[tuple[str, str]]:
        """(instance, lifecycle state) of the group's instances, as DescribeAutoScalingInstances
        reads them."""
        found = []
        for page in self.asg.get_paginator("describe_auto_scaling_instances").paginate():
            found += [
                (i["InstanceId"], i["LifecycleState"])
                for i in page["AutoScalingInstances"]
                if i["AutoScalingGroupName"] == group
            ]
        return sorted(found)

    def actions(self, group: str, all_: bool = False) -> list[dict[str, Any]]:
        return self.control("GET", f"lifecycle-actions?group={group}{'&all=1' if all_ else ''}")["actions"]


LAUNCH_HOOK = {"LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING", "HeartbeatTimeout": 60}
LAUNCH_HOOK_ABANDON = {**LAUNCH_HOOK, "DefaultResult": "ABANDON"}


@pytest.fixture(scope="session")
def server() -> Iterator[Emulator]:
    from pinhook_emulator import server as emulator_server
    from pinhook_emulator.state import current

    current().clock.configure("manual", 0.1)
    httpd = emulator_server.make(0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield Emulator(f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.shutdown()
    current().clock.stop()


@pytest.fixture
def emu(server: Emulator) -> Iterator[Emulator]:
    server.clock(mode="manual", tick=0.1)
    yield server
    server.settings(**DEFAULTS)
    server.control("POST", "rate-limits", {"enabled": False})
    server.control("POST", "faults", {"rate": 0.0})
    server.clock(mode="manual", tick=0.1)
