"""Pagination as EC2 and Auto Scaling do it, pages no larger than page_size, and EC2's refusal of
an unpaginated DescribeNetworkInterfaces past unpaginated_limit interfaces."""

from __future__ import annotations

from itertools import chain
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import Emulator, unique


def pool_filter(pool: str) -> list[dict[str, Any]]:
    return [{"Name": "tag:pool", "Values": [pool]}]


def code_of(err: pytest.ExceptionInfo[ClientError]) -> str:
    return err.value.response["Error"]["Code"]


def test_a_max_results_walk_returns_every_eni_exactly_once_in_pages_of_page_size(emu: Emulator) -> None:
    net = emu.network()
    pool = unique("pool")
    enis = [emu.eni(net["a"], {"pool": pool}) for _ in range(5)]
    emu.settings(page_size=2)

    pages, token = [], None
    while True:
        params: dict[str, Any] = {"Filters": pool_filter(pool), "MaxResults": 100}
        if token:
            params["NextToken"] = token
        answer = emu.ec2.describe_network_interfaces(**params)
        pages.append([e["NetworkInterfaceId"] for e in answer["NetworkInterfaces"]])
        token = answer.get("NextToken")
        if not token:
            break

    assert [len(p) for p in pages] == [2, 2, 1]
    assert sorted(chain.from_iterable(pages)) == sorted(enis)
    # boto3's own paginator meets the same pages
    walked = emu.ec2.get_paginator("describe_network_interfaces").paginate(
        Filters=pool_filter(pool), PaginationConfig={"PageSize": 5}
    )
    assert sorted(e["NetworkInterfaceId"] for p in walked for e in p["NetworkInterfaces"]) == sorted(enis)


def test_a_request_without_pagination_gets_every_eni_in_one_answer(emu: Emulator) -> None:
    net = emu.network()
    pool = unique("pool")
    enis = [emu.eni(net["a"], {"pool": pool}) for _ in range(3)]
    emu.settings(page_size=2)

    answer = emu.ec2.describe_network_interfaces(Filters=pool_filter(pool))

    assert sorted(e["NetworkInterfaceId"] for e in answer["NetworkInterfaces"]) == sorted(enis)
    assert "NextToken" not in answer


@pytest.mark.parametrize(
    "params", [{"MaxResults": "4"}, {"MaxResults": "1001"}, {"NextToken": "not-a-token"}]
)
@pytest.mark.parametrize("action", ["DescribeNetworkInterfaces", "DescribeInstances"])
def test_max_results_out_of_range_and_unknown_tokens_are_invalid_parameter_values(
    emu: Emulator, action: str, params: dict[str, str]
) -> None:
    # (sent raw: boto3 itself refuses a MaxResults below 5)
    status, _, body = emu.aws("ec2", {"Action": action, **params})

    assert status == 400
    assert b"<Code>InvalidParameterValue</Code>" in body


def test_past_the_unpaginated_limit_an_unpaginated_describe_is_refused(emu: Emulator) -> None:
    net = emu.network()
    pool = unique("pool")
    eni = emu.eni(net["a"], {"pool": pool})
    emu.eni(net["a"], {"pool": pool})
    emu.settings(unpaginated_limit=1)

    with pytest.raises(ClientError) as err:
        emu.ec2.describe_network_interfaces(Filters=pool_filter(pool))

    assert code_of(err) == "InvalidRequest"
    assert "pagination" in err.value.response["Error"]["Message"]
    # Paginated, or with a filter EC2 exempts, or by id, it is served
    assert emu.ec2.describe_network_interfaces(Filters=pool_filter(pool), MaxResults=5)["NetworkInterfaces"]
    by_subnet = emu.ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [net["a"]]}])
    assert len(by_subnet["NetworkInterfaces"]) == 2
    by_vpc = emu.ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]}])
    assert len(by_vpc["NetworkInterfaces"]) == 2
    assert emu.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"]


def test_describe_instances_pages_count_instances(emu: Emulator) -> None:
    net = emu.network()
    tag = unique("batch")
    instances = emu.lone_instance(net["a"], count=3, tags={"batch": tag})
    emu.settings(page_size=2)

    walked = emu.ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "tag:batch", "Values": [tag]}], PaginationConfig={"PageSize": 5}
    )
    pages = [[i["InstanceId"] for r in p["Reservations"] for i in r["Instances"]] for p in walked]

    assert [len(p) for p in pages] == [2, 1]
    assert sorted(chain.from_iterable(pages)) == sorted(instances)
    with pytest.raises(ClientError) as err:
        emu.ec2.describe_instances(InstanceIds=instances[:1], MaxResults=5)
    assert code_of(err) == "InvalidParameterCombination"


def test_auto_scaling_describes_page_by_max_records_and_next_token(emu: Emulator) -> None:
    net = emu.network()
    group = emu.group([net["a"], net["b"]])
    emu.asg.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=3)
    emu.settings(page_size=2)

    instance_pages = [
        [i["InstanceId"] for i in p["AutoScalingInstances"] if i["AutoScalingGroupName"] == group]
        for p in emu.asg.get_paginator("describe_auto_scaling_instances").paginate()
    ]
    group_pages = list(emu.asg.get_paginator("describe_auto_scaling_groups").paginate())

    assert all(len(p) <= 2 for p in instance_pages)
    assert len(list(chain.from_iterable(instance_pages))) == 3
    assert all(len(p["AutoScalingGroups"]) <= 2 for p in group_pages)
    names = [g["AutoScalingGroupName"] for p in group_pages for g in p["AutoScalingGroups"]]
    assert names.count(group) == 1
    with pytest.raises(ClientError) as err:
        emu.asg.describe_auto_scaling_instances(MaxRecords=51)
    assert code_of(err) == "ValidationError"
    with pytest.raises(ClientError) as err:
        emu.asg.describe_auto_scaling_groups(MaxRecords=101)
    assert code_of(err) == "ValidationError"
    with pytest.raises(ClientError) as err:
        emu.asg.describe_auto_scaling_instances(NextToken="not-a-token")
    assert code_of(err) == "InvalidNextToken"


def test_the_settings_show_pagination(emu: Emulator) -> None:
    shown = emu.settings(page_size=3, unpaginated_limit=10)

    assert (shown["page_size"], shown["unpaginated_limit"]) == (3, 10)
    assert emu.call("POST", "settings", {"page_size": -1})[0] == 400
