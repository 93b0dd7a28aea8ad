"""asyncio client: :class:`AsyncClient`.

One socket serves any number of concurrent calls; replies are matched to
their callers by correlation id. An AsyncClient belongs to the event loop it
is first used in and is not thread-safe.

How it stays cheap: the socket is a plain ZeroMQ socket whose file
descriptor is registered with the event loop (``add_reader``). An ask packs
and sends its request at once and waits on one future; whenever the socket
may have something, one callback reads every waiting reply and resolves the
futures. No task, timer or extra future is made per call: one sweep every
100 ms ends the calls whose time is up.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, Iterable, Sequence

import msgpack
import zmq

from . import curve
from . import protocol as p
from .client import RESEND, new_message_id
from .client import (DEFAULT_GRACE, DEFAULT_TIMEOUT, DEFAULT_WINDOW, RETRACTED, args_of,
                     configure_socket, default_endpoint, fast_send, reply_reader, timeout_to_ms, _poller)
from .errors import DeadlineExceeded, error_for

_REQUEST = p.header(p.Command.REQUEST)
_OK = p.Status.OK.value
_NOBLOCK, _SNDMORE = int(zmq.NOBLOCK), int(zmq.SNDMORE)
_SWEEP = 0.1        # seconds between looks for calls whose time is up
_DRAIN_BATCH = 512  # replies read per callback before letting other callbacks run


class AsyncClient:
    """asyncio client for a troupe broker.

    ``await client.ask(address, method, *args)`` returns the result or raises
    a :class:`TroupeError` subclass. Thousands of asks may be in flight at
    once from concurrent tasks. Timeouts work as in :class:`troupe.Client`.
    Use ``async with AsyncClient(...) as client`` or ``await client.close()``.
    """

    def __init__(self, endpoint: str | None = None, timeout: float = DEFAULT_TIMEOUT, *,
                 grace: float = DEFAULT_GRACE, context: zmq.Context | None = None,
                 curve_secret: str | None = None, broker_key: str | None = None) -> None:
        self.endpoint = endpoint or default_endpoint()
        self.timeout = float(timeout)
        self._timeout_ms = timeout_to_ms(self.timeout)
        self.grace = float(grace)
        self._ids = itertools.count(1)
        self._ctx = context or zmq.Context.instance()
        # A plain socket, also from a zmq.asyncio.Context: the event loop
        # watches its file descriptor directly.
        self._sock: zmq.Socket | None = zmq.Socket(self._ctx, zmq.DEALER)
        configure_socket(self._sock)
        # CURVE, as for troupe.Client.
        self._keys = curve.load(curve_secret, broker_key)
        curve.secure(self._sock, self._keys)
        self._watch = curve.HandshakeWatch(self._ctx, self._sock, self.endpoint, self._keys is not None)
        self._sock.connect(self.endpoint)
        self._send_frame = fast_send(self._sock)
        self._read, self._confirm, self._waiting = reply_reader(self._sock)
        self._ready = _poller(self._sock)
        self._pack = msgpack.Packer().pack
        # id -> (future or _Batch, deadline, timeout for an ask / index for a batch)
        self._pending: dict[int, tuple[Any, float, Any]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_soon = False
        self._sweep_handle: asyncio.TimerHandle | None = None
        self._sweep_at = 0.0

    async def ask(self, address: str, method: str, *args: Any, timeout: float | None = None,
                  durable: bool = False, id: str | None = None) -> Any:
        """Call ``method`` on ``address`` and return its result. ``durable``:
        like :meth:`troupe.Client.ask`."""
        if durable or id is not None:
            return await self._durable(address, method, args, timeout, False, id, 0.0)
        return await self._ask(address, method, args, timeout)

    async def tell(self, address: str, method: str, *args: Any, timeout: float | None = None,
                   durable: bool = False, id: str | None = None, delay: float = 0.0) -> None:
        """Send a one-way message; nothing comes back. ``durable``: like
        :meth:`troupe.Client.tell`, returns once the broker stored it."""
        if durable or id is not None or delay:
            await self._durable(address, method, args, timeout, True, id, delay)
            return
        loop = self._attach()
        t = self.timeout if timeout is None else timeout
        tms = timeout_to_ms(t)
        deadline = loop.time() + t + self.grace
        id_ = next(self._ids)
        meta, body = self._pack([id_, address, method, p.FLAG_TELL, tms]), self._pack(args)
        if not self._send_now(meta, body):
            await self._send_later(meta, body, deadline)

    async def map(self, address: str, method: str, items: Iterable[Any], *,
                  window: int = DEFAULT_WINDOW, timeout: float | None = None,
                  return_exceptions: bool = False) -> list[Any]:
        """Like :meth:`troupe.Client.map`: one call per item (a tuple is the
        argument list, anything else the single argument), at most ``window``
        in flight, results in item order."""
        if window < 1:
            raise ValueError("window must be at least 1")
        loop = self._attach()
        t = self.timeout if timeout is None else timeout
        batch = _Batch(self, loop, address, method, list(items), window, t, timeout_to_ms(t), return_exceptions)
        batch.fill()
        try:
            return await batch.future
        finally:
            batch.stopped = True  # cancelled or ended: send nothing more

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
        """Stop reading, fail calls in flight, close the socket. Idempotent."""
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
            self._sweep_handle = None
        if self._loop is not None and self._sock is not None:
            try:
                self._loop.remove_reader(self._sock.FD)
            except (ValueError, RuntimeError, zmq.ZMQError):
                pass  # the loop is closing
        pending, self._pending = self._pending, {}
        for target, _, index in pending.values():
            if isinstance(target, _Batch):
                target.fail(index, RuntimeError("AsyncClient closed"))
            elif not target.done():
                target.set_exception(RuntimeError("AsyncClient closed"))
        if self._sock is not None:
            self._watch.close()
            self._sock.close(linger=0)
            self._sock = None

    def _no_reply(self, t: float) -> str:
        """The message of a call that got no reply within ``t`` seconds: why,
        when the broker refused the handshake or nothing answers."""
        return self._watch.why(f"no reply from {self.endpoint} within {t:g} s")

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ internals

    def _attach(self) -> asyncio.AbstractEventLoop:
        """The running loop, which watches the socket from the first call on."""
        if self._sock is None:
            raise RuntimeError("AsyncClient is closed")
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None and not self._loop.is_closed():
                raise RuntimeError("AsyncClient used from a second event loop")
            # First use, or the first loop has closed (a second asyncio.run):
            # nothing scheduled on the old loop will run.
            self._loop = loop
            self._drain_soon, self._sweep_handle, self._sweep_at = False, None, 0.0
            loop.add_reader(self._sock.FD, self._drain)
        return loop

    async def _ask(self, address: str, method: str, args: Sequence[Any], timeout: float | None) -> Any:
        loop = self._attach()
        if timeout is None:
            t, tms = self.timeout, self._timeout_ms
        else:
            t, tms = timeout, timeout_to_ms(timeout)
        deadline = loop.time() + t + self.grace
        id_ = next(self._ids)
        pack = self._pack
        meta, body = pack([id_, address, method, 0, tms]), pack(args)
        fut = loop.create_future()
        self._pending[id_] = (fut, deadline, t)
        if deadline < self._sweep_at or self._sweep_handle is None:
            self._schedule_sweep(loop, deadline)
        try:
            if not self._send_now(meta, body):
                await self._send_later(meta, body, deadline)
            return await fut
        finally:
            if not fut.done():  # cancelled, or the send failed
                self._pending.pop(id_, None)

    async def _durable(self, address: str, method: str, args: Sequence[Any], timeout: float | None, tell: bool,
                       message_id: str | None, delay: float) -> Any:
        """A durable ask or tell (docs/durability.md): re-sent under its
        message id every RESEND seconds until answered, which costs nothing
        at the broker (it stores and runs each id once) and covers a broker
        that restarted while we waited."""
        loop = self._attach()
        t = self.timeout if timeout is None else timeout
        deadline = loop.time() + t + self.grace
        id_ = next(self._ids)
        durable: dict[str, Any] = {"id": message_id or new_message_id()}
        if delay:
            durable["delay_ms"] = max(0, int(delay * 1000))
        flags = (p.FLAG_TELL if tell else 0) | p.FLAG_DURABLE
        meta, body = self._pack([id_, address, method, flags, timeout_to_ms(t), durable]), self._pack(args)
        fut = loop.create_future()
        self._pending[id_] = (fut, deadline, t)
        if deadline < self._sweep_at or self._sweep_handle is None:
            self._schedule_sweep(loop, deadline)
        try:
            while True:
                if not self._send_now(meta, body):
                    await self._send_later(meta, body, deadline)
                try:
                    return await asyncio.wait_for(asyncio.shield(fut), RESEND)
                except asyncio.TimeoutError:
                    if loop.time() >= deadline:
                        raise DeadlineExceeded(self._no_reply(t)) from None
        finally:
            if not fut.done():
                self._pending.pop(id_, None)

    def _send_now(self, meta: bytes, body: bytes) -> bool:
        """Send a REQUEST if the socket takes it at once; then look for
        replies soon (a send can take the readable signal of the socket's
        file descriptor with it)."""
        send = self._send_frame
        try:
            send(_REQUEST, _NOBLOCK | _SNDMORE)
        except zmq.Again:
            return False
        send(meta, _SNDMORE)  # the first frame is taken, so are the others
        send(body, 0)
        if not self._drain_soon:
            self._drain_soon = True
            self._loop.call_soon(self._drain)  # type: ignore[union-attr]
        return True

    async def _send_later(self, meta: bytes, body: bytes, deadline: float) -> None:
        # Send queue full (broker unreachable for long): retry, bounded.
        loop = self._loop
        assert loop is not None
        while not self._send_now(meta, body):
            if loop.time() >= deadline:
                raise DeadlineExceeded(self._watch.why(f"could not send to {self.endpoint}"))
            await asyncio.sleep(0.01)
            if self._sock is None:
                raise RuntimeError("AsyncClient closed")

    def _drain(self) -> None:
        """Read every waiting reply and hand each to its caller.

        With many calls out, replies arrive in batches (hundreds per call of
        this with 1,000 in flight): then each reply is read lazily (see
        :func:`troupe.client.reply_reader`) and handed over once the next
        frame shows it was whole, and only the end of the batch is looked
        for, instead of looking after every reply."""
        self._drain_soon = False
        if self._sock is None:
            return
        read, waiting, pending = self._read, self._waiting, self._pending
        if not waiting() and not self._ready():
            return  # nothing (the descriptor also signals other changes)
        lazy = len(pending) > 4
        last = None  # (id, entry, status, value): read lazily, not handed over yet

        def hand_over(entry: tuple[Any, float, Any], status: str, value: Any) -> None:
            target = entry[0]
            if type(target) is _Batch:
                target.deliver(entry[2], status, value)
            elif not target.done():
                if status == _OK:
                    target.set_result(value)
                else:
                    target.set_exception(error_for(status, value))

        try:
            for _ in range(_DRAIN_BATCH):
                try:
                    reply = read(_NOBLOCK, lazy)
                except zmq.Again:
                    return  # nothing follows: the last reply was whole
                except zmq.ZMQError:
                    last = None
                    return  # closed under us
                if reply is not None and reply[1] is RETRACTED:
                    if last is not None and last[0] == reply[0]:
                        pending[last[0]] = last[1]  # it had more than three frames: not a reply, wait on
                        last = None
                    continue
                if last is not None:
                    hand_over(last[1], last[2], last[3])
                    last = None
                entry = pending.pop(reply[0], None) if reply is not None else None
                if entry is not None:  # else ignored, or a late reply to a call that ended
                    if lazy:
                        last = (reply[0], entry, reply[1], reply[2])
                    else:
                        hand_over(entry, reply[1], reply[2])
                if not lazy and not waiting():
                    return
            if last is not None and self._confirm() == last[0]:
                pending[last[0]] = last[1]
                last = None
            if not self._drain_soon:  # more may wait: come back after the others had a turn
                self._drain_soon = True
                self._loop.call_soon(self._drain)  # type: ignore[union-attr]
        finally:
            if last is not None:
                hand_over(last[1], last[2], last[3])

    def _schedule_sweep(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
        self._sweep_at = min(when, loop.time() + _SWEEP)
        self._sweep_handle = loop.call_at(self._sweep_at, self._sweep)

    def _sweep(self) -> None:
        """End the calls whose time is up, and the abandoned ones."""
        self._sweep_handle = None
        loop, pending = self._loop, self._pending
        assert loop is not None
        now, earliest = loop.time(), float("inf")
        ended = []
        for id_, (target, deadline, extra) in pending.items():
            if deadline <= now or (type(target) is not _Batch and target.done()):
                ended.append(id_)
            elif deadline < earliest:
                earliest = deadline
        for id_ in ended:
            target, _, extra = pending.pop(id_)
            if type(target) is _Batch:
                target.fail(extra, DeadlineExceeded(self._no_reply(target.timeout)))
            elif not target.done():
                target.set_exception(DeadlineExceeded(self._no_reply(extra)))
        if pending:
            self._schedule_sweep(loop, earliest)


class _Batch:
    """One :meth:`AsyncClient.map`: keeps ``window`` calls in flight from
    the reply callback itself, and resolves one future at the end."""

    def __init__(self, client: AsyncClient, loop: asyncio.AbstractEventLoop, address: str, method: str,
                 todo: list[Any], window: int, timeout: float, timeout_ms: int, return_exceptions: bool) -> None:
        self.client, self.loop, self.address, self.method = client, loop, address, method
        self.todo, self.window, self.timeout, self.timeout_ms = todo, window, timeout, timeout_ms
        self.return_exceptions = return_exceptions
        self.results: list[Any] = [None] * len(todo)
        self.failed: dict[int, BaseException] = {}
        self.sent = 0
        self.in_flight = 0
        self.stopped = False
        self.retry: asyncio.TimerHandle | None = None
        self.blocked_since: float | None = None
        self.future: asyncio.Future[list[Any]] = loop.create_future()

    def fill(self) -> None:
        """Send items until ``window`` are in flight."""
        self.retry = None
        c, todo, n = self.client, self.todo, len(self.todo)
        if c._sock is None:
            self.abandon(RuntimeError("AsyncClient closed"))
            return
        pack, pending, ids = c._pack, c._pending, c._ids
        now = self.loop.time()
        deadline = now + self.timeout + c.grace
        while (self.sent < n and self.in_flight < self.window and not self.stopped
               and not (self.failed and not self.return_exceptions)):
            i = self.sent
            id_ = next(ids)
            item = todo[i]
            try:
                meta = pack([id_, self.address, self.method, 0, self.timeout_ms])
                body = pack(args_of(item))
            except Exception as exc:  # not MessagePack data: raised from map, as from ask
                self.stopped = True
                self.finish(exc)
                return
            if not c._send_now(meta, body):
                # Send queue full: try again shortly, for at most the call's time.
                if self.blocked_since is None:
                    self.blocked_since = now
                if now - self.blocked_since > self.timeout + c.grace:
                    self.abandon(DeadlineExceeded(c._watch.why(f"could not send to {c.endpoint}")))
                else:
                    self.retry = self.loop.call_later(0.01, self.fill)
                return
            self.blocked_since = None
            pending[id_] = (self, deadline, i)
            self.sent += 1
            self.in_flight += 1
        if deadline < c._sweep_at or c._sweep_handle is None:
            c._schedule_sweep(self.loop, deadline)
        self.check_end()

    def deliver(self, i: int, status: str, value: Any) -> None:
        self.in_flight -= 1
        if status == _OK:
            self.results[i] = value
        else:
            self.failed[i] = error_for(status, value)
        if self.sent < len(self.todo):
            self.fill()
        else:
            self.check_end()

    def fail(self, i: int, exc: BaseException) -> None:
        """Call ``i`` ended without a reply: its time is up, or the client closed."""
        self.in_flight -= 1
        self.failed[i] = exc
        if isinstance(exc, RuntimeError):
            self.abandon(exc)
        elif self.sent < len(self.todo):
            self.fill()
        else:
            self.check_end()

    def abandon(self, exc: BaseException) -> None:
        """No more sends: every item not sent yet fails with ``exc``."""
        for j in range(self.sent, len(self.todo)):
            self.failed[j] = exc
        self.sent = len(self.todo)
        self.stopped = True
        self.check_end()

    def check_end(self) -> None:
        if self.in_flight or self.future.done():
            return
        if self.sent < len(self.todo) and not self.stopped and not (self.failed and not self.return_exceptions):
            return
        if self.failed and not self.return_exceptions:
            self.finish(self.failed[min(self.failed)])
            return
        for i, exc in self.failed.items():
            self.results[i] = exc
        self.future.set_result(self.results)

    def finish(self, exc: BaseException) -> None:
        """End the map with ``exc`` at once (arguments that cannot be packed)."""
        if self.retry is not None:
            self.retry.cancel()
        if not self.future.done():
            self.future.set_exception(exc)
