"""Python actors used by the tests (hosted by ``python3 -m troupe.worker sample_actors``)."""

from __future__ import annotations

import os
import time

import troupe


@troupe.actor("pyecho")
class Echo:
    def __init__(self) -> None:
        print(f"pyecho built in pid {os.getpid()}", flush=True)

    def echo(self, x):  # no annotation: any value
        return x

    def add(self, a: int, b: int) -> int:
        return a + b

    def fail(self, message: str) -> None:
        raise ValueError(message)

    def sleep(self, seconds: float) -> int:
        time.sleep(seconds)
        return os.getpid()

    def spin(self, seconds: float) -> int:
        """Busy Python loop: holds the GIL except at switch points."""
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            n += 1
        return os.getpid()

    def pid(self) -> int:
        return os.getpid()

    def unencodable(self) -> object:
        return object()

    def close(self) -> None:
        print(f"pyecho destroyed in pid {os.getpid()}", flush=True)


@troupe.actor("pytally")
class Tally:
    def __init__(self, key: str | None) -> None:
        self.key = key
        self.total = 0

    def add(self, n: int) -> int:
        self.total += n
        return self.total

    def key_of(self) -> str | None:
        return self.key

    def close(self) -> None:
        print(f"pytally/{self.key} destroyed in pid {os.getpid()}", flush=True)


@troupe.actor("pybroken")
class Broken:
    def __init__(self) -> None:
        raise RuntimeError("constructor failed on purpose")

    def anything(self) -> None:
        return None
