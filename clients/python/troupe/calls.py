"""Calls from inside a Python actor's methods: :class:`Context`, :class:`Pending`.

An actor whose constructor takes a ``ctx`` parameter gets a
:class:`Context`, which lives as long as the instance::

    @troupe.actor("relay")
    class Relay:
        def __init__(self, key: str | None = None, *, ctx: troupe.Context) -> None:
            self.ctx = ctx

        async def forward(self, address: str, method: str, args: list) -> Any:
            return await self.ctx.ask(address, method, *args)

``ctx.ask`` sends the call at once and returns a :class:`Pending`: an
``async def`` method awaits it (the worker serves other instances
meanwhile), a plain method may block on ``result()`` (the whole worker
process waits). ``ctx.tell`` is one-way.

The worker process sends every call through one DEALER socket of its own
(:class:`Caller`), opened on the first call, with the worker's CURVE keys.
Each ask carries its call chain (docs/protocol.md, "Call chains") and at
most the time the message being handled has left.

Thread-safety: a Context belongs to the worker's main thread, which runs
the methods; using it from another thread raises :class:`RuntimeError`.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Generator

import msgpack
import zmq

from . import curve
from . import protocol as p
from .client import DEFAULT_GRACE, DEFAULT_TIMEOUT, configure_socket, fast_send, timeout_to_ms
from .errors import error_for

_OK = p.Status.OK.value
_DEADLINE = p.Status.DEADLINE_EXCEEDED.value
_BAD_REQUEST = p.Status.BAD_REQUEST.value
_REQUEST = p.header(p.Command.REQUEST)
_REPLY = p.header(p.Command.REPLY)
_MORE = int(zmq.SNDMORE | zmq.NOBLOCK)
_NOBLOCK = int(zmq.NOBLOCK)


class Pending:
    """The reply to one ask made from inside a method.

    ``await pending`` (in an ``async def`` method) gives the callee's result
    or raises :class:`troupe.TroupeError` with the callee's code; while it
    waits, the worker process serves other instances. ``result()`` does the
    same by blocking the whole worker process until the reply comes.
    """

    __slots__ = ("_caller", "id", "address", "method", "_expires", "_done", "_status", "_value", "_waiter")

    def __init__(self, caller: Caller | None, id_: int, address: str, method: str, expires: float) -> None:
        self._caller = caller
        self.id = id_
        self.address = address
        self.method = method
        self._expires = expires
        self._done = False
        self._status = _OK
        self._value: Any = None
        self._waiter: Any = None  # the worker's task awaiting it

    @classmethod
    def failed(cls, status: str, message: str, address: str = "", method: str = "") -> Pending:
        """A call that was never sent: it ended at once with ``status``."""
        pending = cls(None, 0, address, method, 0.0)
        pending._done, pending._status, pending._value = True, status, message
        return pending

    def done(self) -> bool:
        """Whether the reply (or the call's end) is here."""
        return self._done

    def result(self) -> Any:
        """The callee's result, blocking the worker process until it comes.

        Nothing else runs in the worker process meanwhile (other instances,
        coroutines whose replies came), and a call that needs this process
        (another instance it hosts) cannot be served: it ends only by its
        deadline. In an ``async def`` method, ``await`` it instead."""
        if not self._done and self._caller is not None:
            self._caller.wait(self)
        return self.outcome()

    def outcome(self) -> Any:
        """The result of a call that is done, or raises its error."""
        if not self._done:
            raise RuntimeError(f"the call to {self.address}.{self.method} has not ended yet")
        if self._status == _OK:
            return self._value
        raise error_for(self._status, self._value)

    def __await__(self) -> Generator[Pending, None, Any]:
        if not self._done:
            yield self  # to the worker's driver, which resumes us with the reply
        return self.outcome()

    def _complete(self, status: str, value: Any) -> None:
        if self._done:
            return
        self._done, self._status, self._value = True, status, value
        caller = self._caller
        if caller is None:
            return
        if self._waiter is not None:
            caller.ready.append(self)  # stays in pending until the worker resumes its waiter
        else:
            caller.pending.pop(self.id, None)

    def __repr__(self) -> str:
        state = "done" if self._done else "pending"
        return f"<troupe.Pending {self.address}.{self.method} {state}>"


class Caller:
    """A worker process's calls to other actors: one DEALER socket, opened
    on the first call, and the calls out on it. Main thread only.

    ``pending`` holds every call sent and not finished with: a call whose
    reply came stays there until the worker resumes the coroutine awaiting
    it (``ready`` lists those, in the order their replies came), so the
    worker's loop looks at this socket exactly while ``pending`` is not
    empty."""

    def __init__(self, zctx: zmq.Context, endpoint: str, keys: curve.Keys | None,
                 max_message_bytes: int = p.MAX_MESSAGE_BYTES) -> None:
        self._zctx = zctx
        self._endpoint = endpoint
        self._keys = keys
        self._max_bytes = max_message_bytes
        self.sock: zmq.Socket | None = None
        self._ids = 0
        self.pending: dict[int, Pending] = {}
        self.ready: collections.deque[Pending] = collections.deque()
        self.closing = ""  # why new asks are refused, once the worker is stopping
        self.thread = threading.get_ident()
        self.sent = 0
        self._pack = msgpack.Packer().pack
        self._sent_on: tuple[Any, Any] = (None, None)  # (socket, its fast send)

    def _send(self, sock: zmq.Socket) -> Any:
        if self._sent_on[0] is not sock:
            self._sent_on = (sock, fast_send(sock))
        return self._sent_on[1]

    def _socket(self) -> zmq.Socket:
        if self.sock is None:
            sock = self._zctx.socket(zmq.DEALER)
            try:
                configure_socket(sock)
                curve.secure(sock, self._keys)  # the worker's keys: a CURVE broker must let them request too
                sock.connect(self._endpoint)
            except zmq.ZMQError:
                sock.close(linger=0)
                raise
            self.sock = sock
        return self.sock

    def check_thread(self) -> None:
        if threading.get_ident() != self.thread:
            raise RuntimeError("a troupe.Context is used from its worker's main thread only (the one running "
                               "the methods)")

    def ask(self, address: str, method: str, args: bytes, timeout: float,
            chain: list[list[Any]]) -> Pending:
        if self.closing:
            return Pending.failed(_DEADLINE, self.closing, address, method)
        self._ids = self._ids + 1 if self._ids < p.MAX_ID else 1
        id_ = self._ids
        pending = Pending(self, id_, address, method, time.monotonic() + timeout + DEFAULT_GRACE)
        # As p.encode_request writes it, without its generality: meta with
        # the chain as 7th element (6th nil: not durable).
        meta = self._pack([id_, address, method, 0, timeout_to_ms(timeout), None, chain])
        try:
            send = self._send(self._socket())
            send(_REQUEST, _MORE)
            send(meta, _MORE)
            send(args, _NOBLOCK)
        except zmq.Again:
            return Pending.failed(_DEADLINE, "the worker's call socket cannot send: the broker is not taking "
                                  "messages", address, method)
        self.sent += 1
        self.pending[id_] = pending
        return pending

    def tell(self, address: str, method: str, args: bytes) -> None:
        if self.closing:
            return
        self._ids = self._ids + 1 if self._ids < p.MAX_ID else 1
        frames = p.encode_request(self._ids, address, method, args, flags=p.FLAG_TELL,
                                  timeout_ms=timeout_to_ms(DEFAULT_TIMEOUT))
        try:
            self._socket().send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:
            pass  # one-way: nothing says whether it ran
        self.sent += 1

    def read(self) -> None:
        """Takes every reply waiting on the socket."""
        sock = self.sock
        if sock is None:
            return
        pending_calls, max_bytes = self.pending, self._max_bytes
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                if len(frames) != 3 or frames[0] != _REPLY:
                    raise ValueError
                meta = msgpack.unpackb(frames[1])
                id_, status = meta
                if type(meta) is not list or type(id_) is not int or type(status) is not str:
                    raise ValueError
                value = p.unpack(frames[2], max_bytes=max_bytes)  # within the limits, whatever the callee sent
            except Exception:
                try:  # anything unusual: the general decoder, which drops what is malformed
                    msg = p.decode(frames, max_bytes=max_bytes)
                except p.ProtocolError:
                    continue
                if not isinstance(msg, p.Reply):
                    continue
                id_, status, value = msg.id, msg.status, msg.value
            pending = pending_calls.get(id_)
            if pending is not None:
                pending._complete(status, value)

    def expire(self, now: float) -> None:
        """Ends the calls whose reply is overdue (the broker is gone):
        ``deadline_exceeded``, as a client's ask ends."""
        for pending in [c for c in self.pending.values() if not c._done and c._expires <= now]:
            pending._complete(_DEADLINE, f"no reply to {pending.address}.{pending.method} in time "
                                         f"(is the broker at {self._endpoint} running?)")

    def wait(self, pending: Pending) -> None:
        """Blocks until ``pending`` is done (``Pending.result``); replies to
        other calls that come meanwhile are kept for the worker."""
        self.check_thread()
        while not pending._done:
            now = time.monotonic()
            self.expire(now)
            if pending._done:
                return
            sock = self._socket()
            if sock.poll(max(1, min(100, int((pending._expires - now) * 1000) + 1)), zmq.POLLIN):
                self.read()

    def close_all(self, why: str) -> None:
        """Ends every call out with ``deadline_exceeded`` (``why``) and
        refuses new asks: the worker is stopping."""
        self.closing = why
        for pending in list(self.pending.values()):
            pending._complete(_DEADLINE, why)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close(linger=0)
            self.sock = None


class Context:
    """An instance's way to call other actors (docs/python.md, "Calling
    other actors"). The worker gives one to a constructor that takes a
    ``ctx`` parameter; it lives as long as the instance.

    ``address``, ``name`` and ``key`` are the instance's own
    (``"counter/alice"``, ``"counter"``, ``"alice"``; ``key`` is None for an
    unkeyed address). One built outside a worker (for a unit test) sends
    nothing: its asks fail at once with ``bad_request``, its tells do
    nothing.
    """

    __slots__ = ("address", "name", "key", "_caller", "_request", "_chain", "_deadline")

    def __init__(self, address: str, caller: Caller | None = None) -> None:
        self.address = address
        self.name, self.key = p.split_address(address)
        self._caller = caller
        self._request = 0
        self._chain: list[Any] | None = None
        self._deadline: float | None = None

    def _begin(self, request_id: int, chain: list[Any] | None, deadline: float | None) -> None:
        """The worker: a message starts (its broker request id, its call
        chain, when its time is up); the calls made while handling it carry them."""
        self._request, self._chain, self._deadline = request_id, chain, deadline

    def ask(self, address: str, method: str, *args: Any, timeout: float | None = None) -> Pending:
        """Calls ``address.method(*args)`` and returns its :class:`Pending`
        reply at once: ``await`` it in an ``async def`` method, or
        ``result()`` it. The call gets at most the time the message being
        handled has left (``timeout`` seconds, default 30, can only lower
        it); with none left it ends at once with ``deadline_exceeded``. A
        chain of more than 64 calls ends with ``bad_request``. Raises
        :class:`TypeError` for arguments that are not MessagePack data."""
        packed = p.pack(list(args))
        caller = self._caller
        if caller is None:
            return Pending.failed(_BAD_REQUEST, "calls from a method need a worker process to send them",
                                  address, method)
        caller.check_thread()
        t = DEFAULT_TIMEOUT if timeout is None else timeout
        if t <= 0:
            raise ValueError("timeout must be positive")
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            if left <= 0:
                return Pending.failed(_DEADLINE, f"the message {self.address} is handling has no time left "
                                      "for a call", address, method)
            t = min(t, left)
        chain = self._chain
        if chain is not None and len(chain) >= p.MAX_CHAIN_LENGTH:
            return Pending.failed(_BAD_REQUEST, f"the call chain would be longer than {p.MAX_CHAIN_LENGTH} calls",
                                  address, method)
        links = [*chain, [self.address, self._request]] if chain else [[self.address, self._request]]
        return caller.ask(address, method, packed, t, links)

    def tell(self, address: str, method: str, *args: Any) -> None:
        """One-way call to ``address.method(*args)``: returns at once, and
        nothing says whether it ran; it carries no call chain (it waits for
        nothing). Raises :class:`TypeError` for arguments that are not
        MessagePack data."""
        packed = p.pack(list(args))
        caller = self._caller
        if caller is None:
            return
        caller.check_thread()
        caller.tell(address, method, packed)

    def __repr__(self) -> str:
        return f"<troupe.Context {self.address}>"
