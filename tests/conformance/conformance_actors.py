"""The Python side of the conformance suite: the actor ``conf``, as
conformance_worker.cpp defines it in C++, method for method (see there)."""

from __future__ import annotations

import os
import time

import troupe


@troupe.actor("conf")
class Conf:
    def __init__(self, key: str | None) -> None:
        self.address = "conf" if key is None else f"conf/{key}"
        self.log_of: list[int] = []
        print(f"built {self.address}", flush=True)

    def echo(self, x):  # any value
        return x

    def add(self, a: int, b: int) -> int:
        return a + b

    def fail(self, message: str) -> None:
        raise RuntimeError(message)

    def sleep_ms(self, ms: int) -> int:
        time.sleep(ms / 1000.0)
        return ms

    def pid(self) -> int:
        return os.getpid()

    def log(self, x: int) -> int:
        self.log_of.append(x)
        return len(self.log_of)

    def seen(self) -> list[int]:
        return self.log_of

    def close(self) -> None:
        print(f"destroyed {self.address}", flush=True)
