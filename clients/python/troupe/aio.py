"""asyncio client: :class:`AsyncClient`.

One socket and one background reader task serve any number of concurrent
calls; replies are matched to their callers by correlation id. An
AsyncClient belongs to the event loop it is first used in and is not
thread-safe.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, Iterable, Sequence

import zmq
import zmq.asyncio

from . import protocol as p
from .client import (DEFAULT_GRACE, DEFAULT_TIMEOUT, DEFAULT_WINDOW, args_of,
                     configure_socket, default_endpoint, timeout_to_ms)
from .errors import DeadlineExceeded, TroupeError, error_for


class AsyncClient:
    """asyncio client for a troupe broker.

    ``await client.ask(address, method, *args)`` returns the result or raises
    a :class:`TroupeError` subclass. Thousands of asks may be in flight at
    once from concurrent tasks. Timeouts work as in :class:`troupe.Client`.
    Use ``async with AsyncClient(...) as client`` or ``await client.close()``.
    """

    def __init__(self, endpoint: str | None = None, timeout: float = DEFAULT_TIMEOUT, *,
                 grace: float = DEFAULT_GRACE, context: zmq.asyncio.Context | None = None) -> None:
        self.endpoint = endpoint or default_endpoint()
        self.timeout = float(timeout)
        timeout_to_ms(self.timeout)
        self.grace = float(grace)
        self._ids = itertools.count(1)
        self._ctx = context or zmq.asyncio.Context.instance()
        self._sock: zmq.asyncio.Socket | None = self._ctx.socket(zmq.DEALER)
        configure_socket(self._sock)
        self._sock.connect(self.endpoint)
        self._pending: dict[int, asyncio.Future[p.Reply]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def ask(self, address: str, method: str, *args: Any, timeout: float | None = None) -> Any:
        """Call ``method`` on ``address`` and return its result."""
        return await self._ask(address, method, args, timeout)

    async def tell(self, address: str, method: str, *args: Any, timeout: float | None = None) -> None:
        """Send a one-way message; nothing comes back."""
        t = self.timeout if timeout is None else timeout
        frames = p.encode_request(next(self._ids), address, method, args,
                                  flags=p.FLAG_TELL, timeout_ms=timeout_to_ms(t))
        try:
            async with asyncio.timeout(t + self.grace):
                await self._socket().send_multipart(frames)
        except TimeoutError:
            raise DeadlineExceeded(f"could not send to {self.endpoint}") from None

    async def map(self, address: str, method: str, items: Iterable[Any], *,
                  window: int = DEFAULT_WINDOW, timeout: float | None = None,
                  return_exceptions: bool = False) -> list[Any]:
        """Like :meth:`troupe.Client.map`: one call per item (a tuple is the
        argument list, anything else the single argument), at most ``window``
        in flight, results in item order."""
        if window < 1:
            raise ValueError("window must be at least 1")
        slots = asyncio.Semaphore(window)
        stop = asyncio.Event()

        async def one(item: Any) -> Any:
            async with slots:
                if stop.is_set():
                    return None  # an earlier item failed; do not send more
                try:
                    return await self._ask(address, method, args_of(item), timeout)
                except TroupeError as exc:
                    if not return_exceptions:
                        stop.set()
                    return exc

        results = await asyncio.gather(*(one(item) for item in items))
        if not return_exceptions:
            for r in results:
                if isinstance(r, TroupeError):
                    raise r
        return list(results)

    async def ping(self) -> str:
        """``$broker.ping``."""
        return await self.ask(p.BROKER_ACTOR, "ping")

    async def stats(self) -> dict[str, Any]:
        """``$broker.stats``."""
        return await self.ask(p.BROKER_ACTOR, "stats")

    async def workers(self) -> list[dict[str, Any]]:
        """``$broker.workers``."""
        return await self.ask(p.BROKER_ACTOR, "workers")

    async def close(self) -> None:
        """Stop the reader, fail calls in flight, close the socket. Idempotent."""
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass
            self._reader = None
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(RuntimeError("AsyncClient closed"))
        self._pending.clear()
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ internals

    def _socket(self) -> zmq.asyncio.Socket:
        if self._sock is None:
            raise RuntimeError("AsyncClient is closed")
        return self._sock

    async def _ask(self, address: str, method: str, args: Sequence[Any], timeout: float | None) -> Any:
        sock = self._socket()
        t = self.timeout if timeout is None else timeout
        id_ = next(self._ids)
        frames = p.encode_request(id_, address, method, args, timeout_ms=timeout_to_ms(t))
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read_loop())
        fut: asyncio.Future[p.Reply] = asyncio.get_running_loop().create_future()
        self._pending[id_] = fut
        try:
            async with asyncio.timeout(t + self.grace):
                await sock.send_multipart(frames)
                reply = await fut
        except TimeoutError:
            raise DeadlineExceeded(f"no reply from {self.endpoint} within {t:g} s") from None
        finally:
            self._pending.pop(id_, None)
        if reply.ok:
            return reply.value
        raise error_for(reply.status, reply.value)

    async def _read_loop(self) -> None:
        sock = self._socket()
        while True:
            frames = await sock.recv_multipart()
            try:
                msg = p.decode(frames)
            except p.ProtocolError:
                continue
            if isinstance(msg, p.Reply):
                fut = self._pending.get(msg.id)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
