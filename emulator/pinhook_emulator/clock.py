"""The emulator's one clock: wall time, or a manual clock that only the tests move.

Every time-dependent part of the emulator (settle and boot delays, lifecycle timeouts, read-lag
history, token refill, timestamps) reads `now()` here and schedules its delayed work as a timer
here, so a test can step time instead of sleeping through it.

* `real` (the default): now is wall time plus any explicit advance; a background thread fires
  each timer at its due time, under the emulator's lock.
* `manual`: time moves only by an explicit advance, by a client's clock header (each client's
  own elapsed time, see `observe`), or by a fixed tick per AWS request that carries no header.
  An advance fires the timers due by then in due-time order, each with now set to its due time.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

MODES = ("real", "manual")


class Timer:
    """One piece of delayed work; `cancel()` keeps it from firing."""

    def __init__(self, due: float, what: str, fn: Callable[[], None]) -> None:
        self.due = due
        self.what = what
        self.fn = fn
        self.cancelled = False
        self.fired = False

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    def __init__(self, lock: threading.RLock, mode: str = "real", tick: float = 0.1) -> None:
        if mode not in MODES:
            raise ValueError(f"clock mode must be one of {list(MODES)}")
        self.lock = lock
        self.mode = mode
        self.tick = float(tick)
        # Real mode: seconds explicitly advanced past wall time.
        self._offset = 0.0
        # Manual mode: the time itself.
        self._virtual = time.time()
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        # The last clock reading seen from each client (X-Pinhook-Clock), manual mode only.
        self._clients: dict[str, float] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = False

    # ---------------------------------------------------------------------------------------
    # Reading and configuring

    def now(self) -> float:
        if self.mode == "manual":
            return self._virtual
        return time.time() + self._offset

    def configure(self, mode: str | None = None, tick: float | None = None) -> None:
        with self.lock:
            if tick is not None:
                if float(tick) < 0:
                    raise ValueError("tick must be >= 0")
                self.tick = float(tick)
            if mode is None or mode == self.mode:
                return
            if mode not in MODES:
                raise ValueError(f"clock mode must be one of {list(MODES)}")
            current = self.now()
            if mode == "manual":
                self._virtual = current
            else:
                # Time never goes back: real mode resumes from the manual time if it is ahead.
                self._offset = max(0.0, current - time.time())
            self.mode = mode
            # A client's last reading belongs to the mode it was seen in.
            self._clients.clear()
        self._wake.set()

    def view(self) -> dict[str, Any]:
        with self.lock:
            timers = sorted(
                (t for _, _, t in self._heap if not t.cancelled and not t.fired), key=lambda t: t.due
            )
            return {
                "mode": self.mode,
                "now": self.now(),
                "tick": self.tick,
                "timers": [{"due": t.due, "what": t.what} for t in timers],
            }

    def cancel_all(self) -> None:
        """Forgets every timer not yet fired (a reset of the emulator)."""
        with self.lock:
            for _, _, timer in self._heap:
                timer.cancel()
            self._heap.clear()

    # ---------------------------------------------------------------------------------------
    # Timers

    def schedule(self, delay: float, what: str, fn: Callable[[], None]) -> Timer:
        """Runs fn under the lock `delay` seconds from now; at once (and synchronously) when the
        delay is not positive."""
        with self.lock:
            timer = Timer(self.now() + max(0.0, delay), what, fn)
            if delay <= 0:
                timer.fired = True
                fn()
                return timer
            heapq.heappush(self._heap, (timer.due, next(self._seq), timer))
        self._wake.set()
        return timer

    def _fire_until(self, limit: float) -> int:
        """Fires every timer due at or before limit, in due-time order (timers a firing one
        schedules included); in manual mode, now is each timer's due time while it runs."""
        fired = 0
        with self.lock:
            while self._heap and self._heap[0][0] <= limit:
                _, _, timer = heapq.heappop(self._heap)
                if timer.cancelled:
                    continue
                if self.mode == "manual":
                    self._virtual = max(self._virtual, timer.due)
                timer.fired = True
                fired += 1
                try:
                    timer.fn()
                except Exception:  # one broken timer must not stop the clock
                    traceback.print_exc()
        return fired

    def fire_due(self) -> int:
        with self.lock:
            return self._fire_until(self.now())

    def advance(self, seconds: float) -> int:
        """Moves time forward, firing what falls due on the way; how many timers fired."""
        if seconds < 0:
            raise ValueError("the clock only moves forward: seconds must be >= 0")
        with self.lock:
            if self.mode == "manual":
                target = self._virtual + seconds
                fired = self._fire_until(target)
                self._virtual = max(self._virtual, target)
                return fired
            self._offset += seconds
            return self._fire_until(self.now())

    # ---------------------------------------------------------------------------------------
    # Clients' clocks

    def observe(self, client: str, reading: float) -> float:
        """A client's own clock reading (X-Pinhook-Clock), in manual mode: the first sighting of
        a client advances nothing; each later one advances the clock by how far that client's
        clock moved since its latest reading. Concurrent clients only ever make time go faster.
        Returns the seconds advanced."""
        with self.lock:
            if self.mode != "manual":
                return 0.0
            last = self._clients.get(client)
            if last is None:
                self._clients[client] = reading
                return 0.0
            delta = max(0.0, reading - last)
            self._clients[client] = max(last, reading)
            if delta > 0:
                self.advance(delta)
            return delta

    def tick_request(self) -> None:
        """An AWS request without a clock header, in manual mode: time moves by one tick, as
        AWS's own latency would move it for a client that cannot say how long it waited."""
        with self.lock:
            if self.mode == "manual" and self.tick > 0:
                self.advance(self.tick)

    # ---------------------------------------------------------------------------------------
    # Real mode's timer thread

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pinhook-clock", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            wait = 1.0
            with self.lock:
                if self.mode == "real":
                    self.fire_due()
                    if self._heap:
                        wait = min(wait, max(0.0, self._heap[0][0] - self.now()))
            self._wake.wait(wait)


def iso_millis(t: float) -> str:
    """A timestamp as Auto Scaling and SNS write it: 2024-05-01T12:00:00.123Z."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_seconds(t: float) -> str:
    """A timestamp as EventBridge writes an event's time: 2024-05-01T12:00:00Z."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
