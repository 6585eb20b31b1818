"""Random throttling: a share of the requests answered with each service's own throttling error,
independently of the token buckets; throttled requests never reach moto."""

from __future__ import annotations

from collections import Counter

from botocore.exceptions import ClientError

from conftest import Emulator


def outcome(call) -> tuple[str, int, str]:
    try:
        call()
    except ClientError as err:
        error = err.response["Error"]
        return error["Code"], err.response["ResponseMetadata"]["HTTPStatusCode"], error.get("Message", "")
    return "ok", 200, ""


def test_random_throttling_answers_its_share_with_each_services_own_code(emu: Emulator) -> None:
    emu.control("POST", "rate-limits", {"enabled": False, "random": 0.25, "random_seed": 7})

    ec2 = Counter(outcome(lambda: emu.ec2.describe_vpcs(MaxResults=5)) for _ in range(200))
    asg = Counter(outcome(lambda: emu.asg.describe_auto_scaling_groups(MaxRecords=1)) for _ in range(200))

    ec2_throttled = ec2[("RequestLimitExceeded", 503, "Request limit exceeded.")]
    asg_throttled = asg[("Throttling", 400, "Rate exceeded")]
    assert set(ec2) == {("ok", 200, ""), ("RequestLimitExceeded", 503, "Request limit exceeded.")}
    assert set(asg) == {("ok", 200, ""), ("Throttling", 400, "Rate exceeded")}
    assert 30 <= ec2_throttled <= 70 and 30 <= asg_throttled <= 70
    view = emu.control("GET", "rate-limits")
    assert view["random"] == 0.25
    assert view["random_throttled"] == {"ec2": ec2_throttled, "autoscaling": asg_throttled}
    assert view["random_throttled_total"] == ec2_throttled + asg_throttled
    # The token buckets are off: nothing was throttled by them
    assert view["throttled_total"] == 0


def test_a_randomly_throttled_request_never_reaches_moto(emu: Emulator) -> None:
    emu.control("POST", "rate-limits", {"enabled": False, "random": 1.0})

    code, status, _ = outcome(lambda: emu.ec2.create_vpc(CidrBlock="10.9.0.0/16"))

    assert (code, status) == ("RequestLimitExceeded", 503)
    emu.control("POST", "rate-limits", {"enabled": False})
    assert not emu.ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.9.0.0/16"]}])["Vpcs"]
    assert emu.control("GET", "requests?action=CreateVpc&status=503")["requests"]


def test_the_token_buckets_throttle_on_the_emulator_clock(emu: Emulator) -> None:
    # Given a bucket of 2 tokens refilled at 1 a second, on a clock that only the test moves
    emu.clock(tick=0)
    emu.control("POST", "rate-limits", {"actions": {"DescribeVpcs": [2, 1]}})

    first = [outcome(lambda: emu.ec2.describe_vpcs())[0] for _ in range(3)]
    emu.advance(1)
    after_a_second = [outcome(lambda: emu.ec2.describe_vpcs())[0] for _ in range(2)]

    assert first == ["ok", "ok", "RequestLimitExceeded"]
    assert after_a_second == ["ok", "RequestLimitExceeded"]


def test_random_must_be_a_share(emu: Emulator) -> None:
    assert emu.call("POST", "rate-limits", {"random": 1.5})[0] == 400


def test_random_throttling_for_a_while_stops_on_the_emulator_clock(emu: Emulator) -> None:
    # Given every request throttled for the next 5 seconds, on a clock that only the test moves
    emu.clock(tick=0)
    emu.control("POST", "rate-limits", {"enabled": False, "random": 1.0, "random_for": 5})

    during = outcome(lambda: emu.ec2.describe_vpcs(MaxResults=5))[0]
    emu.advance(4.9)
    still = outcome(lambda: emu.asg.describe_auto_scaling_groups(MaxRecords=1))[0]
    emu.advance(0.1)
    after = outcome(lambda: emu.ec2.describe_vpcs(MaxResults=5))[0]

    assert (during, still, after) == ("RequestLimitExceeded", "Throttling", "ok")
    view = emu.control("GET", "rate-limits")
    assert view["random"] == 0.0 and view["random_until"] is None


def test_random_for_must_be_a_positive_number_of_seconds(emu: Emulator) -> None:
    assert emu.call("POST", "rate-limits", {"random": 1.0, "random_for": 0})[0] == 400
