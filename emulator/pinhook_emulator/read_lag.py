"""EC2's eventual consistency: a describe may answer as the same describe did a moment ago."""

from __future__ import annotations

import json
import random
from typing import Any


class ReadLag:
    """ "The result of an API command you run that affects your Amazon EC2 resources might not be
    immediately visible to all subsequent commands you run" (EC2 developer guide, "Eventual
    consistency"). With a lag of L seconds, each EC2 Describe call answers as that same call did
    at a moment up to L seconds ago on the emulator's clock (chosen at random, or always L ago in
    mode "max"): the latest answer given at or before that moment, or the earliest one still
    remembered. Auto Scaling's reads lag separately (asg_lag.py)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.mode = "random"
        self.rng = random.Random()
        self.history: dict[str, list[tuple[float, list[tuple[str, str]], bytes]]] = {}
        self.stale_answers = 0

    def configure(self, seconds: float, mode: str, seed: Any = None) -> None:
        if seconds < 0 or mode not in ("random", "max"):
            raise ValueError('read_lag must be >= 0 and lag_mode "random" or "max"')
        self.seconds, self.mode = float(seconds), mode
        if seed is not None:
            self.rng = random.Random(seed)
        if self.seconds == 0:
            self.history.clear()

    def answer(
        self, key: str, headers: list[tuple[str, str]], payload: bytes, now: float
    ) -> tuple[list[tuple[str, str]], bytes]:
        entries = self.history.setdefault(key, [])
        entries.append((now, headers, payload))
        # Forget what no request can be answered with any more: everything before the last
        # answer given at or before now - seconds.
        horizon = now - self.seconds
        oldest = 0
        for i, (at, _, _) in enumerate(entries):
            if at <= horizon:
                oldest = i
        del entries[:oldest]
        lag = self.seconds if self.mode == "max" else self.rng.uniform(0, self.seconds)
        chosen = entries[0]
        for entry in entries:
            if entry[0] > now - lag:
                break
            chosen = entry
        if chosen[2] != payload:
            self.stale_answers += 1
        return chosen[1], chosen[2]


def request_key(action: str, form: dict[str, list[str]], query_string: str) -> str:
    """The same request, whatever its signature: the action and its parameters."""
    items = sorted((k, v) for k, values in form.items() for v in values)
    return json.dumps([action, query_string, items])
