"""Blocking client: :class:`Client`.

Thread-safety: a :class:`Client` owns one ZeroMQ socket, and ZeroMQ sockets
must not be used from two threads at once. A Client is therefore **not
thread-safe**: use one Client per thread (they are cheap and share one ZeroMQ
context), or one :class:`troupe.AsyncClient` for many concurrent calls.
Overlapping use from two threads is detected and raises :class:`RuntimeError`
instead of corrupting the socket. Handing a Client from one thread to another
between calls is fine.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Sequence

import zmq

from . import protocol as p
from .errors import DeadlineExceeded, TroupeError, error_for

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
DEFAULT_TIMEOUT = 60.0
DEFAULT_GRACE = 1.0
DEFAULT_WINDOW = 64


def default_endpoint() -> str:
    """``$TROUPE_BROKER`` if set, else ``tcp://127.0.0.1:5555``."""
    return os.environ.get("TROUPE_BROKER") or DEFAULT_ENDPOINT


def timeout_to_ms(timeout: float) -> int:
    """Seconds to the wire's ``timeout_ms`` (at least 1: 0 means broker default)."""
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    return max(1, min(int(round(timeout * 1000)), 0xFFFFFFFF))


def configure_socket(sock: zmq.Socket) -> None:
    """Options shared by clients and workers."""
    sock.setsockopt(zmq.LINGER, 0)  # closing never blocks on an absent broker
    sock.setsockopt(zmq.SNDHWM, 100_000)
    sock.setsockopt(zmq.RCVHWM, 100_000)


def args_of(item: Any) -> Sequence[Any]:
    """Arguments for one :meth:`Client.map` item: a tuple is the positional
    argument list, anything else (a list included) is the single argument."""
    return item if isinstance(item, tuple) else (item,)


class Client:
    """Blocking client for a troupe broker.

    ``timeout`` (seconds) is the default for every call; the broker enforces
    it (``deadline_exceeded``), and the client additionally stops waiting
    ``grace`` seconds later, so a call ends even when the broker is down.

    Not thread-safe; see the module documentation. Use as a context manager
    or call :meth:`close`.
    """

    def __init__(self, endpoint: str | None = None, timeout: float = DEFAULT_TIMEOUT, *,
                 grace: float = DEFAULT_GRACE, context: zmq.Context | None = None) -> None:
        self.endpoint = endpoint or default_endpoint()
        self.timeout = float(timeout)
        timeout_to_ms(self.timeout)  # validate early
        self.grace = float(grace)
        self._ids = itertools.count(1)  # 0 is reserved by the protocol
        self._busy = threading.Lock()
        self._ctx = context or zmq.Context.instance()
        self._sock: zmq.Socket | None = self._ctx.socket(zmq.DEALER)
        configure_socket(self._sock)
        self._sock.connect(self.endpoint)
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)

    # ------------------------------------------------------------ public

    def ask(self, address: str, method: str, *args: Any, timeout: float | None = None) -> Any:
        """Call ``method`` on ``address`` and return its result.

        Raises a :class:`TroupeError` subclass for an error reply, and
        :class:`DeadlineExceeded` when no reply arrives in time.
        """
        with self._guard():
            t = self.timeout if timeout is None else timeout
            deadline = time.monotonic() + t + self.grace
            id_ = self._send(address, method, args, 0, t, deadline)
            while True:
                reply = self._recv_reply(deadline)
                if reply is None:
                    raise DeadlineExceeded(f"no reply from {self.endpoint} within {t:g} s")
                if reply.id == id_:
                    return _result(reply)
                # else: a late reply to an earlier call that timed out; drop it

    def tell(self, address: str, method: str, *args: Any, timeout: float | None = None) -> None:
        """Send a one-way message. Nothing comes back, not even errors;
        ``timeout`` bounds how long the broker keeps it queued."""
        with self._guard():
            t = self.timeout if timeout is None else timeout
            self._send(address, method, args, p.FLAG_TELL, t, time.monotonic() + t + self.grace)

    def map(self, address: str, method: str, items: Iterable[Any], *,
            window: int = DEFAULT_WINDOW, timeout: float | None = None,
            return_exceptions: bool = False) -> list[Any]:
        """Call ``method`` once per item, at most ``window`` calls in flight,
        and return the results in the order of ``items``.

        An item that is a ``tuple`` is the positional argument list; any other
        item (a list included) is passed as the single argument, so
        ``map("vectorize", "apply", [[1.0, 2.0], [3.0]])`` calls ``apply``
        twice with one list each. ``timeout`` applies to each call.

        With ``return_exceptions=False`` the first failed item (in item order)
        is raised once the calls in flight have ended; no new calls are sent
        after a failure. With ``True`` the exceptions take the failed items'
        places in the result.
        """
        if window < 1:
            raise ValueError("window must be at least 1")
        todo = list(items)
        with self._guard():
            t = self.timeout if timeout is None else timeout
            results: list[Any] = [None] * len(todo)
            failed: dict[int, TroupeError] = {}
            pending: dict[int, tuple[int, float]] = {}  # request id -> (index, deadline)
            sent = 0
            while sent < len(todo) or pending:
                while sent < len(todo) and len(pending) < window and not (failed and not return_exceptions):
                    deadline = time.monotonic() + t + self.grace
                    id_ = self._send(address, method, args_of(todo[sent]), 0, t, deadline)
                    pending[id_] = (sent, deadline)
                    sent += 1
                if not pending:
                    break  # stopped sending after a failure
                reply = self._recv_reply(min(d for _, d in pending.values()))
                if reply is None:
                    now = time.monotonic()
                    for id_, (i, d) in list(pending.items()):
                        if d <= now:
                            del pending[id_]
                            failed[i] = DeadlineExceeded(f"no reply from {self.endpoint} within {t:g} s")
                    continue
                entry = pending.pop(reply.id, None)
                if entry is None:
                    continue
                try:
                    results[entry[0]] = _result(reply)
                except TroupeError as exc:
                    failed[entry[0]] = exc
            if failed and not return_exceptions:
                raise failed[min(failed)]
            for i, exc in failed.items():
                results[i] = exc
            return results

    def ping(self) -> str:
        """``$broker.ping``: returns ``"pong"``."""
        return self.ask(p.BROKER_ACTOR, "ping")

    def stats(self) -> dict[str, Any]:
        """``$broker.stats``: the broker's counters."""
        return self.ask(p.BROKER_ACTOR, "stats")

    def workers(self) -> list[dict[str, Any]]:
        """``$broker.workers``: one map per registered worker."""
        return self.ask(p.BROKER_ACTOR, "workers")

    def actors(self) -> dict[str, dict[str, int]]:
        """``$broker.actors``: per actor name, workers, queued requests, keys."""
        return self.ask(p.BROKER_ACTOR, "actors")

    def close(self) -> None:
        """Close the socket. Calls in flight are abandoned. Idempotent."""
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ internals

    @contextmanager
    def _guard(self) -> Iterator[None]:
        if self._sock is None:
            raise RuntimeError("Client is closed")
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("troupe.Client used from two threads at once; use one Client per thread")
        try:
            yield
        finally:
            self._busy.release()

    def _send(self, address: str, method: str, args: Sequence[Any], flags: int,
              timeout: float, deadline: float) -> int:
        assert self._sock is not None
        id_ = next(self._ids)
        frames = p.encode_request(id_, address, method, args, flags=flags,
                                  timeout_ms=timeout_to_ms(timeout))
        while True:
            try:
                self._sock.send_multipart(frames, flags=zmq.NOBLOCK)
                return id_
            except zmq.Again:
                # Send queue full (broker unreachable for long): wait, bounded.
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DeadlineExceeded(f"could not send to {self.endpoint}") from None
                zmq.select([], [self._sock], [], min(left, 0.1))

    def _recv_reply(self, deadline: float) -> p.Reply | None:
        """The next well-formed REPLY, or None once ``deadline`` passes."""
        assert self._sock is not None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if not dict(self._poller.poll(max(1, int(left * 1000)))):
                continue
            frames = self._sock.recv_multipart(flags=zmq.NOBLOCK)
            try:
                msg = p.decode(frames)
            except p.ProtocolError:
                continue  # nothing useful to do with garbage from the broker
            if isinstance(msg, p.Reply):
                return msg


def _result(reply: p.Reply) -> Any:
    if reply.ok:
        return reply.value
    raise error_for(reply.status, reply.value)
