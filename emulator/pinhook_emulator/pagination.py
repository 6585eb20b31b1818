"""Pagination as EC2 and Auto Scaling do it: MaxResults (5–1000) and opaque NextTokens for
DescribeNetworkInterfaces and DescribeInstances, MaxRecords and NextToken for
DescribeAutoScalingInstances (at most 50) and DescribeAutoScalingGroups (at most 100); pages no
larger than the `page_size` setting; and, past `unpaginated_limit` network interfaces, EC2's
refusal of an unpaginated DescribeNetworkInterfaces without one of its exempt filters."""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Callable
from typing import Any

from moto.autoscaling import models as asg_models
from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError, InvalidParameterCombination
from moto.ec2.responses.elastic_network_interfaces import ElasticNetworkInterfaces
from moto.ec2.responses.instances import InstanceResponse

from . import asg_lag
from .state import current

# "If you have a large number of network interfaces, the operation fails unless you use
# pagination or one of the following filters" (DescribeNetworkInterfaces, EC2 API reference).
EXEMPT_ENI_FILTERS = (
    "group-id",
    "mac-address",
    "private-dns-name",
    "private-ip-address",
    "subnet-id",
    "vpc-id",
)
UNPAGINATED_MESSAGE = (
    "You have a large number of network interfaces: the operation fails unless you use pagination "
    "(MaxResults, NextToken) or one of the following filters: " + ", ".join(EXEMPT_ENI_FILTERS) + "."
)


class PageTokens:
    """The NextTokens handed out: each names the request kind, the last item of its page and
    how many items came before the next page."""

    def __init__(self) -> None:
        self.tokens: dict[str, tuple[str, str, int]] = {}
        self._seq = itertools.count(1)

    def issue(self, kind: str, last_key: str, offset: int) -> str:
        token = f"{uuid.uuid4().hex}{next(self._seq):x}"
        self.tokens[token] = (kind, last_key, offset)
        while len(self.tokens) > 100_000:
            del self.tokens[next(iter(self.tokens))]
        return token

    def resolve(self, kind: str, token: str) -> tuple[str, int] | None:
        found = self.tokens.get(token)
        if found is None or found[0] != kind:
            return None
        return found[1], found[2]


def page(
    items: list[Any],
    key: Callable[[Any], str],
    kind: str,
    size: int,
    token: str | None,
    bad_token: Callable[[str], Exception],
) -> tuple[list[Any], str | None]:
    """One page of at most `size` items (less with the page_size setting), after the token's."""
    st = current()
    if st.settings.page_size > 0:
        size = min(size, st.settings.page_size)
    start = 0
    if token is not None:
        found = st.page_tokens.resolve(kind, token)
        if found is None:
            raise bad_token(token)
        last_key, offset = found
        keys = [key(i) for i in items]
        # After the last item given, wherever it is now; where the page ended if it is gone.
        start = keys.index(last_key) + 1 if last_key in keys else min(offset, len(items))
    chosen = items[start : start + size]
    more = start + size < len(items)
    next_token = st.page_tokens.issue(kind, key(chosen[-1]), start + len(chosen)) if more and chosen else None
    return chosen, next_token


# --------------------------------------------------------------------------------------------
# EC2


def ec2_max_results(self: Any) -> int | None:
    value = self._get_param("MaxResults")
    if value is None:
        return None
    n = int(value)
    if not 5 <= n <= 1000:
        raise EC2ClientError(
            "InvalidParameterValue",
            f"Value ( {n} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.",
        )
    return n


def ec2_bad_token(token: str) -> Exception:
    return EC2ClientError(
        "InvalidParameterValue",
        f"Value ( {token} ) for parameter NextToken is invalid. The token is invalid.",
    )


def describe_network_interfaces(self: Any) -> ActionResult:
    eni_ids = self._get_param("NetworkInterfaceIds", [])
    filters = self._filters_from_querystring()
    self.error_on_dryrun()
    max_results = ec2_max_results(self)
    token = self._get_param("NextToken")
    if eni_ids and max_results is not None:
        raise InvalidParameterCombination(
            "The parameter networkInterfaceIdSet cannot be used with the parameter maxResults"
        )
    st = current()
    limit = st.settings.unpaginated_limit
    if (
        limit > 0
        and max_results is None
        and token is None
        and not eni_ids
        and not any(name in filters for name in EXEMPT_ENI_FILTERS)
        and len(self.ec2_backend.enis) > limit
    ):
        raise EC2ClientError("InvalidRequest", UNPAGINATED_MESSAGE)
    enis = self.ec2_backend.get_all_network_interfaces(eni_ids, filters)
    result: dict[str, Any] = {"NetworkInterfaces": enis}
    if max_results is not None or token is not None:
        result["NetworkInterfaces"], result["NextToken"] = page(
            enis, lambda e: e.id, "DescribeNetworkInterfaces", max_results or 1000, token, ec2_bad_token
        )
    return ActionResult(result)


def describe_instances(self: Any) -> ActionResult:
    self.error_on_dryrun()
    if "InstanceId.1" in self.data and "MaxResults" in self.data:
        raise InvalidParameterCombination(
            "The parameter instancesSet cannot be used with the parameter maxResults"
        )
    filters = self._filters_from_querystring()
    instance_ids = self._get_param("InstanceIds", [])
    if instance_ids:
        reservations = self.ec2_backend.get_reservations_by_instance_ids(instance_ids, filters=filters)
    else:
        reservations = self.ec2_backend.describe_instances(filters=filters)
    max_results = ec2_max_results(self)
    token = self._get_param("NextToken")
    if max_results is None and token is None:
        return ActionResult({"Reservations": reservations})
    # Pages count instances, as EC2 does; a reservation split over pages shows on each.
    pairs = [(r, i) for r in reservations for i in r.instances]
    chosen, next_token = page(
        pairs, lambda p: p[1].id, "DescribeInstances", max_results or 1000, token, ec2_bad_token
    )
    shown: list[Any] = []
    for reservation, instance in chosen:
        if not shown or shown[-1].id != reservation.id:
            part = copy.copy(reservation)
            part.instances = []
            shown.append(part)
        shown[-1].instances.append(instance)
    return ActionResult({"Reservations": shown, "NextToken": next_token})


# --------------------------------------------------------------------------------------------
# Auto Scaling


def asg_max_records(self: Any, most: int) -> int:
    value = self._get_int_param("MaxRecords")
    if value is None:
        return 50
    if not 1 <= value <= most:
        bound = f"less than or equal to {most}" if value > most else "greater than or equal to 1"
        raise ValidationError(
            f"1 validation error detected: Value '{value}' at 'maxRecords' failed to satisfy constraint: "
            f"Member must have value {bound}"
        )
    return value


def asg_bad_token(token: str) -> Exception:
    return AutoscalingClientError("InvalidNextToken", f"The token '{token}' was invalid")


def describe_auto_scaling_instances_backend(self: Any, instance_ids: list[str]) -> list[Any]:
    """Warm pool instances are Auto Scaling instances too, in their Warmed:* states."""
    return [s for s in asg_lag.live_instances(self) if not instance_ids or s.instance.id in instance_ids]


def describe_auto_scaling_instances(self: Any) -> ActionResult:
    size = asg_max_records(self, 50)
    states = asg_lag.instances_as_read(self.autoscaling_backend, self._get_param("InstanceIds", []))
    chosen, next_token = page(
        states,
        lambda s: s.instance.id,
        "DescribeAutoScalingInstances",
        size,
        self._get_param("NextToken"),
        asg_bad_token,
    )
    return ActionResult({"AutoScalingInstances": chosen, "NextToken": next_token})


def describe_auto_scaling_groups(self: Any) -> ActionResult:
    size = asg_max_records(self, 100)
    found = self.autoscaling_backend.describe_auto_scaling_groups(
        self._get_param("AutoScalingGroupNames", []), filters=self._get_param("Filters", [])
    )
    chosen, next_token = page(
        found,
        lambda g: g.name,
        "DescribeAutoScalingGroups",
        size,
        self._get_param("NextToken"),
        asg_bad_token,
    )
    return ActionResult(
        {
            "AutoScalingGroups": asg_lag.groups_as_read(self.autoscaling_backend, chosen),
            "NextToken": next_token,
        }
    )


def install() -> None:
    ElasticNetworkInterfaces.describe_network_interfaces = describe_network_interfaces
    InstanceResponse.describe_instances = describe_instances
    asg_models.AutoScalingBackend.describe_auto_scaling_instances = describe_auto_scaling_instances_backend
    AutoScalingResponse.describe_auto_scaling_instances = describe_auto_scaling_instances
    AutoScalingResponse.describe_auto_scaling_groups = describe_auto_scaling_groups
