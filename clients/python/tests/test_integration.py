"""End to end: the real C++ broker, the real C++ examples worker and a real
Python worker, on ipc:// endpoints in a temp dir. Skipped when the C++
binaries are not built (see conftest.needs_cpp)."""

from __future__ import annotations

import ast
import asyncio
import json
import math
import os
import signal
import subprocess
import time
from typing import Any, Callable

import msgpack
import pytest
import zmq

import troupe
from conftest import (EXAMPLES, EXAMPLES_WORKER, TROUPE, Proc, ask_in_thread, child_env, needs_cpp,
                      python_worker_argv, wait_for_workers, wait_until)
from troupe import protocol as p

pytestmark = needs_cpp

GREETER = str(EXAMPLES / "greeter.py")


@pytest.fixture
def cluster(broker: Callable[..., Proc], spawn: Callable[..., Proc], endpoint: str) -> dict[str, Proc]:
    """Broker + C++ examples worker (2 processes) + Python worker."""
    procs = {"broker": broker()}
    procs["cpp"] = spawn([EXAMPLES_WORKER, "--broker", endpoint, "--processes", "2"], label="cpp-worker")
    procs["py"] = spawn(python_worker_argv(endpoint, "sample_actors", GREETER, credits=4, name="py-1"),
                        label="py-worker")
    wait_for_workers(endpoint, "squares", 2)
    wait_for_workers(endpoint, "echo", 1)
    wait_for_workers(endpoint, "pyecho", 1)
    return procs


# ------------------------------------------------------------------ values

ROUND_TRIP_VALUES: list[Any] = [
    None, True, False,
    0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1,
    -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1, -2**63,
    0.0, -0.0, 2.0, -4.0, 1.5, -2.25, 1e300, math.inf, -math.inf,
    "", "a", "héllo wörld ✓", "x" * 31, "x" * 32, "x" * 255, "x" * 256, "y" * 70_000,
    b"", b"\x00\xff", bytes(range(256)), b"z" * 70_000,
    [], [1, "two", 3.0, None, [True, [b"deep"]]], list(range(20)), list(range(70_000)),
    {}, {"a": 1, "b": [1, 2]}, {1: "int key", -2: "neg"}, {str(i): i for i in range(20)},
    msgpack.ExtType(5, b"abc"), msgpack.ExtType(0, b""), msgpack.ExtType(127, b"q" * 300),
    msgpack.Timestamp(1_700_000_000, 123), msgpack.Timestamp(2**40, 0),
    {"nested": [[[[[[[[[[["ten"]]]]]]]]]]]},
]


@pytest.mark.parametrize("actor", ["echo", "pyecho"])
def test_every_msgpack_type_round_trips(cluster: dict[str, Proc], endpoint: str, actor: str) -> None:
    with troupe.Client(endpoint, timeout=10) as c:
        wrong = []
        for value in ROUND_TRIP_VALUES:
            try:
                got = c.ask(actor, "echo", value)
            except troupe.TroupeError as exc:
                wrong.append((repr(value)[:60], repr(exc)[:100]))
                continue
            same = got == value and type(got) is type(value)
            if same and isinstance(value, float) and value == 0:
                same = math.copysign(1, got) == math.copysign(1, value)
            if not same:
                wrong.append((repr(value)[:60], repr(got)[:60]))
        # every mismatch at once, as (sent, received)
        assert not wrong, wrong
        nan = c.ask(actor, "echo", math.nan)
        assert math.isnan(nan)


def test_cpp_example_actors(cluster: dict[str, Proc], endpoint: str) -> None:
    with troupe.Client(endpoint, timeout=10) as c:
        assert c.ask("squares", "square", 7) == 49
        assert c.ask("vectorize", "apply", [1.0, 2.5, 3.0, -4.0]) == [0.0, 3.5, 4.0, -5.0]
        c.tell("counter/py-it", "add", 5)
        assert c.ask("counter/py-it", "add", 2) == 7  # same key, in order: the tell ran first
        assert c.ask("counter/py-it", "get") == 7
        assert c.map("squares", "square", range(50), window=8) == [i * i for i in range(50)]
        assert c.ping() == "pong"
        stats = c.stats()
        assert stats["workers"] >= 3 and stats["requests"] > 0


def test_python_actor_from_python(cluster: dict[str, Proc], endpoint: str) -> None:
    with troupe.Client(endpoint, timeout=10) as c:
        assert c.ask("greeter", "greet", "Ada").startswith("Hello, Ada!")
        assert [c.ask("tally/k1", "add", n) for n in (1, 2, 3)] == [1, 3, 6]
        assert c.ask("pyecho", "pid") == cluster["py"].pid


# ------------------------------------------------------------------ errors


def test_error_codes_from_the_cpp_side(cluster: dict[str, Proc], endpoint: str) -> None:
    with troupe.Client(endpoint, timeout=10) as c:
        with pytest.raises(troupe.UnknownActor) as e1:
            c.ask("nope", "x")
        assert e1.value.code == "unknown_actor" and e1.value.message
        with pytest.raises(troupe.UnknownMethod):
            c.ask("squares", "nope", 1)
        with pytest.raises(troupe.BadArgs):
            c.ask("squares", "square", "seven")
        with pytest.raises(troupe.BadArgs):
            c.ask("squares", "square", 1, 2)
        with pytest.raises(troupe.BadArgs):
            c.ask("echo", "echo", [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]])
        with pytest.raises(troupe.ActorError) as e2:
            c.ask("echo", "fail", "kaput")
        assert e2.value.message == "kaput"
        t0 = time.monotonic()
        with pytest.raises(troupe.DeadlineExceeded):
            c.ask("squares", "square_slowly", 3, 3000, timeout=0.3)
        assert time.monotonic() - t0 < 2.0
        with pytest.raises(troupe.BadRequest):
            c.ask("squares", "")
        with pytest.raises(troupe.BadRequest):
            c.ask("squares", "m" * 200)
        assert c.ask("squares", "square", 3) == 9  # still serving


def test_error_codes_from_the_python_side(cluster: dict[str, Proc], endpoint: str) -> None:
    with troupe.Client(endpoint, timeout=10) as c:
        with pytest.raises(troupe.ActorError) as e:
            c.ask("pyecho", "fail", "python says no")
        assert e.value.message == "python says no"
        with pytest.raises(troupe.ActorError, match="constructor failed"):
            c.ask("pybroken", "anything")
        with pytest.raises(troupe.UnknownMethod):
            c.ask("pyecho", "nope")
        with pytest.raises(troupe.BadArgs):
            c.ask("pyecho", "add", 1)
        with pytest.raises(troupe.BadArgs):
            c.ask("pyecho", "add", 1, "x")
        with pytest.raises(troupe.DeadlineExceeded):
            c.ask("pyecho", "sleep", 2.0, timeout=0.3)


def test_unreadable_meta_gets_bad_request_with_id_0(cluster: dict[str, Proc], endpoint: str) -> None:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    troupe.curve.secure(sock, troupe.curve.load())  # the suite's keys in a CURVE run, else plaintext
    try:
        sock.connect(endpoint)
        sock.send_multipart([p.header(p.Command.REQUEST), b"\xc1\xc1", b"\x90"])
        assert sock.poll(5000), "no reply to a malformed meta"
        reply = p.decode(sock.recv_multipart())
        assert reply == p.Reply(0, "bad_request", reply.value) and isinstance(reply.value, str)
        for junk in ([b"nonsense"], [b"TRP\x01\x02", b"\x92\x01\xa2ok", b"\x01"], [b"TRP\x01\x01", b"\x90"]):
            sock.send_multipart(junk)  # dropped (maybe answered); the broker keeps serving
        time.sleep(0.2)
        while sock.poll(0):
            sock.recv_multipart()
    finally:
        sock.close()
    with troupe.Client(endpoint, timeout=5) as c:
        assert c.ask("squares", "square", 4) == 16
        assert c.stats()["dropped"] >= 1


def test_overloaded(broker: Callable[..., Proc], spawn: Callable[..., Proc], endpoint: str) -> None:
    broker("--queue-limit", "1")
    spawn(python_worker_argv(endpoint, "sample_actors", credits=1), label="py-worker")
    wait_for_workers(endpoint, "pyecho", 1)

    async def main() -> list[Any]:
        async with troupe.AsyncClient(endpoint, timeout=10) as c:
            return await asyncio.gather(*(c.ask("pyecho", "sleep", 0.5) for _ in range(6)),
                                        return_exceptions=True)

    results = asyncio.run(main())
    overloaded = [r for r in results if isinstance(r, troupe.Overloaded)]
    ok = [r for r in results if isinstance(r, int)]
    # 1 held by the worker + 1 queued; the rest are refused at once
    assert len(ok) >= 2 and len(overloaded) >= 1 and len(ok) + len(overloaded) == 6, results


# ------------------------------------------------------------------ faults


def test_sigkill_cpp_worker_mid_request_gives_worker_lost(cluster: dict[str, Proc], endpoint: str) -> None:
    thread, out = ask_in_thread(endpoint, "squares", "square_slowly", 5, 20_000, timeout=30)
    with troupe.Client(endpoint, timeout=2) as c:
        busy = wait_until(lambda: [w for w in c.workers() if w["in_flight"] > 0 and "squares" in w["actors"]],
                          10, "a C++ worker holding the request")
    victim = busy[0]["pid"]
    assert victim != cluster["py"].pid
    os.kill(victim, signal.SIGKILL)
    thread.join(15)
    assert not thread.is_alive(), "ask did not end after its worker was killed"
    assert isinstance(out.get("error"), troupe.WorkerLost), out


def test_sigkill_python_worker_mid_request_gives_worker_lost(cluster: dict[str, Proc], endpoint: str) -> None:
    thread, out = ask_in_thread(endpoint, "pyecho", "sleep", 30.0, timeout=60)
    with troupe.Client(endpoint, timeout=2) as c:
        wait_until(lambda: [w for w in c.workers() if w["pid"] == cluster["py"].pid and w["in_flight"] > 0],
                   10, "the Python worker holding the request")
    cluster["py"].signal(signal.SIGKILL)
    thread.join(15)
    assert not thread.is_alive(), "ask did not end after its worker was killed"
    assert isinstance(out.get("error"), troupe.WorkerLost), out
    # the C++ side is unaffected
    with troupe.Client(endpoint, timeout=5) as c:
        assert c.ask("squares", "square", 6) == 36


def test_python_worker_graceful_stop_with_real_broker(cluster: dict[str, Proc], endpoint: str) -> None:
    py = cluster["py"]
    with troupe.Client(endpoint, timeout=10) as c:
        assert c.ask("tally/g", "add", 1) == 1
        assert c.ask("greeter", "greet", "x")
    thread, out = ask_in_thread(endpoint, "pyecho", "sleep", 1.0, timeout=10)
    time.sleep(0.3)
    py.signal(signal.SIGTERM)
    thread.join(10)
    assert out.get("value") == py.pid, out  # the held request finished
    assert py.wait(10) == 0
    stdout = py.stdout()
    for line in (f"pyecho destroyed in pid {py.pid}", f"greeter destroyed in pid {py.pid}",
                 f"tally/g destroyed in pid {py.pid}"):
        assert stdout.count(line) == 1, stdout
    with troupe.Client(endpoint, timeout=2) as c:
        wait_until(lambda: all(w["pid"] != py.pid for w in c.workers()), 10, "the broker to forget the worker")


def test_python_worker_survives_broker_restart(broker: Callable[..., Proc], spawn: Callable[..., Proc],
                                               endpoint: str) -> None:
    first = broker()
    py = spawn(python_worker_argv(endpoint, "sample_actors"), label="py-worker")
    wait_for_workers(endpoint, "pyecho", 1)
    first.signal(signal.SIGKILL)
    first.wait(5)
    broker()  # same endpoint, fresh broker that has never heard of the worker
    wait_for_workers(endpoint, "pyecho", 1, timeout=15)
    with troupe.Client(endpoint, timeout=5) as c:
        assert c.ask("pyecho", "pid") == py.pid


# ------------------------------------------------------------------ other callers


def test_python_actor_from_troupe_call(cluster: dict[str, Proc], endpoint: str) -> None:
    run = subprocess.run([str(TROUPE), "call", "--broker", endpoint, "--timeout-ms", "5000",
                          "greeter", "greet", '"Ada"'], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout).startswith("Hello, Ada!")
    run = subprocess.run([str(TROUPE), "call", "--broker", endpoint, "pyecho", "add", "2", "40"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and json.loads(run.stdout) == 42, run
    run = subprocess.run([str(TROUPE), "call", "--broker", endpoint, "greeter", "fail", '"from cli"'],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 1
    assert "error: actor_error: from cli" in run.stderr


def test_python_actor_from_the_cpp_client(cluster: dict[str, Proc], endpoint: str) -> None:
    """troupe-examples-client asks through troupe::client, the C++ client library."""
    cpp_client = TROUPE.parent / "troupe-examples-client"
    run = subprocess.run([str(cpp_client), "--broker", endpoint, "greeter", "greet", "Grace"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("Hello, Grace!")
    run = subprocess.run([str(cpp_client), "--broker", endpoint, "greeter", "fail", "from c++"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 1
    assert "error: actor_error: from c++" in run.stderr


def test_async_client_1000_concurrent_asks(cluster: dict[str, Proc], endpoint: str) -> None:
    async def main() -> None:
        async with troupe.AsyncClient(endpoint, timeout=30) as c:
            results = await asyncio.wait_for(
                asyncio.gather(*(c.ask("squares", "square", i) for i in range(1000))), 60)
            assert results == [i * i for i in range(1000)]
            mixed = await asyncio.wait_for(asyncio.gather(
                *(c.ask("pyecho", "echo", i) for i in range(500)),
                *(c.ask("echo", "echo", -i) for i in range(500))), 60)
            assert mixed == list(range(500)) + [-i for i in range(500)]
            assert await c.map("vectorize", "apply", [[float(i)] for i in range(100)], window=16) == \
                [[i + 1.0 if i > 2 else i - 1.0] for i in range(100)]
            with pytest.raises(troupe.UnknownActor):
                await c.ask("nope", "x")
    asyncio.run(main())


# ------------------------------------------------------------------ examples


@pytest.mark.parametrize("script", ["squares_pool.py", "vectorize_apply.py"])
def test_examples_run(script: str) -> None:
    """The examples start their own broker and worker pool and clean up."""
    env = child_env()
    run = subprocess.run(["/usr/bin/python3", str(EXAMPLES / script)], capture_output=True, text=True,
                         timeout=60, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    if script == "squares_pool.py":
        assert lines[0] == "square(0, 1, 2, 3, 4, 5, 6, 7) = [0, 1, 4, 9, 16, 25, 36, 49]", run.stdout
        assert lines[1].startswith("3 worker process(es) host squares"), run.stdout
    else:
        first = lines[0].split(" = ")
        assert first[0] == "apply([1.0, 2.5, 3.0, -4.0])", run.stdout
        assert ast.literal_eval(first[1]) == [0.0, 3.5, 4.0, -5.0]
        assert len(lines) == 4


# ------------------------------------------------------------------ calls from C++ actors

def test_a_cpp_actor_calls_a_python_actor(cluster: dict[str, Proc], endpoint: str) -> None:
    """relay (C++) asks pyecho (Python) from inside its method: the REQUEST
    the Python worker gets carries the call chain (a 7-element meta), and
    its answer, or its error, comes back through relay."""
    with troupe.Client(endpoint, timeout=10) as c:
        assert c.ask("relay/a", "forward", "pyecho", "add", [2, 3]) == 5
        assert c.ask("relay", "forward", "relay/b", "forward", ["pyecho", "echo", [{"x": [1, "two"]}]]) == {
            "x": [1, "two"]}
        with pytest.raises(troupe.ActorError, match="no luck"):
            c.ask("relay/a", "forward", "pyecho", "fail", ["no luck"])
        with pytest.raises(troupe.CallCycle, match=r"relay/a -> relay/a"):
            c.ask("relay/a", "forward", "relay/a", "forward", ["pyecho", "add", [1, 1]])
