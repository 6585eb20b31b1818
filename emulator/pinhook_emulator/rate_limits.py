"""AWS's per-account, per-Region request rate limits, as token buckets refilled on the emulator's
clock, and random throttling (a share of the requests throttled whatever the buckets hold)."""

from __future__ import annotations

import random
import threading
from typing import Any

LIMITED_SERVICES = ("ec2", "autoscaling")


class RateLimits:
    """Off by default.

    EC2 ("Request throttling for the Amazon EC2 API", EC2 developer guide): each API action has a
    bucket of its own, sized by its category, refilled continuously; a request takes one token
    or fails with `RequestLimitExceeded` (503). Non-mutating actions (Describe*, Get*, List*,
    Search*) hold 100 tokens and refill 20 a second; one of those requested with neither a filter
    nor pagination draws on a smaller bucket of 50 refilled at 10; mutating actions hold 50 and
    refill 5. Auto Scaling publishes no figures; it throttles per account with `Throttling`
    (400, "Rate exceeded"): modelled as one bucket for the whole service, 40 tokens refilled at 20
    a second (an assumption, set with "autoscaling").

    Random throttling ("random": share) answers that share of EC2's and Auto Scaling's requests
    with the service's throttling error, independently of the buckets (and without taking a
    token); with "random_for": seconds, only for that long on the emulator's clock, after which
    the share drops to 0. Throttled requests never reach moto."""

    EC2_NON_MUTATING = (100.0, 20.0)
    EC2_UNFILTERED = (50.0, 10.0)
    EC2_MUTATING = (50.0, 5.0)
    AUTOSCALING = (40.0, 20.0)

    def __init__(self) -> None:
        self.enabled = False
        self.limits: dict[str, tuple[float, float]] = {}
        self.buckets: dict[str, list[float]] = {}
        self.allowed: dict[str, int] = {}
        self.throttled: dict[str, int] = {}
        # The category each bucket seen so far was sized by.
        self.categories: dict[str, str] = {}
        # When each throttled request came (emulator clock), for pictures of a run.
        self.throttle_times: list[tuple[float, str]] = []
        self.random = 0.0
        self.random_until: float | None = None
        self.rng = random.Random()
        self.random_throttled: dict[str, int] = {}
        self.lock = threading.Lock()
        self.configure({"enabled": False})

    def configure(self, body: dict[str, Any], now: float = 0.0) -> None:
        limits: dict[str, tuple[float, float]] = {}
        for name, default in (
            ("ec2_non_mutating", self.EC2_NON_MUTATING),
            ("ec2_unfiltered", self.EC2_UNFILTERED),
            ("ec2_mutating", self.EC2_MUTATING),
            ("autoscaling", self.AUTOSCALING),
        ):
            value = body.get(name, default)
            if (
                not isinstance(value, (list, tuple))
                or len(value) != 2
                or not all(isinstance(v, (int, float)) and v > 0 for v in value)
            ):
                raise ValueError(f"{name} must be [bucket size, refill per second], both > 0")
            limits[name] = (float(value[0]), float(value[1]))
        # Only API actions whose bucket differs from their category's are named here.
        for action, value in (body.get("actions") or {}).items():
            limits[f"action:{action}"] = (float(value[0]), float(value[1]))
        share = float(body.get("random", 0.0))
        if not 0.0 <= share <= 1.0:
            raise ValueError("random must be a share between 0 and 1")
        random_for = body.get("random_for")
        if random_for is not None and (not isinstance(random_for, (int, float)) or random_for <= 0):
            raise ValueError("random_for must be a number of seconds > 0")
        with self.lock:
            self.enabled = bool(body.get("enabled", True))
            self.limits = limits
            self.buckets.clear()
            self.categories.clear()
            self.allowed.clear()
            self.throttled.clear()
            self.throttle_times.clear()
            self.random = share
            self.random_until = None if random_for is None else now + float(random_for)
            if "random_seed" in body:
                self.rng = random.Random(body["random_seed"])
            self.random_throttled.clear()

    def bucket_of(self, service: str, action: str, form: dict[str, list[str]]) -> tuple[str, str] | None:
        """The bucket a request draws on, and its category; None for services not limited."""
        if service == "autoscaling":
            return "autoscaling", "autoscaling"
        if service != "ec2":
            return None
        if f"action:{action}" in self.limits:
            return action, f"action:{action}"
        if action.startswith(("Describe", "Get", "List", "Search")):
            filtered = any(k.startswith("Filter.") for k in form) or any(
                k in form for k in ("MaxResults", "NextToken")
            )
            if not filtered:
                return f"{action} (unfiltered)", "ec2_unfiltered"
            return action, "ec2_non_mutating"
        return action, "ec2_mutating"

    def take(self, service: str, action: str, form: dict[str, list[str]], now: float) -> bool:
        """Whether the request may go on; a refusal is counted."""
        with self.lock:
            if service not in LIMITED_SERVICES:
                return True
            if self.random_until is not None and now >= self.random_until:
                self.random, self.random_until = 0.0, None
            if self.random and self.rng.random() < self.random:
                self.random_throttled[service] = self.random_throttled.get(service, 0) + 1
                return False
            if not self.enabled:
                return True
            found = self.bucket_of(service, action, form)
            if found is None:
                return True
            bucket, category = found
            self.categories[bucket] = category
            size, refill = self.limits[category]
            tokens, last = self.buckets.get(bucket, [size, now])
            tokens = min(size, tokens + max(0.0, now - last) * refill)
            if tokens >= 1.0:
                self.buckets[bucket] = [tokens - 1.0, now]
                self.allowed[bucket] = self.allowed.get(bucket, 0) + 1
                return True
            self.buckets[bucket] = [tokens, now]
            self.throttled[bucket] = self.throttled.get(bucket, 0) + 1
            self.throttle_times.append((now, bucket))
            del self.throttle_times[:-200_000]
            return False

    def view(self) -> dict[str, Any]:
        with self.lock:
            return {
                "enabled": self.enabled,
                "limits": {k: list(v) for k, v in self.limits.items()},
                "buckets": {
                    bucket: {
                        "category": category,
                        "size": self.limits[category][0],
                        "refill_per_second": self.limits[category][1],
                        "allowed": self.allowed.get(bucket, 0),
                        "throttled": self.throttled.get(bucket, 0),
                    }
                    for bucket, category in self.categories.items()
                },
                "throttled_total": sum(self.throttled.values()),
                "throttle_times": [[t, b] for t, b in self.throttle_times],
                "random": self.random,
                "random_until": self.random_until,
                "random_throttled": dict(self.random_throttled),
                "random_throttled_total": sum(self.random_throttled.values()),
            }
