"""The EventBridge events EC2 sends when an instance changes state ("EC2 Instance State-change
Notification"), recorded in order on the emulator's clock for `GET /_pinhook/ec2-events`."""

from __future__ import annotations

import uuid
from typing import Any

from .clock import iso_seconds
from .state import current

DETAIL_TYPE = "EC2 Instance State-change Notification"


class Ec2Events:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        # The last state recorded per instance id: a state is recorded once per change.
        self.last: dict[str, str] = {}

    def record(self, instance: Any, state: str) -> None:
        if self.last.get(instance.id) == state:
            return
        self.last[instance.id] = state
        backend = instance.ec2_backend
        region = backend.region_name
        account = backend.account_id
        self.events.append(
            {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": DETAIL_TYPE,
                "source": "aws.ec2",
                "account": account,
                "time": iso_seconds(current().now()),
                "region": region,
                "resources": [f"arn:aws:ec2:{region}:{account}:instance/{instance.id}"],
                "detail": {"instance-id": instance.id, "state": state},
            }
        )

    def view(self, instance: str | None = None, since: int = 0) -> dict[str, Any]:
        """The events from index `since` of the whole log on, of one instance or all; `next` is
        the index to ask from next time."""
        found = [
            e
            for e in self.events[max(0, since) :]
            if instance is None or e["detail"]["instance-id"] == instance
        ]
        return {"events": found, "next": len(self.events)}

    def renamed(self, old: str, new: str) -> None:
        """An instance adopted under another id (POST adopt): its later events carry the new id."""
        if old in self.last:
            self.last[new] = self.last.pop(old)
