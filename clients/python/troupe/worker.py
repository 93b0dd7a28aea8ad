"""Python worker runtime: ``python3 -m troupe.worker MODULE [...]``.

Two threads share the work so that a slow method never looks like a dead
worker:

* the **I/O thread** owns the broker socket: it receives requests, forwards
  replies, sends heartbeats, watches the broker's liveness, reconnects and
  says goodbye. It never runs user code.
* the **main thread** runs user code: it takes requests in arrival order,
  builds each instance lazily on its first message, calls the method, and
  hands the reply to the I/O thread over an inproc socket. At shutdown it
  calls each live instance's ``close()`` exactly once.

SIGTERM/SIGINT start a graceful stop: DISCONNECT, wait (bounded) for the
broker's DISCONNECT acknowledgement, finish every held request, destroy the
instances, exit 0.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import pathlib
import queue
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Sequence

import zmq

from . import protocol as p
from .actor import CLOSE_HOOK, ActorType, ArgumentError, registered
from .client import configure_socket, default_endpoint

log = logging.getLogger("troupe.worker")

DEFAULT_CREDITS = 16


@dataclass
class _Job:
    request: p.Request
    deadline: float  # monotonic time after which the caller no longer waits


_STOP = object()  # sentinel on the job queue: no more jobs will come


class Worker:
    """Hosts Python actors for one broker. See the module documentation.

    ``actors`` defaults to every class registered with :func:`troupe.actor`
    so far. ``heartbeat_ms`` and ``liveness`` must match the broker's
    (defaults 1000 ms and 3). ``disconnect_timeout`` bounds the wait for the
    broker's acknowledgement at shutdown (default ``liveness × heartbeat``).
    """

    def __init__(self, endpoint: str | None = None, *, credits: int = DEFAULT_CREDITS,
                 name: str | None = None, actors: dict[str, ActorType] | None = None,
                 heartbeat_ms: int = p.HEARTBEAT_INTERVAL_MS, liveness: int = p.HEARTBEAT_LIVENESS,
                 max_message_bytes: int = p.MAX_MESSAGE_BYTES,
                 disconnect_timeout: float | None = None) -> None:
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
        self.disconnect_timeout = (self.heartbeat * liveness if disconnect_timeout is None
                                   else disconnect_timeout)
        self.dropped = 0  # messages dropped without a reply (malformed)
        self._stop = threading.Event()
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._instances: dict[str, Any] = {}
        self._destroyed = False
        self._ctx = zmq.Context()
        self._inproc = f"inproc://troupe-worker-{uuid.uuid4().hex}"
        self._io_error: BaseException | None = None

    # ------------------------------------------------------------ public

    def stop(self) -> None:
        """Ask for a graceful stop (thread- and signal-safe)."""
        self._stop.set()

    def run(self, install_signal_handlers: bool = True) -> int:
        """Serve until stopped; returns the exit status (0 on a graceful stop)."""
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self._stop.set())
        replies = self._ctx.socket(zmq.PAIR)
        replies.bind(self._inproc)
        io = threading.Thread(target=self._io_main, name="troupe-io", daemon=True)
        io.start()
        try:
            while True:
                try:
                    job = self._jobs.get(timeout=0.2)
                except queue.Empty:
                    if not io.is_alive():
                        break
                    continue
                if job is _STOP:
                    break
                replies.send_multipart(self._execute(job))
        finally:
            self._destroy_instances()
            io.join(timeout=self.disconnect_timeout + 5)
            replies.close(linger=0)
            self._ctx.term()
        if self._io_error is not None:
            log.error("I/O thread failed: %r", self._io_error)
            return 1
        return 0

    # ------------------------------------------------------------ user-code side

    def _execute(self, job: _Job) -> list[bytes]:
        req = job.request
        status, value = self._dispatch(req, job.deadline)
        try:
            frames = p.encode_reply(req.id, status, value)
        except Exception as exc:  # the result is not MessagePack data
            frames = p.encode_reply(req.id, p.Status.ACTOR_ERROR,
                                    f"result of {req.address}.{req.method} cannot be encoded: {exc}")
        if len(frames[2]) > self.max_message_bytes:
            frames = p.encode_reply(req.id, p.Status.ACTOR_ERROR,
                                    f"result of {len(frames[2])} bytes is over the limit of "
                                    f"{self.max_message_bytes} bytes")
        return frames

    def _dispatch(self, req: p.Request, deadline: float) -> tuple[str, Any]:
        S = p.Status
        if req.flags & ~p.FLAG_TELL:
            return S.BAD_REQUEST, f"unknown flags 0x{req.flags:x}"
        problem = p.address_problem(req.address) or p.method_problem(req.method)
        if problem:
            return S.BAD_REQUEST, problem
        if time.monotonic() > deadline:
            return S.DEADLINE_EXCEEDED, "timeout passed while the request waited in the worker"
        name, key = p.split_address(req.address)
        actor_type = self.actors.get(name)
        if actor_type is None:
            return S.UNKNOWN_ACTOR, f"worker {self.name} does not host actor {name!r}"
        if req.method not in actor_type.methods:
            return S.UNKNOWN_METHOD, f"actor {name!r} has no method {req.method!r}"
        try:
            args = p.unpack(req.args, max_bytes=self.max_message_bytes)
        except p.ProtocolError as exc:
            return S.BAD_ARGS, f"args cannot be decoded: {exc}"
        if not isinstance(args, list):
            return S.BAD_ARGS, "args must be an array"
        try:
            args = actor_type.bind(req.method, args)
        except ArgumentError as exc:
            return S.BAD_ARGS, str(exc)
        instance = self._instances.get(req.address)
        if instance is None:
            try:
                instance = actor_type.create(key)
            except Exception as exc:
                return S.ACTOR_ERROR, _message(exc)
            self._instances[req.address] = instance
        try:
            return S.OK, getattr(instance, req.method)(*args)
        except Exception as exc:
            return S.ACTOR_ERROR, _message(exc)

    def _destroy_instances(self) -> None:
        # Exactly once per instance: the dict is emptied before any hook runs
        # again, and the whole step runs once.
        if self._destroyed:
            return
        self._destroyed = True
        instances, self._instances = self._instances, {}
        for address, instance in instances.items():
            hook = getattr(instance, CLOSE_HOOK, None)
            if callable(hook):
                try:
                    hook()
                except Exception:
                    log.exception("close() of %s failed", address)
        instances.clear()

    # ------------------------------------------------------------ I/O side

    def _io_main(self) -> None:
        try:
            self._io_loop()
        except BaseException as exc:  # never leave the main thread waiting forever
            self._io_error = exc
        finally:
            self._jobs.put(_STOP)

    def _connect(self) -> zmq.Socket:
        sock = self._ctx.socket(zmq.DEALER)
        configure_socket(sock)
        sock.connect(self.endpoint)
        sock.send_multipart(self._ready())
        return sock

    def _io_loop(self) -> None:
        replies = self._ctx.socket(zmq.PAIR)
        replies.connect(self._inproc)
        broker = self._connect()
        log.info("worker %s (pid %d) serving %s on %s with %d credits",
                 self.name, os.getpid(), ", ".join(sorted(self.actors)), self.endpoint, self.credits)
        poller = zmq.Poller()
        poller.register(broker, zmq.POLLIN)
        poller.register(replies, zmq.POLLIN)
        silence_limit = self.heartbeat * self.liveness
        tick_ms = max(1, min(100, int(self.heartbeat * 1000) // 4))  # bounds reaction to a stop
        now = time.monotonic()
        last_heard = now
        next_beat = now + self.heartbeat
        held = 0          # requests received and not yet replied to
        draining = False  # our DISCONNECT is sent
        acked = False     # the broker's DISCONNECT came back: no more requests
        drain_deadline = 0.0
        try:
            while True:
                now = time.monotonic()
                if self._stop.is_set() and not draining:
                    log.info("worker %s stopping: %d request(s) held", self.name, held)
                    broker.send_multipart(p.encode_disconnect())
                    draining = True
                    drain_deadline = now + self.disconnect_timeout
                if draining and (acked or now >= drain_deadline) and held == 0:
                    return
                events = dict(poller.poll(tick_ms))
                now = time.monotonic()
                if replies in events:
                    while True:
                        try:
                            frames = replies.recv_multipart(flags=zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        broker.send_multipart(frames)
                        held -= 1
                if broker in events:
                    while True:
                        try:
                            frames = broker.recv_multipart(flags=zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        last_heard = now  # any message is a sign of life
                        kind = self._on_broker_message(frames, now)
                        if kind == "job":
                            held += 1
                        elif kind == "disconnect":
                            if draining:
                                acked = True
                            else:
                                log.warning("worker %s: broker does not know us, sending READY again",
                                            self.name)
                                broker.send_multipart(self._ready())
                if now >= next_beat:
                    broker.send_multipart(p.encode_heartbeat())
                    next_beat = now + self.heartbeat
                if now - last_heard > silence_limit:
                    last_heard = now
                    if draining:
                        acked = True  # no broker left to send us work: just finish
                        continue
                    log.warning("worker %s: broker silent for %.1f s, reconnecting",
                                self.name, silence_limit)
                    poller.unregister(broker)
                    broker.close(linger=0)
                    broker = self._connect()
                    poller.register(broker, zmq.POLLIN)
                    next_beat = now + self.heartbeat
        finally:
            broker.close(linger=0)
            replies.close(linger=0)

    def _ready(self) -> list[bytes]:
        return p.encode_ready(self.name, os.getpid(), self.credits, sorted(self.actors))

    def _on_broker_message(self, frames: Sequence[bytes], now: float) -> str | None:
        """Classify one message from the broker, queueing requests as jobs.

        Returns ``"job"``, ``"disconnect"`` or ``None`` (heartbeat or dropped).
        """
        try:
            command = p.decode_header(frames[0]) if frames else None
        except p.ProtocolError:
            command = None
        if command is p.Command.REQUEST and len(frames) == 3:
            try:
                id_, address, method, flags, timeout_ms = p.decode_request_meta(
                    frames[1], max_bytes=self.max_message_bytes)
            except p.ProtocolError:
                self.dropped += 1  # no id to answer to
                return None
            req = p.Request(id_, address, method, flags, timeout_ms, frames[2])
            timeout = (timeout_ms or p.DEFAULT_TIMEOUT_MS) / 1000.0
            self._jobs.put(_Job(req, now + timeout))
            return "job"
        if command is p.Command.HEARTBEAT and len(frames) == 1:
            return None
        if command is p.Command.DISCONNECT and len(frames) == 1:
            return "disconnect"
        self.dropped += 1
        return None


def _message(exc: BaseException) -> str:
    # A str can hold lone surrogates (text decoded with surrogateescape), which
    # UTF-8 cannot carry: replace them rather than fail to send the error.
    text = str(exc) or type(exc).__name__
    return text.encode("utf-8", "replace").decode("utf-8")


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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python3 -m troupe.worker``."""
    parser = argparse.ArgumentParser(
        prog="python3 -m troupe.worker",
        description="Host the troupe actors defined in Python modules.")
    parser.add_argument("modules", nargs="+", metavar="MODULE",
                        help="module name (importable) or path to a .py file defining @troupe.actor classes")
    parser.add_argument("--broker", default=default_endpoint(),
                        help="broker endpoint (default: $TROUPE_BROKER or tcp://127.0.0.1:5555)")
    parser.add_argument("--credits", type=int, default=DEFAULT_CREDITS,
                        help=f"requests held at once (default {DEFAULT_CREDITS})")
    parser.add_argument("--name", help="worker name for logs and stats (default python-worker-PID)")
    parser.add_argument("--actor", action="append", dest="only", metavar="NAME",
                        help="host only this actor (repeatable; default: all registered)")
    parser.add_argument("--heartbeat-ms", type=int, default=p.HEARTBEAT_INTERVAL_MS)
    parser.add_argument("--liveness", type=int, default=p.HEARTBEAT_LIVENESS)
    parser.add_argument("--max-message-bytes", type=int, default=p.MAX_MESSAGE_BYTES)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if opts.verbose else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
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
    worker = Worker(opts.broker, credits=opts.credits, name=opts.name, actors=actors,
                    heartbeat_ms=opts.heartbeat_ms, liveness=opts.liveness,
                    max_message_bytes=opts.max_message_bytes)
    status = worker.run()
    log.info("worker %s stopped", worker.name)
    return status


if __name__ == "__main__":
    sys.exit(main())
