"""Example Python actors, hosted by a Python worker:

    python3 -m troupe.worker examples/python/greeter.py --broker tcp://127.0.0.1:5555

then, from anywhere:

    troupe call greeter greet '"Ada"'
    troupe call tally/alice add 5

Each worker process builds its own Greeter on the first message and destroys
it exactly once when the worker stops (Ctrl-C / SIGTERM).
"""

from __future__ import annotations

import os

import troupe


@troupe.actor("greeter")
class Greeter:
    """Unkeyed: one instance per worker process, built lazily."""

    def __init__(self) -> None:
        # Stands in for expensive state (a model, a connection, a big table):
        # built once per process, on first use, never pickled or shipped.
        self.greeted = 0
        print(f"greeter built in pid {os.getpid()}", flush=True)

    def greet(self, name: str) -> str:
        self.greeted += 1
        return f"Hello, {name}! (greeting #{self.greeted} from pid {os.getpid()})"

    def fail(self, message: str) -> None:
        """Raises, so callers see troupe.ActorError with this message."""
        raise ValueError(message)

    def close(self) -> None:
        print(f"greeter destroyed in pid {os.getpid()}", flush=True)


@troupe.actor("tally")
class Tally:
    """Keyed: ``tally/alice`` and ``tally/bob`` are separate instances with
    their own totals; the broker sends every message for one key to the same
    worker, in order."""

    def __init__(self, key: str | None) -> None:
        self.key = key
        self.total = 0

    def add(self, n: int) -> int:
        self.total += n
        return self.total

    def get(self) -> int:
        return self.total

    def close(self) -> None:
        print(f"tally/{self.key} destroyed in pid {os.getpid()} at total {self.total}", flush=True)
