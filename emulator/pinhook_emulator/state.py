"""The emulator's one state object: the lock, the clock, the settings, and everything the
emulator keeps beside moto's own backends (lifecycle actions, warm pools, claimers, faults, rate
limits, the call log, read-lag and Auto Scaling histories, notifications, EC2 events, deferred
answers), reached through `current()`."""

from __future__ import annotations

import threading
from typing import Any

from .clock import Clock


class Settings:
    """What `POST /_pinhook/settings` (and the command line) sets."""

    def __init__(self) -> None:
        # Seconds an attachment stays `attaching`, a detachment `detaching`.
        self.attach_delay = 0.2
        self.detach_delay = 0.3
        # Seconds added to every AWS request, as the network and AWS's own processing add them
        # (50–150 ms in a Region).
        self.latency = 0.0
        # How long a new group instance stays `pending`; per group name, or for every group.
        self.boot_delay = 0.0
        self.group_boot_delays: dict[str, float] = {}
        # How long an instance started by RunInstances or StartInstances (no group) boots.
        self.plain_boot_delay = 0.0
        # Auto Scaling's read lag (seconds), and whether a brand-new instance is left out of the
        # listings until it has passed.
        self.asg_lag = 0.0
        self.asg_lag_unlisted = False
        # At most this many items per page of a paginated describe (0: as asked).
        self.page_size = 0
        # Past this many network interfaces, an unpaginated DescribeNetworkInterfaces fails.
        self.unpaginated_limit = 0

    def boot_delay_of(self, group: str | None) -> float:
        if group is None:
            return self.plain_boot_delay
        return self.group_boot_delays.get(group, self.boot_delay)


class State:
    def __init__(self) -> None:
        # One lock for every API request and every timed state change: each AWS call is atomic.
        self.lock = threading.RLock()
        self.clock = Clock(self.lock)
        self._fresh()

    def reset(self) -> None:
        """A fresh account: moto's backends emptied, every pending timer forgotten, and every
        setting, fault, limit and record back to its default. The clock keeps its mode, tick and
        time, which never goes back."""
        from moto.moto_api._internal.models import moto_api_backend

        with self.lock:
            self.clock.cancel_all()
            moto_api_backend.reset()
            self._fresh()

    def _fresh(self) -> None:
        # The concerns' own modules import this one, so their classes are imported here.
        from .asg_lag import AsgHistory
        from .calls import Calls
        from .claimers import Claimers
        from .deferred import Deferred
        from .ec2_events import Ec2Events
        from .faults import Faults
        from .lifecycle import Lifecycle
        from .notifications import Notifications
        from .pagination import PageTokens
        from .rate_limits import RateLimits
        from .read_lag import ReadLag

        self.settings = Settings()
        self.lifecycle = Lifecycle()
        # The warm pool of each group, by group name: instances in Warmed:* states.
        self.warm: dict[str, list[Any]] = {}
        self.claimers = Claimers()
        self.faults = Faults()
        self.rate_limits = RateLimits()
        self.calls = Calls()
        self.read_lag = ReadLag()
        self.asg_history = AsgHistory()
        self.notifications = Notifications()
        self.ec2_events = Ec2Events()
        self.deferred = Deferred()
        self.page_tokens = PageTokens()

    def now(self) -> float:
        return self.clock.now()

    def later(self, delay: float, what: str, fn: Any) -> Any:
        """Runs fn under the lock `delay` seconds from now on the emulator's clock (at once when
        the delay is 0)."""
        return self.clock.schedule(delay, what, fn)

    def warm_pool(self, group_name: str) -> list[Any]:
        return self.warm.get(group_name, [])


_STATE: State | None = None
_CREATING = threading.Lock()


def current() -> State:
    """The emulator's state (one per process)."""
    global _STATE
    if _STATE is None:
        with _CREATING:
            if _STATE is None:
                _STATE = State()
    return _STATE
