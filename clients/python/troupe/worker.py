"""Python worker runtime: ``python3 -m troupe.worker MODULE [...]``.

The **main thread** owns the broker socket and runs user code. It takes each
request off the socket, builds the instance lazily on its first message,
calls the method and sends the reply itself, with no hand-off between
threads on the way (a hand-off costs two GIL switches per request, which
was most of what a request cost). One message is handled at a time, in
arrival order; at shutdown each live instance's ``close()`` is called
exactly once.

A **heartbeat thread** never runs user code. The socket is guarded by a lock
that the main thread releases only while user code runs; every tick (a
quarter of the heartbeat interval, at most 100 ms) the heartbeat thread
tries that lock, and when it gets it, a method is running: it sends the
heartbeat that is due and takes waiting messages off the socket into a
backlog, stamped with the time it saw them. So a long method never makes
the worker look dead, and a request whose timeout passed while it waited
behind one is answered ``deadline_exceeded`` without running. While the
main thread is in its own loop it keeps time itself.

Methods may call other actors (:mod:`troupe.calls`): an ``async def``
method is a coroutine the main thread drives itself, with no event loop.
It runs until it awaits a call whose reply is not here; its instance then
takes no other message (those that come wait, in order, in ``_parked``)
while the main loop serves everything else, watching the calls' socket next
to the broker socket (with ``zmq_poll``) only while calls are out, and
keeping time itself as it does when idle. A reply resumes its coroutine on
the main thread, between two messages. The fast path for plain instances
is untouched: instances that take a context, and async def methods, have a
quick path of their own (``_quick_request``), as have requests that carry
a call chain, reached when the fast path's lookup misses.

The broker's acknowledgement of READY sets the heartbeat interval and
liveness; a READY refused with a reason stops the worker with exit code 2.
SIGTERM/SIGINT start a graceful stop: DISCONNECT, wait (bounded) for the
broker's acknowledgement while still serving what arrives before it,
destroy the instances, exit 0.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import importlib.util
import inspect
import json
import logging
import os
import pathlib
import signal
import sys
import threading
import time
from typing import Any, Sequence

import msgpack
import zmq

from . import __version__, curve
from . import protocol as p
from .actor import CLOSE_HOOK, ActorType, ArgumentError, registered
from .calls import Caller, Context, Pending
from .client import configure_socket, default_endpoint, fast_send
from .errors import TroupeError

log = logging.getLogger("troupe.worker")

# As the C++ worker's: the broker's adaptive window decides how many a
# worker really holds (docs/operations.md, "Defaults").
DEFAULT_CREDITS = 1000
# As the C++ worker's --stop-timeout-ms: how long methods still awaiting
# calls may take to end once the broker has acknowledged our DISCONNECT.
DEFAULT_STOP_TIMEOUT = 10.0

_REQUEST = p.header(p.Command.REQUEST)
_REPLY = p.header(p.Command.REPLY)
_HEARTBEAT = p.header(p.Command.HEARTBEAT)
_DISCONNECT = p.header(p.Command.DISCONNECT)
_SIGNATURE = p.SIGNATURE
_MAX_ID = p.MAX_ID
_S = p.Status
_OK = _S.OK.value
_SNDMORE = int(zmq.SNDMORE)
_ERROR_CODES = frozenset(p.ERROR_CODES)
_SUSPENDED = "(suspended)"  # _dispatch's status for an async def method awaiting a call: no reply yet


class _Task:
    """An ``async def`` method running: the request it answers and its coroutine."""

    __slots__ = ("id", "address", "method", "coro")

    def __init__(self, id_: int, address: str, method: str, coro: Any) -> None:
        self.id, self.address, self.method, self.coro = id_, address, method, coro


class Worker:
    """Hosts Python actors for one broker. See the module documentation.

    ``actors`` defaults to every class registered with :func:`troupe.actor`
    so far. ``heartbeat_ms`` and ``liveness`` are used until the broker's
    acknowledgement of READY brings its own (defaults 1000 ms and 3).
    ``disconnect_timeout`` bounds the wait for the broker's acknowledgement
    of DISCONNECT at shutdown (default ``liveness × heartbeat``).
    """

    def __init__(self, endpoint: str | None = None, *, credits: int = DEFAULT_CREDITS,
                 name: str | None = None, actors: dict[str, ActorType] | None = None,
                 heartbeat_ms: int = p.HEARTBEAT_INTERVAL_MS, liveness: int = p.HEARTBEAT_LIVENESS,
                 max_message_bytes: int = p.MAX_MESSAGE_BYTES,
                 disconnect_timeout: float | None = None, curve_secret: str | None = None,
                 broker_key: str | None = None, stop_timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        self.endpoint = endpoint or default_endpoint()
        self.actors = dict(actors if actors is not None else registered())
        if not self.actors:
            raise ValueError("no actors to host: import a module that uses @troupe.actor")
        if not 1 <= credits <= p.MAX_CREDITS:
            raise ValueError(f"credits must be 1..{p.MAX_CREDITS}")
        self.credits = credits
        self.name = name or f"python-worker-{os.getpid()}"
        self.heartbeat = heartbeat_ms / 1000.0
        self.liveness = liveness
        self.max_message_bytes = max_message_bytes
        self._disconnect_timeout = disconnect_timeout
        self.stop_timeout = stop_timeout
        self.dropped = 0  # messages dropped without a reply (malformed)
        self._stop = threading.Event()
        self._instances: dict[str, Any] = {}  # address -> instance, in creation order
        self._routes: dict[str, tuple[ActorType, Any]] = {}  # address -> (type, instance): the fast path
        self._destroyed = False
        self._ctx = zmq.Context()
        # CURVE (docs/security.md): the files given, else $TROUPE_CURVE_SECRET
        # and $TROUPE_BROKER_KEY; none: plaintext.
        self._keys = curve.load(curve_secret, broker_key)
        self._watch: curve.HandshakeWatch | None = None  # of the current socket
        self._packer = msgpack.Packer()
        # Calls made by methods (troupe.Context): one socket, opened on the
        # first call. Main thread only, like everything about coroutines.
        self._caller = Caller(self._ctx, self.endpoint, self._keys, max_message_bytes)
        self._contexts: dict[str, Context] = {}  # address -> context, for instances that take one
        # Their plain methods' quick path (not awaiting): address -> (type, instance, context)
        self._ctx_routes: dict[str, tuple[ActorType, Any, Context]] = {}
        self._awaiting: dict[str, _Task] = {}    # address -> its async def method, suspended
        # Keys the broker RELEASEd while their instance awaited: dropped once
        # it is idle, never under a suspended method.
        self._release_when_idle: set[str] = set()
        self._next_expiry = 0.0
        self._sock_send: tuple[Any, Any] = (None, None)  # (socket, its fast send), for _quick_request
        # Messages for an awaiting instance: they wait here, in arrival order,
        # as (meta, args, when they arrived).
        self._parked: dict[str, collections.deque[tuple[bytes, bytes, float]]] = {}
        # The socket and everything below are guarded by _lock: the main thread
        # holds it except while user code runs.
        self._lock = threading.Lock()
        self._sock: zmq.Socket | None = None
        self._backlog: collections.deque[tuple[float, list[bytes]]] = collections.deque()
        self._last_heard = 0.0
        self._next_beat = 0.0
        self._ready_sent = 0.0
        self._registered = False
        self._warned_silent = False
        self._draining = False  # our DISCONNECT is sent
        self._done = False      # stop serving: acknowledged, timed out, or refused
        self._drain_deadline = 0.0
        self._status = 0
        self._beats_stop = threading.Event()
        self._tick = 0.1

    @property
    def disconnect_timeout(self) -> float:
        """Seconds to wait for the broker's acknowledgement of DISCONNECT."""
        return (self.heartbeat * self.liveness if self._disconnect_timeout is None
                else self._disconnect_timeout)

    @disconnect_timeout.setter
    def disconnect_timeout(self, seconds: float | None) -> None:
        self._disconnect_timeout = seconds

    # ------------------------------------------------------------ public

    def stop(self) -> None:
        """Ask for a graceful stop (thread- and signal-safe)."""
        self._stop.set()

    def run(self, install_signal_handlers: bool = True) -> int:
        """Serve until stopped; returns the exit status (0 on a graceful
        stop, 2 when the broker refused the registration)."""
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self._stop.set())
        beats = threading.Thread(target=self._beats_main, name="troupe-heartbeat", daemon=True)
        self._caller.thread = threading.get_ident()  # the methods' thread: the only one that calls
        self._lock.acquire()
        try:
            try:
                self._connect(time.monotonic())
            except zmq.ZMQError as exc:
                # A malformed endpoint: retrying cannot help. The same words
                # as the C++ worker's (troupe::endpoint_error).
                log.error("error: cannot connect to '%s': %s (an endpoint looks like tcp://127.0.0.1:5555 "
                          "or ipc:///path/to/socket)", self.endpoint, exc)
                self._status = 2
                return self._status
            beats.start()
            self._serve()
        finally:
            try:
                self._destroy_instances()
            finally:
                self._beats_stop.set()
                self._lock.release()
                if beats.is_alive():
                    beats.join(timeout=5)
                if self._sock is not None:
                    self._sock.close(linger=1000)  # let the last replies reach the broker
                    self._sock = None
                if self._watch is not None:
                    self._watch.close()
                self._caller.close()
                self._ctx.term()
        return self._status

    # ------------------------------------------------------------ main thread

    def _serve(self) -> None:
        """The main loop. Called and returning with ``_lock`` held."""
        lock, backlog, routes = self._lock, self._backlog, self._routes
        pack, unpackb, monotonic = self._packer.pack, msgpack.unpackb, time.monotonic
        max_bytes = self.max_message_bytes
        Again, NOBLOCK, SNDMORE, RCVMORE = zmq.Again, int(zmq.NOBLOCK), int(zmq.SNDMORE), zmq.RCVMORE
        REQUEST, REPLY, SIGNATURE = _REQUEST, _REPLY, _SIGNATURE
        ok, bad_args = _S.OK.value, _S.BAD_ARGS
        next_tick = 0.0
        sock: zmq.Socket | None = None
        hdr: bytes | None = None  # a header already read, not yet handled
        calls = self._caller.pending  # not empty: calls made by methods are out (their socket is watched too)
        while True:
            if sock is not self._sock:  # connected again: a new socket
                sock = self._sock
                assert sock is not None
                recv, send, get = sock.recv, fast_send(sock), sock.get
                hdr = None
            if hdr is None:
                if backlog:  # taken off the socket while user code ran: first, in order
                    seen, frames = backlog.popleft()
                    self._on_message(frames, seen)
                    continue
                if self._done:
                    self._end_tasks()  # methods still awaiting calls end, bounded
                    return
                if calls:
                    # Both sockets, each at most one tick; replies resume
                    # the coroutines that await them.
                    work_ready = self._serve_calls(sock, self._tick)
                    now = monotonic()
                    if now >= next_tick:
                        next_tick = self._housekeeping(now)
                    if not work_ready:
                        continue
                    try:
                        hdr = recv(NOBLOCK)
                    except Again:
                        continue
                else:
                    try:
                        hdr = recv()  # blocks at most one tick (RCVTIMEO)
                    except Again:
                        next_tick = self._housekeeping(monotonic())
                        continue
            now = monotonic()
            self._last_heard = now  # any message is a sign of life
            if now >= next_tick:
                next_tick = self._housekeeping(now)
            if hdr != REQUEST:
                frames = [hdr]
                while get(RCVMORE):
                    frames.append(recv())
                hdr = None
                self._on_message(frames, None)
                continue
            # A REQUEST: header, meta, args. The frames of one message arrive
            # together, so the next two are there at once unless the message
            # is short; a meta that is a header is the start of the next
            # message (a meta the broker writes never looks like that; args,
            # which come from clients, are never looked at for this).
            hdr = None
            try:
                meta = recv(NOBLOCK)
            except Again:
                self.dropped += 1
                continue
            if len(meta) == 5 and meta[:3] == SIGNATURE:
                self.dropped += 1
                hdr = meta
                continue
            try:
                args = recv(NOBLOCK)
            except Again:
                self.dropped += 1
                continue
            if get(RCVMORE):  # the one RCVMORE asked per request (pyzmq 24: as dear as two recv)
                # Not three frames, so no method runs: either more frames (all
                # dropped), or the REQUEST had two and args is the header of
                # the next message (then args is one the broker wrote: what a
                # client wrote is always the last frame of its message).
                self.dropped += 1
                if len(args) == 5 and args[:3] == SIGNATURE:
                    hdr = args
                else:
                    while get(RCVMORE):
                        recv()
                continue
            # The common case first; anything it does not expect takes the
            # general path, which answers exactly as the protocol says.
            try:
                m = unpackb(meta)
                id_, address, method, flags, _timeout_ms = m
                route = routes[address]
                bind = route[0]._binders[method]
            except Exception:
                # Not for a plain instance's plain method without a call
                # chain: instances with a context, async def methods and
                # requests with a chain have a quick path of their own.
                if not self._quick_request(meta, args):
                    self._on_request(meta, args, None)
                continue
            if (type(id_) is not int or not 0 <= id_ <= _MAX_ID or type(flags) is not int
                    or flags > 1 or flags < 0 or type(_timeout_ms) is not int or _timeout_ms < 0
                    or type(m) is not list or len(args) > max_bytes):
                self._on_request(meta, args, None)
                continue
            try:
                values = unpackb(args)
            except Exception:
                values = None
            if type(values) is not list or (len(args) > p.MAX_DEPTH and not _shallow(values)):
                self._on_request(meta, args, None)  # not an array, non-str map keys, too deep, malformed
                continue
            try:
                values = bind(values)
            except ArgumentError as exc:
                self._reply(id_, bad_args, str(exc), address, method)
                continue
            call = getattr(route[1], method)
            lock.release()  # user code runs: the heartbeat thread may use the socket
            try:
                result = call(*values)
            except Exception as exc:
                lock.acquire()
                self._reply(id_, *_failure(exc), address, method)
                continue
            except BaseException:
                lock.acquire()
                raise
            lock.acquire()
            try:
                value = pack(result)
            except Exception:
                self._reply(id_, ok, result, address, method)  # says why it cannot be encoded
                continue
            if len(value) > max_bytes:
                self._reply(id_, ok, result, address, method)
                continue
            try:
                send(REPLY, SNDMORE)
                send(pack([id_, ok]), SNDMORE)
                send(value)
            except Again:  # the broker has not taken anything for a while: it is gone
                self.dropped += 1

    def _housekeeping(self, now: float) -> float:
        """Stop, heartbeats, the broker's liveness; returns when to come back."""
        if self._stop.is_set() and not self._draining:
            self._begin_stop(now)
        if self._draining and now >= self._drain_deadline:
            self._done = True  # no acknowledgement: nothing more is coming that we could know of
        if now >= self._next_beat:
            self._send([_HEARTBEAT])
            self._next_beat = now + self.heartbeat
        silence_limit = self.heartbeat * self.liveness
        if now - self._last_heard > silence_limit:
            if self._draining:
                self._done = True  # no broker left to send us work: just finish
            else:
                log.warning("worker %s: broker silent for %.1f s%s, reconnecting", self.name, silence_limit,
                            self._why_silent())
                self._reconnect(now)
        elif not self._registered and not self._warned_silent and now - self._ready_sent > silence_limit:
            self._warned_silent = True
            log.warning("worker %s: no answer to READY from %s yet", self.name, self.endpoint)
        return now + self._tick

    def _begin_stop(self, now: float) -> None:
        log.info("worker %s stopping: finishing what the broker sent before its acknowledgement", self.name)
        self._send([_DISCONNECT])
        self._draining = True
        self._drain_deadline = now + self.disconnect_timeout

    def _on_message(self, frames: list[bytes], seen: float | None) -> None:
        """Any message from the broker but the common REQUEST (lock held).
        ``seen`` is when the heartbeat thread took it off the socket."""
        head = frames[0]
        if head == _REQUEST and len(frames) == 3:
            self._on_request(frames[1], frames[2], seen)
            return
        if head == _HEARTBEAT and len(frames) == 1:
            return
        try:
            msg = p.decode(frames, max_bytes=self.max_message_bytes)
        except p.ProtocolError:
            self.dropped += 1
            return
        if isinstance(msg, p.Disconnect):
            if msg.reason is not None:
                log.error("worker %s: the broker refused our READY: %s", self.name, msg.reason)
                self._status = 2
                self._done = True
                self._backlog.clear()  # the broker has forgotten us: nothing held can be answered
            elif self._draining:
                self._done = True  # the acknowledgement: nothing follows it
            else:
                log.warning("worker %s: broker does not know us, sending READY again", self.name)
                self._send_ready(time.monotonic())
        elif isinstance(msg, p.ReadyAck):
            self._adopt(msg)
        elif isinstance(msg, p.Release):
            self._drop(msg.addresses)
        else:
            self.dropped += 1  # REQUEST from the broker is handled above; anything else is not for us

    def _adopt(self, ack: p.ReadyAck) -> None:
        first = not self._registered
        self._registered = True
        if first:
            # Messages waiting behind an awaiting instance came from the
            # previous registration: like those still on the socket, they are
            # not run (their broker is gone; a durable one comes again).
            self._parked.clear()
        self.heartbeat = ack.heartbeat_ms / 1000.0
        self.liveness = ack.liveness
        self._next_beat = min(self._next_beat, time.monotonic() + self.heartbeat)
        self._set_tick()
        if first:
            log.info("worker %s (pid %d) serving %s on %s with %d credits", self.name, os.getpid(),
                     ", ".join(sorted(self.actors)), self.endpoint, self.credits)
        else:
            log.info("worker %s registered again", self.name)

    def _on_request(self, meta: bytes, args: bytes, seen: float | None) -> None:
        """The general path for a REQUEST: every check, in the protocol's order."""
        try:
            id_, address, method, flags, timeout_ms, chain = p.decode_request_meta_chain(
                meta, max_bytes=self.max_message_bytes)
        except p.ProtocolError:
            self.dropped += 1  # no id to answer to
            return
        if address in self._awaiting:
            # Its instance awaits a call in an async def method: it takes no
            # other message until that method returns. This one waits here,
            # in order; its time runs from now.
            parked = self._parked.get(address)
            if parked is None:
                parked = self._parked[address] = collections.deque()
            parked.append((meta, args, time.monotonic() if seen is None else seen))
            return
        # timeout_ms is the time left when the broker sent it (never 0 from a
        # broker; 0 is taken as "no bound here"). A durable message has no
        # deadline (its timeout is a fresh one per delivery): it always runs.
        deadline = (None if seen is None or not timeout_ms or flags & p.FLAG_DURABLE
                    else seen + timeout_ms / 1000.0)
        status, value = self._dispatch(id_, address, method, flags, args, deadline,
                                       (chain, seen, timeout_ms))
        if status is not _SUSPENDED:
            self._reply(id_, status, value, address, method)

    def _dispatch(self, id_: int, address: str, method: str, flags: int, raw_args: bytes,
                  deadline: float | None, message: tuple[list[Any] | None, float | None, int] | None = None
                  ) -> tuple[str, Any]:
        """Runs one request (lock held); returns its reply's status and
        value, or ``_SUSPENDED`` when an async def method awaits a call (its
        reply goes when it ends). ``message`` is the REQUEST's call chain,
        when it was taken off the socket (None: just now) and its
        ``timeout_ms``: what the calls its method makes carry."""
        S = _S
        if flags & ~(p.FLAG_TELL | p.FLAG_DURABLE):
            return S.BAD_REQUEST, f"unknown flags 0x{flags:x}"
        problem = p.address_problem(address) or p.method_problem(method)
        if problem:
            return S.BAD_REQUEST, problem
        if deadline is not None and time.monotonic() > deadline:
            return S.DEADLINE_EXCEEDED, "the request's timeout passed while it waited in the worker"
        name, key = p.split_address(address)
        actor_type = self.actors.get(name)
        if actor_type is None:
            return S.UNKNOWN_ACTOR, f"worker {self.name} does not host actor {name!r}"
        if method not in actor_type.methods:
            return S.UNKNOWN_METHOD, f"actor {name!r} has no method {method!r}"
        try:
            args = p.unpack(raw_args, max_bytes=self.max_message_bytes)
        except p.ProtocolError as exc:
            return S.BAD_ARGS, f"args cannot be decoded: {exc}"
        if not isinstance(args, list):
            return S.BAD_ARGS, "args must be an array"
        try:
            args = actor_type.binder(method)(args)
        except ArgumentError as exc:
            return S.BAD_ARGS, str(exc)
        instance = self._instances.get(address)
        lock = self._lock
        ctx = self._contexts.get(address) if actor_type.takes_ctx else None
        if actor_type.takes_ctx:
            if ctx is None:
                ctx = Context(address, self._caller)
            # The calls its methods make carry this message's chain and at
            # most the time it has left.
            chain, seen, timeout_ms = message if message is not None else (None, None, 0)
            ctx._begin(id_, chain, None if not timeout_ms else
                       (time.monotonic() if seen is None else seen) + timeout_ms / 1000.0)
        if instance is None:
            lock.release()
            try:
                instance = actor_type.create(key, ctx)
            except Exception as exc:
                return _failure(exc)
            finally:
                lock.acquire()
            self._instances[address] = instance
            if ctx is not None:
                # Not on the fast path: each message must set its context.
                self._contexts[address] = ctx
                self._ctx_routes[address] = (actor_type, instance, ctx)
            else:
                self._routes[address] = (actor_type, instance)
        call = getattr(instance, method)
        if method in actor_type.coroutines:
            return self._start(_Task(id_, address, method, None), call, args)
        lock.release()
        try:
            return S.OK, call(*args)
        except Exception as exc:
            return _failure(exc)
        finally:
            lock.acquire()

    def _quick_request(self, meta: bytes, args: bytes) -> bool:
        """The quick path of what the fast path leaves (lock held): an
        instance with a context (its plain and async def methods), and a
        request that carries a call chain (a call from another actor's
        method). The fast path's checks, the context told which message it
        handles, the fast path's reply. False when the request is not one
        for it (the general path then answers it)."""
        try:
            m = msgpack.unpackb(meta)
            chain = None
            if len(m) == 7 and m[5] is None:  # a call chain (not durable)
                chain = m[6]
                id_, address, method, flags, timeout_ms = m[:5]
            else:
                id_, address, method, flags, timeout_ms = m
            entry = self._ctx_routes.get(address)
            if entry is not None:
                actor_type, instance, ctx = entry
            elif chain is not None:  # a call to an instance without a context
                actor_type, instance = self._routes[address]
                ctx = None
            else:
                return False
            coroutine = method in actor_type.coroutines
            # prepared by the general path on the method's first request
            bind = (actor_type._async_binders if coroutine else actor_type._binders)[method]
        except Exception:
            return False
        if (type(id_) is not int or not 0 <= id_ <= _MAX_ID or type(flags) is not int or flags > 1 or flags < 0
                or type(timeout_ms) is not int or timeout_ms < 0 or type(m) is not list
                or len(args) > self.max_message_bytes):
            return False
        if chain is not None:
            try:
                p.call_chain(chain)
            except p.ProtocolError:
                return False
        try:
            values = msgpack.unpackb(args)
        except Exception:
            return False
        if type(values) is not list or (len(args) > p.MAX_DEPTH and not _shallow(values)):
            return False
        try:
            values = bind(values)
        except ArgumentError as exc:
            self._reply(id_, _S.BAD_ARGS, str(exc), address, method)
            return True
        if ctx is not None:
            ctx._begin(id_, chain, time.monotonic() + timeout_ms / 1000.0 if timeout_ms else None)
        call = getattr(instance, method)
        if coroutine:
            status, outcome = self._start(_Task(id_, address, method, None), call, values)
            if status == _OK:
                self._reply_ok(id_, outcome, address, method)
            elif status is not _SUSPENDED:
                self._reply(id_, status, outcome, address, method)
            return True
        self._lock.release()
        try:
            result = call(*values)
        except Exception as exc:
            self._lock.acquire()
            self._reply(id_, *_failure(exc), address, method)
            return True
        except BaseException:
            self._lock.acquire()
            raise
        self._lock.acquire()
        self._reply_ok(id_, result, address, method)
        return True

    def _reply_ok(self, id_: int, result: Any, address: str, method: str) -> None:
        """A REPLY with ``ok`` and ``result``, sent as the fast path sends it
        (lock held); a result that cannot be sent takes ``_reply``, which says why."""
        try:
            value = self._packer.pack(result)
        except Exception:
            value = b""
        if not value or len(value) > self.max_message_bytes:
            self._reply(id_, _S.OK, result, address, method)
            return
        sock = self._sock
        assert sock is not None
        if self._sock_send[0] is not sock:
            self._sock_send = (sock, fast_send(sock))
        send = self._sock_send[1]
        try:
            send(_REPLY, _SNDMORE)
            send(self._packer.pack([id_, _OK]), _SNDMORE)
            send(value)
        except zmq.Again:  # the broker has not taken anything for a while: it is gone
            self.dropped += 1

    # ------------------------------------------------------------ async def methods

    def _start(self, task: _Task, call: Any, args: list[Any]) -> tuple[str, Any]:
        """Runs an async def method up to its first suspension (lock held)."""
        try:
            task.coro = call(*args)  # makes the coroutine: none of its code runs yet
        except Exception as exc:
            return _failure(exc)
        if not inspect.iscoroutine(task.coro):  # e.g. a decorator that returned a plain value
            return _S.OK, task.coro
        return self._step(task)

    def _step(self, task: _Task) -> tuple[str, Any]:
        """Resumes ``task`` until it awaits a call whose reply is not here,
        or ends (lock held). Returns its outcome, or ``_SUSPENDED``."""
        lock = self._lock
        lock.release()  # user code runs: the heartbeat thread may use the work socket
        suspended = False
        try:
            try:
                awaited = task.coro.send(None)
            except StopIteration as end:
                return _S.OK, end.value
            except Exception as exc:
                return _failure(exc)
            if type(awaited) is Pending and awaited._caller is self._caller and awaited._waiter is None:
                awaited._waiter = task
                suspended = True
                return _SUSPENDED, None
            # Anything else cannot be driven here: say what can be awaited.
            what = ("a bare yield (asyncio.sleep and other asyncio awaitables need an event loop)"
                    if awaited is None else f"{type(awaited).__module__}.{type(awaited).__qualname__}")
            if type(awaited) is Pending:
                what = "a call another coroutine awaits already" if awaited._waiter is not None else \
                    "a call made outside this worker"
            try:
                task.coro.close()
            except Exception:
                pass
            return _S.ACTOR_ERROR, (f"{task.address}.{task.method} awaited {what}: an async def method can "
                                    "await ctx.ask(...) calls and coroutines of its own that do, nothing else "
                                    "(a troupe worker runs no asyncio event loop)")
        finally:
            lock.acquire()
            if suspended:
                # Its instance takes no other message meanwhile.
                self._awaiting[task.address] = task
                self._routes.pop(task.address, None)  # off the fast paths: its messages wait
                self._ctx_routes.pop(task.address, None)

    def _resume_ready(self) -> None:
        """Coroutines whose calls' replies came go on, in the order the
        replies came; those that end reply, and the messages waiting for
        their instances run (lock held)."""
        ready, pending = self._caller.ready, self._caller.pending
        while ready:
            call = ready.popleft()
            pending.pop(call.id, None)
            task = call._waiter
            call._waiter = None
            status, value = self._step(task)
            if status is not _SUSPENDED:
                self._finished(task, status, value)

    def _finished(self, task: _Task, status: str, value: Any) -> None:
        if status == _OK:
            self._reply_ok(task.id, value, task.address, task.method)
        else:
            self._reply(task.id, status, value, task.address, task.method)
        address = task.address
        if self._awaiting.get(address) is task:
            del self._awaiting[address]
        instance = self._instances.get(address)
        if instance is not None:
            actor_type = self.actors[p.split_address(address)[0]]
            ctx = self._contexts.get(address)
            if ctx is None:
                self._routes[address] = (actor_type, instance)
            else:
                self._ctx_routes[address] = (actor_type, instance, ctx)
        # What waited for this instance runs now, in order, until one of
        # its methods awaits again.
        parked = self._parked.get(address)
        while parked and address not in self._awaiting:
            meta, args, seen = parked.popleft()
            self._on_request(meta, args, seen)
        if not parked:
            self._parked.pop(address, None)
        if address in self._release_when_idle and address not in self._awaiting:
            self._release_when_idle.discard(address)
            self._drop([address])

    def _end_tasks(self) -> None:
        """The broker has had its last word: methods still awaiting calls
        get up to ``stop_timeout`` to end (heartbeats go on meanwhile, so
        the broker keeps waiting for their replies); then every call still
        out ends with ``deadline_exceeded`` and so does each method that
        does not catch it. Every request held is answered (lock held)."""
        caller = self._caller
        if not self._awaiting:
            return
        log.info("worker %s: %d method(s) awaiting calls; waiting at most %.1f s for them", self.name,
                 len(self._awaiting), self.stop_timeout)
        stop_by = time.monotonic() + self.stop_timeout
        while self._awaiting:
            now = time.monotonic()
            if now >= stop_by:
                break
            if now >= self._next_beat:
                self._send([_HEARTBEAT])
                self._next_beat = now + self.heartbeat
            self._serve_calls(None, min(self._tick, stop_by - now))
        if not self._awaiting:
            return
        caller.close_all(f"worker {self.name} stopped: the call had not ended within its stop timeout of "
                         f"{self.stop_timeout:g} s")
        for _ in range(1000):  # a method that catches that and asks again is refused at once
            self._resume_ready()
            if not self._awaiting:
                return
        for task in list(self._awaiting.values()):  # awaits what can never end: closed, answered
            try:
                task.coro.close()
            except Exception:
                pass
            self._finished(task, _S.DEADLINE_EXCEEDED, f"worker {self.name} stopped while "
                           f"{task.address}.{task.method} was awaiting")

    def _serve_calls(self, sock: zmq.Socket | None, timeout: float) -> bool:
        """While calls are out: waits at most ``timeout`` seconds for the
        work socket or the calls' socket; replies that came resume their
        coroutines. Returns whether the work socket has a message (lock held)."""
        caller = self._caller
        self._resume_ready()  # replies read while a method blocked on Pending.result()
        items = [] if sock is None else [(sock, zmq.POLLIN)]
        if caller.sock is not None:
            items.append((caller.sock, zmq.POLLIN))
        wait_ms = 0 if caller.ready else max(1, int(timeout * 1000))
        if items:
            events = dict(zmq.zmq_poll(items, wait_ms))
        else:
            events = {}
            time.sleep(wait_ms / 1000.0)
        if caller.sock is not None and events.get(caller.sock):
            caller.read()
        now = time.monotonic()
        if now >= self._next_expiry:  # once a tick: calls whose reply is overdue (no broker) end
            self._next_expiry = now + self._tick
            caller.expire(now)
        self._resume_ready()
        return sock is not None and bool(events.get(sock))

    def _reply(self, id_: int, status: str, value: Any, address: str, method: str) -> None:
        """Encode and send a REPLY (lock held); a result that cannot be sent
        becomes an ``actor_error`` saying why."""
        try:
            frames = p.encode_reply(id_, status, value)
        except Exception as exc:  # the result is not MessagePack data
            frames = p.encode_reply(id_, _S.ACTOR_ERROR,
                                    f"result of {address}.{method} cannot be encoded: {exc}")
        if len(frames[2]) > self.max_message_bytes:
            frames = p.encode_reply(id_, _S.ACTOR_ERROR,
                                    f"result of {len(frames[2])} bytes is over the limit of "
                                    f"{self.max_message_bytes} bytes")
        self._send(frames)

    def _send(self, frames: list[bytes]) -> None:
        assert self._sock is not None
        try:
            self._sock.send_multipart(frames)
        except zmq.Again:  # nothing taken for a whole send timeout: the broker is gone
            self.dropped += 1

    def _connect(self, now: float) -> None:
        sock = self._ctx.socket(zmq.DEALER)
        try:
            configure_socket(sock)
            curve.secure(sock, self._keys)
            if self._watch is not None:
                self._watch.close()
            self._watch = curve.HandshakeWatch(self._ctx, sock, self.endpoint, self._keys is not None)
            sock.connect(self.endpoint)
        except zmq.ZMQError:
            # The watch holds a monitor socket: left open, Context.term()
            # would wait for it forever.
            if self._watch is not None:
                self._watch.close()
                self._watch = None
            sock.close(linger=0)
            raise
        self._sock = sock
        self._set_tick()
        self._last_heard = now
        self._next_beat = now + self.heartbeat
        self._send_ready(now)

    def _why_silent(self) -> str:
        """Why the broker may be silent, for a log line: a refused key reads
        differently from no broker at all."""
        return "" if self._watch is None else " (" + self._watch.why("connected, but no answer") + ")"

    def _reconnect(self, now: float) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        self._backlog.clear()  # what the old socket delivered cannot be answered on the new one
        self._connect(now)

    def _send_ready(self, now: float) -> None:
        self._registered = False
        self._warned_silent = False
        self._ready_sent = now
        self._send(self._ready_frames())

    def _ready_frames(self) -> list[bytes]:
        """READY with the keyed instances we hold (a restarted broker restores
        their placements) and our methods' retry policies (lock held)."""
        keys = [a for a in self._instances if "/" in a][:p.MAX_READY_KEYS]
        retry = [r for t in self.actors.values() for r in t.retry_policies()]
        return p.encode_ready(self.name, os.getpid(), self.credits, sorted(self.actors), keys=keys, retry=retry)

    def _drop(self, addresses: list[str]) -> None:
        """RELEASE from the broker: another worker holds these keys; our
        instances of them are closed, each exactly once (lock held). One
        whose method awaits a call is closed once that method, and the
        messages waiting behind it, have run."""
        for address in addresses:
            if address in self._awaiting:
                self._release_when_idle.add(address)
                continue
            instance = self._instances.pop(address, None)
            self._routes.pop(address, None)
            self._contexts.pop(address, None)
            self._ctx_routes.pop(address, None)
            hook = getattr(instance, CLOSE_HOOK, None) if instance is not None else None
            if callable(hook):
                try:
                    hook()
                except Exception:
                    log.exception("close() of %s failed", address)

    def _set_tick(self) -> None:
        # How often the main thread looks at the clock when idle, and the
        # heartbeat thread at the socket: bounds how late a heartbeat, a stop
        # or a deadline check can be.
        self._tick = max(0.001, min(0.1, self.heartbeat / 4))
        if self._sock is not None:
            self._sock.setsockopt(zmq.RCVTIMEO, max(1, int(self._tick * 1000)))
            self._sock.setsockopt(zmq.SNDTIMEO, max(1000, int(self.heartbeat * self.liveness * 1000)))

    def _destroy_instances(self) -> None:
        # Exactly once per instance: the dict is emptied before any hook runs
        # again, and the whole step runs once.
        if self._destroyed:
            return
        self._destroyed = True
        instances, self._instances = self._instances, {}
        self._routes = {}
        self._contexts = {}
        self._ctx_routes = {}
        # Newest first, as the C++ worker does: an instance built later may
        # use one built before it, never the other way round.
        for address, instance in reversed(instances.items()):
            hook = getattr(instance, CLOSE_HOOK, None)
            if callable(hook):
                try:
                    hook()
                except Exception:
                    log.exception("close() of %s failed", address)
        instances.clear()

    # ------------------------------------------------------------ heartbeat thread

    def _beats_main(self) -> None:
        """Every tick: if the main thread is running user code (the lock is
        free), send the heartbeat that is due and move waiting messages to
        the backlog, stamped with the time they were seen."""
        lock = self._lock
        while not self._beats_stop.wait(self._tick):
            if not lock.acquire(blocking=False):
                continue  # the main thread is at the socket and keeps time itself
            try:
                sock = self._sock
                if sock is None or self._done:
                    continue
                now = time.monotonic()
                if self._stop.is_set() and not self._draining:
                    self._begin_stop(now)  # the broker stops sending work while the method finishes
                while True:
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._last_heard = now
                    if frames == [_HEARTBEAT]:
                        continue  # a sign of life, nothing to do
                    if frames == [_DISCONNECT] and self._backlog and self._backlog[-1][1] == frames:
                        continue  # the broker's answer to each heartbeat it does not know: once is enough
                    if frames == [_DISCONNECT] and self._registered and not self._draining:
                        # The broker restarted (or forgot us) while a method runs:
                        # register again now, with our keys. What waits from the
                        # old broker is not run; a durable message comes again.
                        kept = [(t, f) for t, f in self._backlog if f[0] != _REQUEST]
                        self._backlog.clear()  # in place: the main thread holds it too
                        self._backlog.extend(kept)
                        log.warning("worker %s: broker does not know us, sending READY again", self.name)
                        self._send_ready(now)
                        continue
                    self._backlog.append((now, frames))
                if now >= self._next_beat:
                    self._send([_HEARTBEAT])
                    self._next_beat = now + self.heartbeat
            except Exception:  # never let a broken socket end the heartbeats silently
                log.exception("worker %s: heartbeat thread", self.name)
            finally:
                lock.release()


def _shallow(values: list[Any]) -> bool:
    """Whether ``values`` (args, level 1) is within the nesting limit."""
    try:
        p._check_depth(values, p.MAX_DEPTH)
    except p.ProtocolError:
        return False
    return True


def _message(exc: BaseException) -> str:
    # A str can hold lone surrogates (text decoded with surrogateescape), which
    # UTF-8 cannot carry: replace them rather than fail to send the error.
    text = str(exc) or type(exc).__name__
    return text.encode("utf-8", "replace").decode("utf-8")


def _failure(exc: Exception) -> tuple[str, str]:
    """The answer of a method (or constructor) that raised ``exc``:
    ``actor_error`` with its message, except a :class:`troupe.TroupeError`
    (a call the method made failed, and it did not catch it), which keeps
    its code and message, so a caller sees the callee's error (as in C++)."""
    if isinstance(exc, TroupeError) and exc.code in _ERROR_CODES:
        text = exc.message if isinstance(exc.message, str) else repr(exc.message)
        return exc.code, text.encode("utf-8", "replace").decode("utf-8")
    return _S.ACTOR_ERROR, _message(exc)


def _import(target: str) -> None:
    """Import a module by dotted name, or a ``.py`` file by path."""
    if target.endswith(".py") or os.sep in target:
        path = pathlib.Path(target).resolve()
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {target}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        sys.path.insert(0, str(path.parent))  # so the file's own imports work
        spec.loader.exec_module(module)
    else:
        importlib.import_module(target)


_LEVELS = {"error": logging.ERROR, "warn": logging.WARNING, "info": logging.INFO, "debug": logging.DEBUG}
_LEVEL_NAMES = {logging.ERROR: "error", logging.WARNING: "warn", logging.INFO: "info", logging.DEBUG: "debug"}


class JsonLines(logging.Formatter):
    """One JSON object per line, with the fields of every troupe program's
    event log (the C++ broker and workers write the same; docs/operations.md,
    "Logs"): ts, level, program, pid, event, msg, then the event's own."""

    def __init__(self, program: str) -> None:
        super().__init__()
        self.program = program

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.exc_info:
            msg += "\n" + self.formatException(record.exc_info)
        level = _LEVEL_NAMES.get(record.levelno, "error" if record.levelno > logging.ERROR else "debug")
        if level == "error" and msg.startswith("error: "):
            msg = msg[len("error: "):]
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = {"ts": f"{ts}.{int(record.msecs):03d}Z", "level": level, "program": self.program,
                "pid": record.process, "event": getattr(record, "event", "worker"), "msg": msg,
                "worker": self.program}
        # Lone surrogates cannot be written as UTF-8: escaped, like the C++ side repairs them.
        return json.dumps(line, ensure_ascii=True, separators=(",", ":"))


def _int_in(lo: int, hi: int) -> Any:
    """An argparse type: an int in lo..hi, else a usage error (exit 2), as
    the C++ worker's flags."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is not in {lo}..{hi}")
        return value
    return parse


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python3 -m troupe.worker``."""
    parser = argparse.ArgumentParser(
        prog="python3 -m troupe.worker",
        description="Host the troupe actors defined in Python modules.")
    parser.add_argument("modules", nargs="+", metavar="MODULE",
                        help="module name (importable) or path to a .py file defining @troupe.actor classes")
    parser.add_argument("--broker", default=default_endpoint(),
                        help="broker endpoint (default: $TROUPE_BROKER or tcp://127.0.0.1:5555)")
    parser.add_argument("--credits", type=_int_in(1, p.MAX_CREDITS), default=DEFAULT_CREDITS,
                        help=f"requests held at once (default {DEFAULT_CREDITS})")
    parser.add_argument("--name", help="worker name for logs and stats (default python-worker-PID)")
    parser.add_argument("--actor", action="append", dest="only", metavar="NAME",
                        help="host only this actor (repeatable; default: all registered)")
    parser.add_argument("--heartbeat-ms", type=_int_in(10, 600_000), default=p.HEARTBEAT_INTERVAL_MS,
                        help="until the broker's acknowledgement brings its own")
    parser.add_argument("--liveness", type=_int_in(1, 100), default=p.HEARTBEAT_LIVENESS,
                        help="until the broker's acknowledgement brings its own")
    parser.add_argument("--max-message-bytes", type=_int_in(64, 1 << 30), default=p.MAX_MESSAGE_BYTES)
    parser.add_argument("--stop-timeout-ms", type=_int_in(0, 86_400_000), default=int(DEFAULT_STOP_TIMEOUT * 1000),
                        help="at a stop, how long methods awaiting calls may take to end (default 10000)")
    parser.add_argument("--curve-secret", help="CURVE: this worker's secret key file (default $TROUPE_CURVE_SECRET)")
    parser.add_argument("--broker-key", help="CURVE: the broker's public key file (default $TROUPE_BROKER_KEY)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    parser.add_argument("--log-level", choices=list(_LEVELS), default="info", help="least severe lines logged")
    parser.add_argument("--log-format", choices=["text", "json"], default="text",
                        help="text, or json: one JSON object per line (the C++ programs' fields)")
    parser.add_argument("--version", action="version", version=f"troupe {__version__}")
    opts = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    json_lines = JsonLines(opts.name or f"python-worker-{os.getpid()}")
    handler.setFormatter(json_lines if opts.log_format == "json"
                         else logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if opts.verbose else _LEVELS[opts.log_level], handlers=[handler])
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for target in opts.modules:
        _import(target)
    actors = registered()
    if opts.only:
        missing = [n for n in opts.only if n not in actors]
        if missing:
            parser.error(f"not defined by the modules: {', '.join(missing)}")
        actors = {n: actors[n] for n in opts.only}
    if not actors:
        parser.error("the modules define no @troupe.actor classes")
    if opts.name is not None and not 1 <= len(opts.name.encode()) <= p.MAX_WORKER_NAME_BYTES:
        parser.error("--name must be 1..128 bytes")
    try:
        worker = Worker(opts.broker, credits=opts.credits, name=opts.name, actors=actors,
                        heartbeat_ms=opts.heartbeat_ms, liveness=opts.liveness,
                        max_message_bytes=opts.max_message_bytes, curve_secret=opts.curve_secret,
                        broker_key=opts.broker_key, stop_timeout=opts.stop_timeout_ms / 1000.0)
    except curve.KeyFileError as exc:
        log.error("error: %s", exc)
        return 1
    status = worker.run()
    if status == 0:  # otherwise the error said why, in one line
        log.info("worker %s stopped", worker.name)
    return status


if __name__ == "__main__":
    sys.exit(main())
