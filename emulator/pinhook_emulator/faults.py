"""Injected faults, for chaos tests: a share of the requests fails as AWS fails under load, and
another share is slow. Also the error answers each service gives, in its own dialect."""

from __future__ import annotations

import random
import threading
import uuid
from typing import Any

# The errors AWS answers with, per service (Auto Scaling speaks awsQuery, EC2 its own dialect).
FAULT_ERRORS = {
    ("ec2", "throttle"): (503, "RequestLimitExceeded", "Request limit exceeded."),
    ("ec2", "500"): (500, "InternalError", "An internal error has occurred."),
    ("ec2", "503"): (503, "Unavailable", "The server is overloaded and can't handle the request."),
    ("autoscaling", "throttle"): (400, "Throttling", "Rate exceeded"),
    ("autoscaling", "500"): (500, "InternalFailure", "An internal error occurred."),
    ("autoscaling", "503"): (503, "ServiceUnavailable", "Service is unavailable."),
}

REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}
REASONS[503] = "Service Unavailable"


class Faults:
    """A share of the requests for the chosen actions fail as AWS fails under load (throttling
    with each service's own code, 500, 503), and a share are slow. Failed requests never reach
    moto, so they change nothing."""

    KINDS = ("throttle", "500", "503")

    def __init__(self) -> None:
        self.rate = 0.0
        self.slow_rate = 0.0
        self.slow_seconds = (0.05, 0.5)
        self.kinds: tuple[str, ...] = self.KINDS
        self.actions: set[str] | None = None
        # Only requests whose parameters contain this text (an instance id, say) fail.
        self.matching: str | None = None
        self.rng = random.Random()
        self.injected: dict[str, int] = {}
        self.slowed = 0
        self.lock = threading.Lock()

    def configure(self, body: dict[str, Any]) -> None:
        with self.lock:
            self.rate = float(body.get("rate", 0.0))
            self.slow_rate = float(body.get("slow_rate", 0.0))
            low, high = body.get("slow_seconds", [0.05, 0.5])
            self.slow_seconds = (float(low), float(high))
            kinds = tuple(body.get("kinds", self.KINDS))
            unknown = [k for k in kinds if k not in self.KINDS]
            if unknown or not kinds:
                raise ValueError(f"unknown fault kinds {unknown}; the kinds are {list(self.KINDS)}")
            self.kinds = kinds
            actions = body.get("actions")
            self.actions = set(actions) if actions else None
            self.matching = str(body["matching"]) if body.get("matching") else None
            if "seed" in body:
                self.rng = random.Random(body["seed"])

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "rate": self.rate,
                "slow_rate": self.slow_rate,
                "injected": dict(self.injected),
                "injected_total": sum(self.injected.values()),
                "slowed": self.slowed,
            }

    def pick(self, action: str, body: bytes = b"") -> tuple[str | None, float]:
        """The fault for this request, if any, and how long to hold it first."""
        with self.lock:
            if self.actions is not None and action not in self.actions:
                return None, 0.0
            if self.matching is not None and self.matching.encode() not in body:
                return None, 0.0
            delay = 0.0
            if self.slow_rate and self.rng.random() < self.slow_rate:
                delay = self.rng.uniform(*self.slow_seconds)
                self.slowed += 1
            if self.rate and self.rng.random() < self.rate:
                kind = self.rng.choice(self.kinds)
                self.injected[kind] = self.injected.get(kind, 0) + 1
                return kind, delay
            return None, delay


def fault_response(service: str, kind: str) -> tuple[int, bytes]:
    """The answer AWS gives for a fault of this kind: status and XML body."""
    # Auto Scaling speaks awsQuery's errors; every other service here is answered as EC2 is.
    service = "autoscaling" if service == "autoscaling" else "ec2"
    status, code, message = FAULT_ERRORS[(service, kind)]
    request_id = str(uuid.uuid4())
    if service == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
    else:
        kind_of = "Sender" if status < 500 else "Receiver"
        body = (
            '<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">'
            f"<Error><Type>{kind_of}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    return status, body.encode()


def status_line(status: int) -> str:
    return f"{status} {REASONS.get(status, 'Unknown')}"
