"""Python actors that call actors, for test_calls.py (with `pyrelay` from
examples/python/relay.py): hosted by ``python3 -m troupe.worker call_actors``."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import troupe


@troupe.actor("pyhop")
class Hopper:
    """pyhop/N asks pyhop/N-1, ... down to 0; each returns the addresses below it and its own."""

    def __init__(self, key: str | None, *, ctx: troupe.Context) -> None:
        self.ctx = ctx

    async def hop(self, n: int) -> list:
        path = await self._below(n) if n > 0 else []
        return path + [self.ctx.address]

    async def _below(self, n: int) -> list:  # a coroutine of its own, awaited
        return await self.ctx.ask(f"pyhop/{n - 1}", "hop", n - 1)


@troupe.actor("pypatient")
class Patient:
    """Awaits a call and remembers how it ended (code) and after how long."""

    def __init__(self, key: str | None = None, *, ctx: troupe.Context) -> None:
        self.ctx = ctx
        self.last = ""
        self.last_ms = 0.0
        self.finished = 0

    async def call(self, address: str, method: str, args: list, sleep_first: float = 0.0) -> Any:
        if sleep_first:
            time.sleep(sleep_first)  # uses up the message's time before asking
        start = time.monotonic()
        try:
            value = await self.ctx.ask(address, method, *args)
            self._note("ok", start)
            return value
        except troupe.TroupeError as exc:
            self._note(exc.code, start)
            raise

    async def call_within(self, address: str, method: str, args: list, timeout: float) -> Any:
        return await self.ctx.ask(address, method, *args, timeout=timeout)

    async def caught(self, address: str, method: str, args: list) -> list:
        """The callee's error as data: [code, message]."""
        try:
            return ["ok", await self.ctx.ask(address, method, *args)]
        except troupe.TroupeError as exc:
            return [exc.code, exc.message]

    async def bad_await(self) -> None:
        await asyncio.sleep(0)

    async def no_await(self, x: int) -> int:
        return x + 1

    async def raises(self) -> None:
        raise KeyError("nothing here")

    def report(self) -> dict:
        return {"last": self.last, "last_ms": self.last_ms, "finished": self.finished}

    def pid(self) -> int:
        return os.getpid()

    async def pids_via(self, address: str) -> list:
        """[this process's pid, the pid of the process that served address.pid]."""
        return [os.getpid(), await self.ctx.ask(address, "pid")]

    def _note(self, how: str, start: float) -> None:
        self.finished += 1
        self.last = how
        self.last_ms = (time.monotonic() - start) * 1000.0
