"""`pyrelay`: a Python actor that calls other actors from its methods
(docs/python.md, "Calling other actors"), like the C++ `relay` of the
examples worker.

    python3 -m troupe.worker examples/python/relay.py
    troupe call pyrelay/a forward '"squares"' '"square"' '[7]'                        -> 49
    troupe call pyrelay/a forward '"relay/b"' '"forward"' '["squares", "square", [7]]'  -> 49 (through C++)
    troupe call pyrelay/a forward '"pyrelay/a"' '"forward"' '["squares", "square", [7]]' -> call_cycle
"""

from __future__ import annotations

from typing import Any

import troupe


@troupe.actor("pyrelay")
class Relay:
    def __init__(self, key: str | None = None, *, ctx: troupe.Context) -> None:
        self.ctx = ctx  # lives as long as this instance
        self.forwarded = 0

    async def forward(self, address: str, method: str, args: list) -> Any:
        """address.method(*args): its result, or its error with its code."""
        result = await self.ctx.ask(address, method, *args)
        self.forwarded += 1  # no other message of this instance ran meanwhile
        return result

    async def total(self, address: str, method: str, items: list) -> Any:
        """The sum of address.method(item) over the items, all in flight at once."""
        calls = [self.ctx.ask(address, method, item) for item in items]  # each is sent now
        return sum([await call for call in calls])

    def forward_blocking(self, address: str, method: str, args: list) -> Any:
        """forward as a plain method: the whole worker process waits for the reply."""
        return self.ctx.ask(address, method, *args).result()

    def notify(self, address: str, method: str, args: list) -> None:
        """A one-way call: returns at once."""
        self.ctx.tell(address, method, *args)

    def forwarded_so_far(self) -> int:
        return self.forwarded
