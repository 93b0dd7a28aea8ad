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

import collections
import itertools
import os
import threading
import time
import uuid
from typing import Any, Iterable, Sequence

import msgpack
import zmq

from . import curve
from . import protocol as p
from .errors import DeadlineExceeded, TroupeError, error_for

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
# The same defaults as the C++ client (docs/operations.md, "Defaults"):
# a call waits 30 s; the client itself gives up 0.25 s after that, so the
# broker's own deadline_exceeded normally arrives first.
DEFAULT_TIMEOUT = 30.0
DEFAULT_GRACE = 0.25
DEFAULT_WINDOW = 64


RESEND = 1.0
"""Seconds between re-sends of an unanswered durable message, under its
message id: the broker stores and runs each id once, so a re-send costs a
lookup and covers a broker that restarted while the caller waited."""


def new_message_id() -> str:
    """A fresh durable message id: 32 random hex digits."""
    return uuid.uuid4().hex


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


def fast_send(sock: zmq.Socket) -> Any:
    """``sock.send`` without pyzmq's Python-level wrapper, which only adds
    routing_id/group support (draft sockets) and costs about as much as the
    send itself for a small frame. Call it as ``send(data, flags)`` with
    int flags."""
    base = getattr(zmq.backend, "Socket", None)
    if isinstance(base, type) and isinstance(sock, base) and "send" in base.__dict__:
        return base.__dict__["send"].__get__(sock, type(sock))
    return sock.send


_REQUEST = p.header(p.Command.REQUEST)
_REPLY = p.header(p.Command.REPLY)
_OK = p.Status.OK.value
_NOBLOCK, _SNDMORE = int(zmq.NOBLOCK), int(zmq.SNDMORE)
_SLICE_MS = 100  # a blocking receive waits at most this long before looking at the clock


def _poller(sock: zmq.Socket) -> Any:
    """``ready()``: whether a frame can be received from ``sock`` now.

    With pyzmq 24 this (zmq_poll with timeout 0) costs about half of what
    ``sock.get(zmq.RCVMORE)`` does, and a fraction of a ``recv(NOBLOCK)``
    that raises :class:`zmq.Again`."""
    poll, items = zmq.backend.zmq_poll, [(sock, zmq.POLLIN)]

    def ready() -> bool:
        return bool(poll(items, 0))

    return ready


def _is_header(frame: bytes) -> bool:
    return len(frame) == p.HEADER_LEN and frame[:3] == p.SIGNATURE


RETRACTED = None
"""The status :func:`reply_reader`'s ``read`` gives a reply it takes back."""


def reply_reader(sock: zmq.Socket) -> tuple[Any, Any, Any]:
    """Functions that read REPLYs off a client's DEALER socket:

    - ``read(flags=0, lazy=False)`` returns ``(id, status, value)`` of the
      next REPLY, or ``None`` for a message to ignore; it raises
      :class:`zmq.Again` when nothing arrives (``flags``, or the socket's
      RCVTIMEO). With ``lazy``, see below.
    - ``confirm()``, after a lazy ``read``: ``None``, or the id of the reply
      that read returned and that must be taken back.
    - ``waiting()`` says, right after a ``read``, whether another message
      was already there.

    With pyzmq 24, ``recv_multipart`` asks ``zmq_getsockopt(RCVMORE)`` after
    every frame, which costs as much as two ``recv`` calls each time. This
    reads a REPLY's three frames with plain ``recv`` and then looks whether
    anything follows (``zmq_poll`` with no wait, half that price and a
    system call): if so, it reads that frame too, and it must be the header
    of the next message (kept for the next ``read``); otherwise the REPLY had
    more than three frames and is ignored whole. What follows a REPLY is
    always the broker's own (a header), never a worker's or a client's bytes,
    so no content can make a reply look like another.

    A lazy ``read`` returns the REPLY without looking: the next ``read`` (or
    ``confirm()``) does, and if the REPLY had more frames it returns
    ``(id, RETRACTED, None)`` (or ``confirm()`` returns the id) so that the
    caller takes that result back. ``Client.map``, which keeps reading, saves
    the look per reply this way.
    """
    recv, get, ready = sock.recv, sock.get, _poller(sock)
    unpackb, decode, unpack, check_depth = msgpack.unpackb, p.decode, p.unpack, p._check_depth
    Again, ProtocolError, NOBLOCK, RCVMORE = zmq.Again, p.ProtocolError, _NOBLOCK, zmq.RCVMORE
    REPLY, SIGNATURE, MAX_ID, MAX_DEPTH = _REPLY, p.SIGNATURE, p.MAX_ID, p.MAX_DEPTH
    held: collections.deque[bytes] = collections.deque()  # frames read ahead, in order
    # After a lazy read: [set, id returned (None if ignored), its value frame]
    unchecked: list[Any] = [False, None, b""]

    def skip_rest() -> None:
        # The message being read is not a REPLY, or is malformed: drop the
        # rest of it, then read ahead as after any message.
        held.clear()
        while get(RCVMORE):
            recv()
        if ready():
            held.append(recv(NOBLOCK))

    def after(first: bytes, value: bytes) -> bool:
        """``first`` is the frame read after the REPLY whose last frame
        was ``value``: True if that REPLY had exactly three frames. Leaves
        in ``held`` what begins the next message."""
        if len(first) == 5 and first[:3] == SIGNATURE:
            held.append(first)
            return True
        if len(value) == 5 and value[:3] == SIGNATURE:
            held.extend((value, first))  # the REPLY had two frames; value and first start the next
        else:
            held.append(first)
            skip_rest()  # more than three frames
        return False

    def check_unchecked(first: bytes) -> Any:
        unchecked[0] = False
        if after(first, unchecked[2]) or unchecked[1] is None:
            return None
        return unchecked[1]

    def read(flags: int = 0, lazy: bool = False) -> tuple[int, Any, Any] | None:
        if held:
            hdr = held.popleft()
        else:
            try:
                hdr = recv(flags)
            except Again:
                unchecked[0] = False  # nothing followed the last REPLY: it was whole
                raise
            if unchecked[0] and not (len(hdr) == 5 and hdr[:3] == SIGNATURE):
                taken_back = check_unchecked(hdr)
                if taken_back is not None:
                    return taken_back, RETRACTED, None
                if not held:
                    return None
                hdr = held.popleft()
            unchecked[0] = False
        if hdr != REPLY:
            skip_rest()
            return None
        try:
            meta = held.popleft() if held else recv(NOBLOCK)
        except Again:
            return None  # a header alone, nothing after it
        if len(meta) == 5 and meta[:3] == SIGNATURE:
            held.appendleft(meta)  # the REPLY was a header alone; this starts the next message
            return None
        try:
            value = held.popleft() if held else recv(NOBLOCK)
        except Again:
            return None  # two frames, nothing after them
        if lazy:
            unchecked[0], unchecked[1], unchecked[2] = True, None, value
        elif ready() and not after(recv(NOBLOCK), value):
            return None
        try:
            m = unpackb(meta)
            id_, status = m
            if type(m) is not list or type(id_) is not int or not 0 <= id_ <= MAX_ID or type(status) is not str:
                raise ValueError
        except Exception:
            try:
                msg = decode([hdr, meta, value])
            except ProtocolError:
                return None
            unchecked[1] = msg.id
            return msg.id, msg.status, msg.value
        try:
            result = unpackb(value)
        except Exception:
            try:  # non-str map keys, or malformed: the general decoder says which
                result = unpack(value)
            except ProtocolError:
                return None
        else:
            if len(value) > MAX_DEPTH:  # shorter cannot nest deeper
                try:
                    check_depth(result, MAX_DEPTH)
                except ProtocolError:
                    return None
        unchecked[1] = id_
        return id_, status, result

    def confirm() -> Any:
        if not unchecked[0]:
            return None
        if not ready():
            unchecked[0] = False
            return None
        return check_unchecked(recv(NOBLOCK))

    def waiting() -> bool:
        return bool(held)

    return read, confirm, waiting


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
                 grace: float = DEFAULT_GRACE, context: zmq.Context | None = None,
                 curve_secret: str | None = None, broker_key: str | None = None) -> None:
        self.endpoint = endpoint or default_endpoint()
        self.timeout = float(timeout)
        self._timeout_ms = timeout_to_ms(self.timeout)  # validates early
        self.grace = float(grace)
        self._ids = itertools.count(1)  # 0 is reserved by the protocol
        self._busy = threading.Lock()
        self._ctx = context or zmq.Context.instance()
        self._sock: zmq.Socket | None = self._ctx.socket(zmq.DEALER)
        configure_socket(self._sock)
        # CURVE (docs/security.md): the files given, else $TROUPE_CURVE_SECRET
        # and $TROUPE_BROKER_KEY; none: plaintext. The watch says why calls
        # fail when the broker refuses the handshake or is not there.
        self._keys = curve.load(curve_secret, broker_key)
        curve.secure(self._sock, self._keys)
        self._watch = curve.HandshakeWatch(self._ctx, self._sock, self.endpoint, self._keys is not None)
        self._sock.setsockopt(zmq.RCVTIMEO, _SLICE_MS)
        self._rcvtimeo = _SLICE_MS
        self._sock.connect(self.endpoint)
        self._send_frame = fast_send(self._sock)
        self._read, self._confirm, _ = reply_reader(self._sock)
        self._pack = msgpack.Packer().pack

    # ------------------------------------------------------------ public

    def ask(self, address: str, method: str, *args: Any, timeout: float | None = None,
            durable: bool = False, id: str | None = None) -> Any:
        """Call ``method`` on ``address`` and return its result.

        Raises a :class:`TroupeError` subclass for an error reply, and
        :class:`DeadlineExceeded` when no reply arrives in time.

        ``durable`` (docs/durability.md): the broker stores the call before
        running it, runs it at least once and records its result under the
        message ``id`` (default: a fresh one); the call is re-sent under that
        id until answered, so a broker restart does not lose it.
        :class:`StoreUnavailable` when the broker cannot store it.
        """
        if durable or id is not None:
            return self._durable(address, method, args, timeout, False, id, 0.0)
        busy = self._enter()
        try:
            t = self.timeout if timeout is None else timeout
            deadline = time.monotonic() + t + self.grace
            id_ = self._send(address, method, args, 0, self._timeout_ms if timeout is None else timeout_to_ms(t),
                             deadline)
            while True:
                reply = self._recv_reply(deadline)
                if reply is None:
                    raise DeadlineExceeded(self._no_reply(t))
                if reply[0] == id_:
                    if reply[1] == _OK:
                        return reply[2]
                    raise error_for(reply[1], reply[2])
                # else: a late reply to an earlier call that timed out; drop it
                if time.monotonic() >= deadline:
                    raise DeadlineExceeded(self._no_reply(t))
        finally:
            busy.release()

    def tell(self, address: str, method: str, *args: Any, timeout: float | None = None,
             durable: bool = False, id: str | None = None, delay: float = 0.0) -> None:
        """Send a one-way message. Nothing comes back, not even errors;
        ``timeout`` bounds how long the broker keeps it queued.

        ``durable`` (docs/durability.md): returns only once the broker has
        stored the message on disk (re-sent under its message ``id`` until
        then); from then on it runs at least once. ``delay`` (seconds): not
        delivered before. Raises :class:`StoreUnavailable` when the broker
        cannot store it, :class:`DeadlineExceeded` without a confirmation
        within ``timeout``."""
        if durable or id is not None or delay:
            self._durable(address, method, args, timeout, True, id, delay)
            return
        busy = self._enter()
        try:
            t = self.timeout if timeout is None else timeout
            self._send(address, method, args, p.FLAG_TELL, timeout_to_ms(t), time.monotonic() + t + self.grace)
        finally:
            busy.release()

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
        busy = self._enter()
        try:
            t = self.timeout if timeout is None else timeout
            tms = self._timeout_ms if timeout is None else timeout_to_ms(t)
            wait = t + self.grace
            n = len(todo)
            results: list[Any] = [None] * n
            sent_at: list[float] = [0.0] * n
            failed: dict[int, TroupeError] = {}
            pending: dict[int, int] = {}  # request id -> index
            pack, send, ids, read = self._pack, self._send_frame, self._ids, self._read
            monotonic = time.monotonic
            sent = 0
            last = (0, 0)  # (id, index) of the last reply taken: a lazy read may take it back
            while sent < n or pending or self._taken_back(last, pending, results, failed):
                if sent < n and len(pending) < window and not (failed and not return_exceptions):
                    now = monotonic()
                    while sent < n and len(pending) < window:
                        item = todo[sent]
                        id_ = next(ids)
                        meta = pack([id_, address, method, 0, tms])
                        body = pack(item if isinstance(item, tuple) else (item,))
                        try:
                            send(_REQUEST, _NOBLOCK | _SNDMORE)
                        except zmq.Again:
                            self._wait_to_send(now + wait)
                            continue  # packed again with a fresh id: nothing of this one was sent
                        send(meta, _SNDMORE)
                        send(body, 0)
                        pending[id_] = sent
                        sent_at[sent] = now
                        sent += 1
                if not pending:
                    break  # stopped sending after a failure
                try:
                    reply = read(0, True)  # waits at most RCVTIMEO; looks at what follows next time
                except zmq.Again:
                    reply = None
                if reply is None:
                    # Nothing for a while (or something to ignore): end the calls whose time is up.
                    now = monotonic()
                    earliest = now + wait
                    for id_, i in list(pending.items()):
                        if sent_at[i] + wait <= now:
                            del pending[id_]
                            failed[i] = DeadlineExceeded(self._no_reply(t))
                        elif sent_at[i] + wait < earliest:
                            earliest = sent_at[i] + wait
                    self._wait_at_most(earliest - now)
                    continue
                if reply[1] is RETRACTED:  # the last reply had more than three frames: not a reply
                    if reply[0] == last[0]:
                        self._take_back(last, pending, results, failed)
                    continue
                i = pending.pop(reply[0], None)
                if i is None:
                    continue
                last = (reply[0], i)
                if reply[1] == _OK:
                    results[i] = reply[2]
                else:
                    failed[i] = error_for(reply[1], reply[2])
            if failed and not return_exceptions:
                raise failed[min(failed)]
            for i, exc in failed.items():
                results[i] = exc
            return results
        finally:
            busy.release()

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
            self._watch.close()
            self._sock.close(linger=0)
            self._sock = None

    def _no_reply(self, t: float) -> str:
        """The message of a call that got no reply within ``t`` seconds: why,
        when the broker refused the handshake or nothing answers."""
        return self._watch.why(f"no reply from {self.endpoint} within {t:g} s")

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ internals

    def _enter(self) -> threading.Lock:
        """The guard of every call: the Lock to release when it ends."""
        if self._sock is None:
            raise RuntimeError("Client is closed")
        busy = self._busy
        if not busy.acquire(False):
            raise RuntimeError("troupe.Client used from two threads at once; use one Client per thread")
        return busy

    def _durable(self, address: str, method: str, args: Sequence[Any], timeout: float | None, tell: bool,
                 message_id: str | None, delay: float) -> Any:
        """A durable ask or tell, re-sent under its message id every RESEND
        seconds until answered."""
        busy = self._enter()
        try:
            t = self.timeout if timeout is None else timeout
            deadline = time.monotonic() + t + self.grace
            durable: dict[str, Any] = {"id": message_id or new_message_id()}
            if delay:
                durable["delay_ms"] = max(0, int(delay * 1000))
            flags = (p.FLAG_TELL if tell else 0) | p.FLAG_DURABLE
            id_ = next(self._ids)
            while True:
                self._send(address, method, args, flags, timeout_to_ms(t), deadline, durable, id_)
                resend_at = min(deadline, time.monotonic() + RESEND)
                while True:
                    reply = self._recv_reply(resend_at)
                    if reply is None:
                        break
                    if reply[0] == id_:
                        if reply[1] == _OK:
                            return None if tell else reply[2]
                        raise error_for(reply[1], reply[2])
                if time.monotonic() >= deadline:
                    raise DeadlineExceeded(self._no_reply(t))
        finally:
            busy.release()

    def _send(self, address: str, method: str, args: Sequence[Any], flags: int,
              timeout_ms: int, deadline: float, durable: dict[str, Any] | None = None,
              id_: int | None = None) -> int:
        """Send one REQUEST; its id. Raises TypeError for arguments that are
        not MessagePack data, before anything is sent. ``durable``: the 6th
        meta element of a durable request; ``id_``: the correlation id to
        reuse (a re-send)."""
        if id_ is None:
            id_ = next(self._ids)
        pack = self._pack
        meta = pack([id_, address, method, flags, timeout_ms] if durable is None else
                    [id_, address, method, flags, timeout_ms, durable])
        body = pack(args)
        send = self._send_frame
        while True:
            try:
                send(_REQUEST, _NOBLOCK | _SNDMORE)
                break
            except zmq.Again:
                self._wait_to_send(deadline)
        # The first frame is taken, so are the others: ZeroMQ takes a message whole.
        send(meta, _SNDMORE)
        send(body, 0)
        return id_

    def _taken_back(self, last: tuple[int, int], pending: dict[int, int], results: list[Any],
                    failed: dict[int, TroupeError]) -> bool:
        """At the end of a map: whether its last reply must be taken back
        (then it is pending again and the map goes on waiting for it)."""
        if self._confirm() != last[0] or not last[0]:
            return False
        self._take_back(last, pending, results, failed)
        return True

    @staticmethod
    def _take_back(last: tuple[int, int], pending: dict[int, int], results: list[Any],
                   failed: dict[int, TroupeError]) -> None:
        id_, i = last
        pending[id_] = i
        results[i] = None
        failed.pop(i, None)

    def _wait_to_send(self, deadline: float) -> None:
        """The send queue is full (broker unreachable for long): wait a
        little for room, or raise DeadlineExceeded once ``deadline`` passed."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(self._watch.why(f"could not send to {self.endpoint}"))
        assert self._sock is not None
        zmq.select([], [self._sock], [], min(left, 0.1))

    def _wait_at_most(self, seconds: float) -> None:
        """The next blocking receive waits at most ``seconds`` (and never
        more than the usual slice)."""
        ms = _SLICE_MS if seconds * 1000 >= _SLICE_MS else max(1, int(seconds * 1000))
        if ms != self._rcvtimeo:
            assert self._sock is not None
            self._sock.setsockopt(zmq.RCVTIMEO, ms)
            self._rcvtimeo = ms

    def _recv_reply(self, deadline: float) -> tuple[int, str, Any] | None:
        """``(id, status, value)`` of the next well-formed REPLY, or None once
        ``deadline`` passes."""
        read = self._read
        while True:
            try:
                reply = read()  # waits at most RCVTIMEO
                if reply is not None:
                    return reply
            except zmq.Again:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._wait_at_most(left)  # near the deadline, wait only until it
