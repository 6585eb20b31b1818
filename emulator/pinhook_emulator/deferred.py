"""Deferred answers: a slow request of a client on the manual clock is applied by a timer when its
delay has passed (whether or not the client still waits), and its answer kept for the client to
collect with `GET /_pinhook/deferred/<ticket>`."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

Answer = tuple[str, list[tuple[str, str]], bytes]


class Deferred:
    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def defer(self, due: float, serve: Callable[[], Answer]) -> tuple[str, Callable[[], None]]:
        """A ticket for a request to serve at `due`, and the timer's work that serves it."""
        ticket = f"d-{next(self._ids)}"
        entry: dict[str, Any] = {"due": due, "answer": None}
        self.entries[ticket] = entry
        # Keep the answers of the latest requests only.
        while len(self.entries) > 50_000:
            del self.entries[next(iter(self.entries))]

        def fire() -> None:
            entry["answer"] = serve()

        return ticket, fire

    def get(self, ticket: str) -> dict[str, Any] | None:
        return self.entries.get(ticket)
