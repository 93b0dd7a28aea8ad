"""The behavioural conformance suite (docs/testing.md, "Conformance"),
written once from docs/protocol.md and run against every implementation
troupe ships:

- workers: the C++ runtime (troupe-conformance-worker) and the Python one
  (``python3 -m troupe.worker conformance_actors.py``), hosting the same
  actor ``conf``;
- clients: the C++ client (through ``troupe call``) and the Python
  ``troupe.Client``.

The broker is the real one. Where the broker or a client is what is
checked, the other side is played with raw pyzmq sockets, so that the
suite says what the bytes are, not what troupe's own libraries do. Every
process is started through conftest (stopped by pid at teardown) and every
wait is bounded.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator

import msgpack
import pytest
import zmq

from troupe_test_support import TROUPE, BIN_DIR, Proc, child_env, wait_until

import troupe

HERE = pathlib.Path(__file__).resolve().parent
CPP_WORKER = BIN_DIR / "troupe-conformance-worker"

pytestmark = pytest.mark.skipif(not (TROUPE.is_file() and CPP_WORKER.is_file()),
                                reason=f"C++ binaries not built: need {TROUPE} and {CPP_WORKER}")

# ------------------------------------------------------------------ the wire, by hand

REQUEST, REPLY, READY, HEARTBEAT, DISCONNECT = 1, 2, 3, 4, 5


def hdr(command: int) -> bytes:
    return b"TRP\x01" + bytes([command])


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def request(id_: int, address: str | bytes, method: str | bytes, args: list, *, flags: int = 0,
            timeout_ms: int = 5000) -> list[bytes]:
    return [hdr(REQUEST), pack([id_, address, method, flags, timeout_ms]), pack(args)]


class Raw:
    """A DEALER socket speaking the protocol by hand."""

    def __init__(self, ctx: zmq.Context, endpoint: str, *, bind: bool = False, kind: int = zmq.DEALER) -> None:
        self.sock = ctx.socket(kind)
        self.sock.linger = 0
        (self.sock.bind if bind else self.sock.connect)(endpoint)

    def send(self, frames: list[bytes]) -> None:
        self.sock.send_multipart(frames)

    def recv(self, timeout: float) -> list[bytes] | None:
        if self.sock.poll(int(timeout * 1000)):
            return self.sock.recv_multipart()
        return None

    def replies(self, count: int, timeout: float) -> dict[int, tuple[str, Any]]:
        """``count`` REPLYs by id, ignoring anything else (as a client must)."""
        out: dict[int, tuple[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while len(out) < count:
            frames = self.recv(max(0.0, deadline - time.monotonic()))
            if frames is None:
                pytest.fail(f"{len(out)} of {count} replies within {timeout} s: {out}")
            if frames[0] == hdr(REPLY) and len(frames) == 3:
                id_, status = msgpack.unpackb(frames[1])
                out[id_] = (status, msgpack.unpackb(frames[2], raw=False))
        return out

    def ask(self, address: str, method: str, *args: Any, timeout_ms: int = 5000, id_: int = 1,
            wait: float = 10.0) -> tuple[str, Any]:
        self.send(request(id_, address, method, list(args), timeout_ms=timeout_ms))
        return self.replies(1, wait)[id_]

    def close(self) -> None:
        self.sock.close(0)


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    c = zmq.Context()
    yield c
    c.destroy(linger=0)


# ------------------------------------------------------------------ implementations

WORKERS = ["cpp", "python"]
CLIENTS = ["cpp", "python"]


def worker_argv(impl: str, endpoint: str, *extra: str, name: str = "conf-w") -> list[str]:
    if impl == "cpp":
        return [str(CPP_WORKER), "--broker", endpoint, "--name", name, *extra]
    return ["/usr/bin/python3", "-m", "troupe.worker", str(HERE / "conformance_actors.py"), "--broker", endpoint,
            "--name", name, *extra]


def call(impl: str, endpoint: str, address: str, method: str, *args: Any, timeout: float = 5.0) -> tuple[str, Any]:
    """One ask through a client implementation: ("ok", value) or (code, message)."""
    if impl == "python":
        with troupe.Client(endpoint, timeout=timeout) as c:
            try:
                return "ok", c.ask(address, method, *args)
            except troupe.TroupeError as exc:
                return exc.code, exc.message
    argv = [str(TROUPE), "call", "--broker", endpoint, "--timeout-ms", str(int(timeout * 1000)), address, method,
            *[json.dumps(a) for a in args]]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10, env=child_env())
    if r.returncode == 0:
        return "ok", json.loads(r.stdout)
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("error: "), r.stderr
    code, _, message = line[len("error: "):].partition(": ")
    return code, message


@dataclass
class Cluster:
    endpoint: str
    broker: Proc
    worker: Proc | None
    impl: str


class Procs:
    """Processes of one fixture, stopped by pid at its end."""

    def __init__(self) -> None:
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="trp-cf-"))
        self.procs: list[Proc] = []

    def start(self, argv: list[str], label: str) -> Proc:
        proc = Proc([str(a) for a in argv], self.dir, f"{label}{len(self.procs)}", child_env())
        self.procs.append(proc)
        return proc

    def broker(self, endpoint: str, *flags: str) -> Proc:
        proc = self.start([TROUPE, "broker", "--listen", endpoint, *flags], "broker")
        with troupe.Client(endpoint, timeout=0.5, grace=0.2) as c:
            wait_until(lambda: proc.alive() and c.ping() == "pong", 10, "the broker to answer ping")
        return proc

    def close(self, failed: bool) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        if failed:
            for proc in self.procs:
                print(proc.describe())
        shutil.rmtree(self.dir, ignore_errors=True)


def workers_hosting(endpoint: str, actor: str = "conf") -> list[dict]:
    with troupe.Client(endpoint, timeout=2) as c:
        return [w for w in c.workers() if actor in w["actors"]]


@pytest.fixture
def procs(request: pytest.FixtureRequest) -> Iterator[Procs]:
    p = Procs()
    yield p
    rep = getattr(request.node, "rep_call", None)
    p.close(rep is not None and rep.failed)


def serve(impl: str) -> Iterator[Cluster]:
    p = Procs()
    endpoint = f"ipc://{p.dir}/b.sock"
    try:
        b = p.broker(endpoint)
        w = p.start(worker_argv(impl, endpoint, "--credits", "2"), "worker")
        wait_until(lambda: workers_hosting(endpoint), 10, "the worker to register")
        yield Cluster(endpoint, b, w, impl)
    finally:
        p.close(False)


@pytest.fixture(scope="module", params=WORKERS)
def served(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A broker and one worker of each implementation, with 2 credits,
    shared by the tests that leave them as they were."""
    yield from serve(request.param)


@pytest.fixture(scope="module")
def cpp_served() -> Iterator[Cluster]:
    """The same with the C++ worker alone, for the client tests."""
    yield from serve("cpp")


# ------------------------------------------------------------------ registration


def test_registration_is_acknowledged_and_listed(served: Cluster) -> None:
    (w,) = workers_hosting(served.endpoint)
    assert w["name"] == "conf-w" and w["credits"] == 2 and w["actors"] == ["conf"] and w["state"] == "ready"
    assert w["pid"] == served.worker.pid  # type: ignore[union-attr]
    # It says it serves only once the broker has acknowledged it.
    assert "registered" in served.worker.stderr() or "serving" in served.worker.stderr()  # type: ignore[union-attr]


@pytest.mark.parametrize("impl", WORKERS)
def test_a_refused_ready_stops_the_worker_with_2(impl: str, procs: Procs, ctx: zmq.Context) -> None:
    endpoint = f"ipc://{procs.dir}/b.sock"
    procs.broker(endpoint, "--max-names", "1")
    squatter = Raw(ctx, endpoint)  # takes the one name the broker allows
    squatter.send([hdr(READY), pack({"credits": 1, "actors": ["other"]})])
    ack = squatter.recv(5)
    assert ack is not None and ack[0] == hdr(READY), ack
    w = procs.start(worker_argv(impl, endpoint), "worker")
    assert w.wait(15) == 2
    assert "refused" in w.stderr(), w.stderr()


@pytest.mark.parametrize("impl", WORKERS)
def test_heartbeats_both_ways_with_the_brokers_settings(impl: str, procs: Procs, ctx: zmq.Context) -> None:
    """Played by a fake broker: it acknowledges READY with a 100 ms interval
    (the worker was started with 1000 ms), answers heartbeats, then goes
    silent; the worker must beat at the broker's pace and, after liveness x
    interval of silence, register again."""
    endpoint = f"ipc://{procs.dir}/fake.sock"
    fake = Raw(ctx, endpoint, bind=True, kind=zmq.ROUTER)
    procs.start(worker_argv(impl, endpoint, "--heartbeat-ms", "1000", "--liveness", "3"), "worker")
    msg = fake.recv(10)
    assert msg is not None and msg[1] == hdr(READY), msg
    info = msgpack.unpackb(msg[2])
    assert info["actors"] == ["conf"] and 1 <= info["credits"] <= 100_000
    fake.send([msg[0], hdr(READY), pack({"heartbeat_ms": 100, "liveness": 3})])
    beats = 0
    end = time.monotonic() + 2.0  # a worker's first beat may wait one old interval
    while time.monotonic() < end:
        m = fake.recv(max(0.0, end - time.monotonic()))
        if m is None:
            break
        if m[1] == hdr(HEARTBEAT):
            beats += 1
            fake.send([m[0], hdr(HEARTBEAT)])  # answer on the socket it came from
    assert beats >= 8, f"{beats} heartbeats in 2 s at a 100 ms interval"
    # Silence: nothing is answered from now on.
    end = time.monotonic() + 5.0
    again = None
    while again is None and time.monotonic() < end:
        m = fake.recv(max(0.0, end - time.monotonic()))
        if m is not None and m[1] == hdr(READY):
            again = time.monotonic()
    assert again is not None, "no READY again after the broker went silent"


# ------------------------------------------------------------------ values and errors


VALUES = [None, True, False, 0, -1, 2**64 - 1, -2**63, 1.5, "", "héllo", b"\x00\xff", [1, [2, [3]]], {"a": [1]}]


def test_values_round_trip(served: Cluster, ctx: zmq.Context) -> None:
    raw = Raw(ctx, served.endpoint)
    for i, v in enumerate(VALUES, 1):
        raw.send(request(i, "conf", "echo", [v]))
    got = raw.replies(len(VALUES), 10)
    for i, v in enumerate(VALUES, 1):
        assert got[i] == ("ok", v), (v, got[i])


@pytest.mark.parametrize("args,got", [([1, "x"], "str"), ([1, None], "nil"), ([1, [1]], "array"),
                                      ([1, {}], "map"), ([1, b"x"], "bin"), ([1, 1.5], "float"),
                                      ([1, True], "bool")])
def test_bad_args_names_wire_types(served: Cluster, ctx: zmq.Context, args: list, got: str) -> None:
    status, message = Raw(ctx, served.endpoint).ask("conf", "add", *args)
    assert status == "bad_args" and message.endswith(f"must be int, got {got}"), message


def test_every_error_code_a_worker_sends(served: Cluster, ctx: zmq.Context) -> None:
    raw = Raw(ctx, served.endpoint)
    assert raw.ask("conf", "add", 2, 3) == ("ok", 5)
    assert raw.ask("conf", "nope")[0] == "unknown_method"
    assert raw.ask("conf", "add", 1)[0] == "bad_args"
    assert raw.ask("conf", "fail", "boom") == ("actor_error", "boom")


def test_every_error_code_the_broker_sends(served: Cluster, ctx: zmq.Context) -> None:
    raw = Raw(ctx, served.endpoint)
    assert raw.ask("nope", "x")[0] == "unknown_actor"
    assert raw.ask("$nope", "x")[0] == "bad_request"
    assert raw.ask("conf", "sleep_ms", 1000, timeout_ms=100)[0] == "deadline_exceeded"
    # A str that is not UTF-8 (msgpack libraries will not write one).
    meta = b"\x95" + pack(7) + b"\xa6conf/\xff" + pack("add") + pack(0) + pack(5000)
    raw.send([hdr(REQUEST), meta, pack([1, 2])])
    assert raw.replies(1, 5)[7][0] == "bad_request"


def test_overloaded_and_store_unavailable(procs: Procs, ctx: zmq.Context) -> None:
    """The broker's other codes, with the flags that bring them about."""
    endpoint = f"ipc://{procs.dir}/b.sock"
    procs.broker(endpoint, "--queue-limit", "1", "--store", "none")
    procs.start(worker_argv("cpp", endpoint, "--credits", "1"), "worker")
    wait_until(lambda: workers_hosting(endpoint), 10, "the worker")
    raw = Raw(ctx, endpoint)
    for i in range(1, 5):  # one held, one queued, the rest refused at once
        raw.send(request(i, "conf", "sleep_ms", [300]))
    got = raw.replies(4, 10)
    assert sorted(status for status, _ in got.values()) == ["ok", "ok", "overloaded", "overloaded"], got
    meta = pack([9, "conf", "add", 2, 5000, {"id": "m-1"}])  # durable, with no store
    raw.send([hdr(REQUEST), meta, pack([1, 2])])
    assert raw.replies(1, 5)[9][0] == "store_unavailable"


@pytest.mark.parametrize("actors", [["$broker"], ["bad name!"], ["conf", "x" * 65]])
def test_a_ready_outside_the_name_grammar_is_refused_with_a_reason(actors: list[str], served: Cluster,
                                                                    ctx: zmq.Context) -> None:
    raw = Raw(ctx, served.endpoint)
    raw.send([hdr(READY), pack({"credits": 1, "actors": actors})])
    m = raw.recv(5)
    assert m is not None and m[0] == hdr(DISCONNECT) and len(m) == 2, m
    assert msgpack.unpackb(m[1]), "the reason is a non-empty str"


# ------------------------------------------------------------------ flow and order


def test_credits_are_never_exceeded(served: Cluster, ctx: zmq.Context) -> None:
    raw = Raw(ctx, served.endpoint)
    for i in range(1, 7):
        raw.send(request(i, "conf", "sleep_ms", [150]))
    seen: list[int] = []
    with troupe.Client(served.endpoint, timeout=2) as c:
        end = time.monotonic() + 0.6
        while time.monotonic() < end:
            seen += [w["in_flight"] for w in c.workers() if "conf" in w["actors"]]
            time.sleep(0.02)
    assert max(seen) == 2, seen  # reached, never passed
    assert all(r == ("ok", 150) for r in raw.replies(6, 10).values())


def test_one_keys_requests_run_in_the_order_the_broker_got_them(served: Cluster, ctx: zmq.Context) -> None:
    a, b = Raw(ctx, served.endpoint), Raw(ctx, served.endpoint)
    key = f"conf/order-{served.impl}"
    for i in range(30):
        a.send(request(i + 1, key, "log", [i]))
    got = a.replies(30, 10)
    assert [got[i + 1] for i in range(30)] == [("ok", i + 1) for i in range(30)]
    assert b.ask(key, "seen") == ("ok", list(range(30)))


@pytest.mark.parametrize("impl", WORKERS)
def test_a_request_that_expired_in_the_worker_does_not_run(impl: str, procs: Procs, ctx: zmq.Context) -> None:
    # An idle worker of its own with its default credits: the broker sends
    # both requests at once, so the second waits in the worker, not here.
    endpoint = f"ipc://{procs.dir}/b.sock"
    procs.broker(endpoint)
    procs.start(worker_argv(impl, endpoint), "worker")
    wait_until(lambda: workers_hosting(endpoint), 10, "the worker")
    raw = Raw(ctx, endpoint)
    key = "conf/late"
    raw.send(request(1, key, "sleep_ms", [800], timeout_ms=5000))
    raw.send(request(2, key, "log", [7], timeout_ms=200))  # waits behind the sleep, in the worker
    wait_until(lambda: [w for w in workers_hosting(endpoint) if w["in_flight"] == 2], 0.6, "both at the worker")
    got = raw.replies(2, 10)
    assert got[1] == ("ok", 800) and got[2][0] == "deadline_exceeded", got
    assert raw.ask(key, "seen", id_=3) == ("ok", []), "the expired request ran"


@pytest.mark.parametrize("impl", WORKERS)
def test_a_durable_message_runs_however_long_it_waited(impl: str, procs: Procs, ctx: zmq.Context) -> None:
    # Deliveries get the broker's default timeout (300 ms here), fresh each
    # time; a durable message has no deadline and must still run.
    endpoint = f"ipc://{procs.dir}/b.sock"
    procs.broker(endpoint, "--default-timeout-ms", "300")
    procs.start(worker_argv(impl, endpoint), "worker")
    wait_until(lambda: workers_hosting(endpoint), 10, "the worker")
    raw = Raw(ctx, endpoint)
    raw.send(request(1, "conf/d", "sleep_ms", [800], timeout_ms=5000))
    raw.send([hdr(REQUEST), pack([2, "conf/d", "log", 2, 5000, {"id": "durable-1"}]), pack([5])])
    got = raw.replies(2, 10)
    assert got == {1: ("ok", 800), 2: ("ok", 1)}, got


# ------------------------------------------------------------------ leaving, losing, restarting


@pytest.mark.parametrize("impl", WORKERS)
def test_draining_on_disconnect(impl: str, procs: Procs, ctx: zmq.Context) -> None:
    endpoint = f"ipc://{procs.dir}/b.sock"
    procs.broker(endpoint)
    w = procs.start(worker_argv(impl, endpoint), "worker")
    wait_until(lambda: workers_hosting(endpoint), 10, "the worker")
    raw = Raw(ctx, endpoint)
    raw.send(request(1, "conf/a", "log", [1]))
    raw.send(request(2, "conf/b", "log", [1]))
    raw.send(request(3, "conf/c", "sleep_ms", [600]))
    assert raw.replies(2, 5) and wait_until(lambda: "built conf/c" in w.stdout(), 5, "the slow call to start")
    w.signal(signal.SIGTERM)
    got = raw.replies(1, 10)
    assert got[3] == ("ok", 600), "a held request is finished, not lost"
    assert w.wait(10) == 0
    # Each instance destroyed once, newest first.
    destroyed = [line.split()[1] for line in w.stdout().splitlines() if line.startswith("destroyed")]
    assert destroyed == ["conf/c", "conf/b", "conf/a"], w.stdout()
    # Gone from the broker; a new call waits for a worker and says none is there.
    wait_until(lambda: not workers_hosting(endpoint), 5, "the worker to leave")
    status, message = raw.ask("conf", "add", 1, 2, timeout_ms=300, id_=9)
    assert status == "deadline_exceeded" and "no live worker hosts actor 'conf'" in message, message


@pytest.mark.parametrize("impl", WORKERS)
def test_worker_lost_and_registration_after_a_broker_restart(impl: str, procs: Procs, ctx: zmq.Context) -> None:
    endpoint = f"ipc://{procs.dir}/b.sock"
    broker = procs.broker(endpoint, "--heartbeat-ms", "100")
    w = procs.start(worker_argv(impl, endpoint), "worker")
    wait_until(lambda: workers_hosting(endpoint), 10, "the worker")
    broker.signal(signal.SIGKILL)
    broker.wait(5)
    procs.broker(endpoint, "--heartbeat-ms", "100")
    wait_until(lambda: workers_hosting(endpoint), 10, "the worker to register again")
    raw = Raw(ctx, endpoint)
    assert raw.ask("conf", "add", 1, 2) == ("ok", 3)
    # Now kill it while it holds an ask: worker_lost, never a hang.
    raw.send(request(5, "conf", "sleep_ms", [5000], timeout_ms=20000))
    wait_until(lambda: any(x["in_flight"] for x in workers_hosting(endpoint)), 5, "the ask to be held")
    w.signal(signal.SIGKILL)
    assert raw.replies(1, 5)[5][0] == "worker_lost"


# ------------------------------------------------------------------ bad input to the broker


def test_bad_input_outcomes(served: Cluster, ctx: zmq.Context) -> None:
    """The table of docs/protocol.md, "Limits and bad input", row by row."""
    raw = Raw(ctx, served.endpoint)

    def stats() -> dict:
        with troupe.Client(served.endpoint, timeout=2) as c:
            return c.stats()

    # Wrong number of frames, id 0, unknown flags: bad_request, id 0 where the id is unusable.
    raw.send([hdr(REQUEST), pack([1, "conf", "add", 0, 1000])])
    assert raw.replies(1, 5)[0][0] == "bad_request"
    raw.send(request(0, "conf", "add", [1, 2]))
    assert raw.replies(1, 5)[0][0] == "bad_request"
    raw.send(request(11, "conf", "add", [1, 2], flags=4))
    assert raw.replies(1, 5)[11] == ("bad_request", "unknown flags")
    raw.send([hdr(REQUEST), b"\xc1", pack([])])  # unreadable meta
    assert raw.replies(1, 5)[0][0] == "bad_request"
    # A malformed tell gets nothing; the next ask's reply is the next message.
    raw.send(request(12, "bad name!", "x", [], flags=1))
    raw.send(request(13, "nope", "x", [], flags=1))
    raw.send(request(14, "$broker", "ping", []))
    m = raw.recv(5)
    assert m is not None and msgpack.unpackb(m[1]) == [14, "ok"], m
    # A plain HEARTBEAT from a socket that is not a worker: DISCONNECT.
    raw.send([hdr(HEARTBEAT)])
    assert raw.recv(5) == [hdr(DISCONNECT)]
    # A REPLY from a client socket: dropped, counted, and a DISCONNECT the client ignores.
    before = stats()["dropped"]
    raw.send([hdr(REPLY), pack([1, "ok"]), pack(None)])
    assert raw.recv(5) == [hdr(DISCONNECT)]
    assert stats()["dropped"] == before + 1
    # Still serving.
    assert raw.ask("$broker/any", "ping", id_=15) == ("ok", "pong")


# ------------------------------------------------------------------ clients


@pytest.mark.parametrize("client", CLIENTS)
def test_client_outcomes(cpp_served: Cluster, client: str) -> None:
    ep = cpp_served.endpoint
    assert call(client, ep, "conf", "add", 2, 3) == ("ok", 5)
    assert call(client, ep, "conf", "echo", {"a": [1, None, "é"]}) == ("ok", {"a": [1, None, "é"]})
    for args, code in [(("nope", "x"), "unknown_actor"), (("conf", "nope"), "unknown_method"),
                       (("conf", "add", 1, "x"), "bad_args"), (("conf", "fail", "boom"), "actor_error")]:
        assert call(client, ep, *args)[0] == code, args
    assert call(client, ep, "conf", "sleep_ms", 2000, timeout=0.3)[0] == "deadline_exceeded"


@pytest.mark.parametrize("client", CLIENTS)
def test_a_client_ignores_what_is_not_its_reply_and_keeps_its_own_timeout(client: str, procs: Procs,
                                                                          ctx: zmq.Context) -> None:
    """A fake broker first sends junk and a DISCONNECT, then the REPLY; for
    a second call it never answers: the client ends it by its own timeout."""
    endpoint = f"ipc://{procs.dir}/fake.sock"
    fake = Raw(ctx, endpoint, bind=True, kind=zmq.ROUTER)
    stop = threading.Event()
    answered: list[bool] = []

    def serve() -> None:
        while not stop.is_set():
            m = fake.recv(0.05)
            if m is None or m[1] != hdr(REQUEST):
                continue
            id_, _, method, _, _ = msgpack.unpackb(m[2])
            if method != "answer":
                continue  # the silent broker
            fake.send([m[0], hdr(DISCONNECT)])
            fake.send([m[0], hdr(HEARTBEAT)])
            fake.send([m[0], b"junk"])
            fake.send([m[0], hdr(REPLY), pack([id_ + 1000, "ok"]), pack("not yours")])
            fake.send([m[0], hdr(REPLY), pack([id_, "ok"]), pack(42)])
            answered.append(True)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        assert call(client, endpoint, "x", "answer", timeout=5) == ("ok", 42)
        start = time.monotonic()
        status, _ = call(client, endpoint, "x", "silent", timeout=0.5)
        took = time.monotonic() - start
        assert status == "deadline_exceeded" and took < 3.0, (status, took)
    finally:
        stop.set()
        t.join(5)
    assert answered
