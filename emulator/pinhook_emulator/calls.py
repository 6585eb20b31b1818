"""The call log: every AWS request the emulator served, counted per action, and the mutating ones
with their main parameters, status and error code."""

from __future__ import annotations

from typing import Any

# Parameters worth recording for each request, so tests can see exactly what was asked.
RECORDED_PARAMS = (
    "NetworkInterfaceId",
    "InstanceId",
    "AttachmentId",
    "DeviceIndex",
    "AllocationId",
    "AssociationId",
    "LifecycleActionToken",
    "LifecycleActionResult",
    "AutoScalingGroupName",
)


class Calls:
    def __init__(self) -> None:
        self.by_action: dict[str, int] = {}
        self.log: list[dict[str, Any]] = []
        # Seconds moto spent serving requests under the lock: the emulator's own serial work
        # (wall time, whatever the emulator's clock says).
        self.busy_seconds = 0.0
        self.busy_by_action: dict[str, float] = {}
        # Bytes of the answers served, per action: what a client had to read.
        self.bytes_by_action: dict[str, int] = {}

    def count(self, action: str) -> None:
        self.by_action[action] = self.by_action.get(action, 0) + 1

    def record(self, action: str, form: dict[str, list[str]], status: str, payload: bytes) -> None:
        self.bytes_by_action[action] = self.bytes_by_action.get(action, 0) + len(payload)
        code = int(status.split()[0])
        # Reads are many: only a refused one, or one for a page after the first, is logged.
        next_page = "NextToken" in form
        if action.startswith("Describe") and code < 400 and not next_page:
            return
        entry: dict[str, Any] = {"action": action, "status": code}
        if next_page:
            entry["page"] = "next"
        for key in RECORDED_PARAMS:
            if key in form:
                entry[key] = form[key][0]
        if entry["status"] >= 400:
            text = payload.decode("utf-8", "replace")
            start, end = text.find("<Code>"), text.find("</Code>")
            if start >= 0 and end > start:
                entry["code"] = text[start + len("<Code>") : end]
        self.log.append(entry)
        del self.log[:-100_000]

    def busy(self, action: str, seconds: float) -> None:
        self.busy_seconds += seconds
        self.busy_by_action[action] = self.busy_by_action.get(action, 0.0) + seconds

    def view(self) -> dict[str, Any]:
        return {
            "calls": dict(self.by_action),
            "total": sum(self.by_action.values()),
            "busy_seconds": self.busy_seconds,
            "busy_seconds_by_action": dict(self.busy_by_action),
            "bytes_by_action": dict(self.bytes_by_action),
            "bytes": sum(self.bytes_by_action.values()),
        }

    def matching(self, wanted: dict[str, str]) -> list[dict[str, Any]]:
        return [e for e in self.log if all(str(e.get(k)) == v for k, v in wanted.items())]
