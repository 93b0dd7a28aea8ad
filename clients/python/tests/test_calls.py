"""Python actors that call actors (issue 14), end to end: the real C++
broker, the C++ examples worker (`squares`, `relay`, `counter`) and Python
workers hosting examples/python/relay.py (`pyrelay`) and call_actors.py.
Every wait is bounded; every process is stopped at teardown."""

from __future__ import annotations

import signal
import time
from typing import Any, Callable

import pytest

import troupe
from conftest import (EXAMPLES, EXAMPLES_WORKER, Proc, ask_in_thread, needs_cpp, python_worker_argv,
                      wait_for_workers, wait_until)

pytestmark = needs_cpp

RELAY = str(EXAMPLES / "relay.py")


def start_cluster(broker: Callable[..., Proc], spawn: Callable[..., Proc], endpoint: str,
                  *py_extra: str, callee_worker: bool = False) -> dict[str, Proc]:
    """Broker (500 ms heartbeats: a worker silent for 1.5 s is dead), the
    C++ examples worker (2 processes) and a Python worker hosting pyrelay,
    the call_actors and the sample actors; with ``callee_worker``, pyecho
    lives alone in a second Python worker."""
    procs = {"broker": broker("--heartbeat-ms", "500", "--liveness", "3")}
    procs["cpp"] = spawn([EXAMPLES_WORKER, "--broker", endpoint, "--processes", "2"], label="cpp-worker")
    only = ["--actor", "pyrelay", "--actor", "pyhop", "--actor", "pypatient", "--actor", "pytally"]
    procs["py"] = spawn(python_worker_argv(endpoint, RELAY, "call_actors", "sample_actors", credits=1000,
                                           name="py-1", extra=[*(only if callee_worker else []), *py_extra]),
                        label="py-worker")
    if callee_worker:
        procs["callee"] = spawn(python_worker_argv(endpoint, "sample_actors", name="py-2",
                                                   extra=["--actor", "pyecho"]), label="py-callee")
    wait_for_workers(endpoint, "squares", 2)
    wait_for_workers(endpoint, "pyrelay", 1)
    wait_for_workers(endpoint, "pyecho", 1)
    return procs


@pytest.fixture
def cluster(broker: Callable[..., Proc], spawn: Callable[..., Proc], endpoint: str) -> dict[str, Proc]:
    return start_cluster(broker, spawn, endpoint)


def test_a_python_coroutine_awaits_python_and_cpp_actors(cluster: dict[str, Proc], endpoint: str) -> None:
    with troupe.Client(endpoint, timeout=10) as c:
        assert c.ask("pyrelay/a", "forward", "pyecho", "add", [2, 3]) == 5      # Python -> Python
        assert c.ask("pyrelay/a", "forward", "squares", "square", [7]) == 49    # Python -> C++
        assert c.ask("pyrelay/a", "total", "squares", "square", [1, 2, 3, 4]) == 30  # four in flight at once
        assert c.ask("pyrelay/a", "forward_blocking", "squares", "square", [5]) == 25  # a plain method blocks
        assert c.ask("pyrelay/a", "forwarded_so_far") == 2
        c.ask("pyrelay/a", "notify", "counter/py-calls", "add", [5])            # a tell from a method
        wait_until(lambda: c.ask("counter/py-calls", "get") == 5, 5, "the tell to arrive")
        # ten coroutines, each awaiting the next (and a coroutine of its own)
        assert c.ask("pyhop/10", "hop", 10) == [f"pyhop/{i}" for i in range(11)]


def test_python_cpp_python_and_back(cluster: dict[str, Proc], endpoint: str) -> None:
    with troupe.Client(endpoint, timeout=10) as c:
        # Python relay -> C++ relay -> Python actor, and back
        assert c.ask("pyrelay/x", "forward", "relay/y", "forward", ["pyecho", "add", [2, 3]]) == 5
        # C++ relay -> Python relay -> C++ squares, and back
        assert c.ask("relay/a", "forward", "pyrelay/b", "forward", ["squares", "square", [6]]) == 36
        # Python -> C++ -> Python -> C++
        assert c.ask("pyrelay/p", "forward", "relay/q", "forward",
                     ["pyrelay/r", "forward", ["squares", "square", [9]]]) == 81


@pytest.mark.parametrize("chain", [
    ["pyrelay/a", "pyrelay/b", "pyrelay/a"],   # A -> B -> A, both Python
    ["pyrelay/a", "relay/b", "pyrelay/a"],     # through a C++ actor
    ["pyrelay/a", "pyrelay/a"],                # itself
])
def test_a_cycle_fails_fast_with_call_cycle_naming_the_chain(cluster: dict[str, Proc], endpoint: str,
                                                             chain: list[str]) -> None:
    call: list[Any] = ["squares", "square", [7]]
    for address in reversed(chain[1:]):
        call = [address, "forward", call]
    with troupe.Client(endpoint, timeout=10) as c:
        t0 = time.monotonic()
        with pytest.raises(troupe.CallCycle) as err:
            c.ask(chain[0], "forward", *call)
        assert time.monotonic() - t0 < 2.0  # at once, not by a deadline
        assert " -> ".join(chain) in err.value.message
        # Unkeyed, on one Python worker process: its only instance of the name waits up the chain.
        with pytest.raises(troupe.CallCycle):
            c.ask("pypatient", "call", "pypatient", "report", [])
        assert c.ask(chain[0], "forward", "squares", "square", [3]) == 9  # nothing is left waiting


def test_an_awaiting_coroutine_lets_its_worker_serve_other_keys(cluster: dict[str, Proc], endpoint: str) -> None:
    # pyrelay/slow awaits a 2.5 s call: longer than the broker's liveness
    # (1.5 s), so the worker's heartbeats go on while it waits.
    slow, slow_out = ask_in_thread(endpoint, "pyrelay/slow", "forward", "squares", "square_slowly", [3, 2500])
    with troupe.Client(endpoint, timeout=10) as c:
        time.sleep(0.2)  # pyrelay/slow is awaiting now
        # Many asks to other keys on the same Python worker are served meanwhile.
        results = c.map("pyrelay/k", "forward", [("pyecho", "add", [i, 1]) for i in range(50)], window=16)
        assert results == [i + 1 for i in range(50)]
        assert [c.ask(f"pytally/t{i}", "add", i) for i in range(30)] == list(range(30))
        assert [c.ask(f"pyrelay/k{i}", "forward", "pyecho", "add", [i, i]) for i in range(30)] == \
            [2 * i for i in range(30)]
        assert not slow_out, "other keys waited for the awaiting instance"
        # Its own next message waits behind it, in order (non-reentrant).
        # (Sent last: the broker counts an awaiting request and those waiting
        # behind it in the worker's window of at least 2, docs/operations.md.)
        same, same_out = ask_in_thread(endpoint, "pyrelay/slow", "forwarded_so_far")
    slow.join(10)
    same.join(10)
    assert slow_out.get("value") == 9, slow_out
    assert same_out.get("value") == 1, same_out  # ran after forward had returned
    assert same_out["at"] >= slow_out["at"] - 0.05
    assert cluster["py"].alive()


def test_a_call_gets_at_most_the_time_its_message_has_left(cluster: dict[str, Proc], endpoint: str) -> None:
    with troupe.Client(endpoint, timeout=10) as c:
        t0 = time.monotonic()
        with pytest.raises(troupe.DeadlineExceeded):
            c.ask("pypatient", "call", "squares", "square_slowly", [3, 3000], timeout=0.6)
        assert time.monotonic() - t0 < 1.5
        report = wait_until(lambda: (r := c.ask("pypatient", "report"))["finished"] == 1 and r, 5,
                            "the child call to end")
        assert report["last"] == "deadline_exceeded"
        assert report["last_ms"] < 1000  # it had the 0.6 s its caller had, not its own 30 s
        # No time left when it asks (the method used it up): refused at once, not sent.
        with pytest.raises(troupe.DeadlineExceeded):
            c.ask("pypatient/late", "call", "pyecho", "add", [1, 2], 0.7, timeout=0.5)
        report = wait_until(lambda: (r := c.ask("pypatient/late", "report"))["finished"] == 1 and r, 5,
                            "the late call to end")
        assert report["last"] == "deadline_exceeded" and report["last_ms"] < 50


def test_a_callees_error_reaches_the_caller_with_its_code(cluster: dict[str, Proc], endpoint: str) -> None:
    with troupe.Client(endpoint, timeout=10) as c:
        with pytest.raises(troupe.ActorError) as e1:
            c.ask("pyrelay/e", "forward", "pyecho", "fail", ["boom"])
        assert e1.value.message == "boom"
        with pytest.raises(troupe.BadArgs):
            c.ask("pyrelay/e", "forward", "squares", "square", ["seven"])   # C++ callee's code
        with pytest.raises(troupe.UnknownActor):
            c.ask("pyrelay/e", "forward", "nope", "x", [])
        with pytest.raises(troupe.UnknownMethod):
            c.ask("relay/e", "forward", "pyrelay/f", "nope", [])             # C++ caller, Python callee
        with pytest.raises(troupe.BadArgs):
            c.ask("pyrelay/e", "forward_blocking", "squares", "square", ["kaput"])
        # A plain method blocking on a call its own worker process must serve
        # holds that process: the call ends only by the deadline.
        t0 = time.monotonic()
        with pytest.raises(troupe.DeadlineExceeded):
            c.ask("pyrelay/e", "forward_blocking", "pyecho", "add", [1, 2], timeout=0.5)
        assert time.monotonic() - t0 < 2.0
        assert c.ask("pypatient", "caught", "pyecho", "fail", ["boom"]) == ["actor_error", "boom"]
        with pytest.raises(troupe.ActorError) as e3:
            c.ask("pyrelay/e", "forward", "pypatient", "raises", [])
        assert e3.value.message == "'nothing here'"
        # more than 64 calls deep
        with pytest.raises(troupe.BadRequest) as e4:
            c.ask("pyhop/70", "hop", 70)
        assert "longer than 64" in e4.value.message
        # a coroutine awaiting what the worker cannot drive says what it can
        with pytest.raises(troupe.ActorError) as e5:
            c.ask("pypatient", "bad_await")
        assert "can await ctx.ask(...)" in e5.value.message
        assert c.ask("pypatient", "no_await", 4) == 5
        assert c.ask("pyrelay/e", "forward", "squares", "square", [4]) == 16  # still serving


@pytest.mark.parametrize("victim", ["callee", "caller"])
def test_a_worker_killed_mid_chain_ends_every_ask(broker: Callable[..., Proc], spawn: Callable[..., Proc],
                                                  endpoint: str, victim: str) -> None:
    procs = start_cluster(broker, spawn, endpoint, callee_worker=True)
    # client -> pyrelay/k (py-1) -> pyecho.sleep (py-2)
    t, out = ask_in_thread(endpoint, "pyrelay/k", "forward", "pyecho", "sleep", [4], timeout=20)
    time.sleep(0.5)  # the chain is waiting on py-2
    assert not out
    killed_at = time.monotonic()
    procs["callee" if victim == "callee" else "py"].signal(signal.SIGKILL)
    t.join(10)
    assert isinstance(out.get("error"), troupe.WorkerLost), out
    assert out["at"] - killed_at < 4.0
    if victim == "callee":  # the caller's worker lives on
        with troupe.Client(endpoint, timeout=10) as c:
            assert c.ask("pyrelay/k", "forward", "squares", "square", [2]) == 4


@pytest.mark.parametrize("slow_ms,stop_timeout_ms", [(1000, 10000), (5000, 300)])
def test_a_stopping_worker_answers_every_request_its_awaiting_methods_hold(
        broker: Callable[..., Proc], spawn: Callable[..., Proc], endpoint: str,
        slow_ms: int, stop_timeout_ms: int) -> None:
    procs = start_cluster(broker, spawn, endpoint, "--stop-timeout-ms", str(stop_timeout_ms))
    slow, slow_out = ask_in_thread(endpoint, "pyrelay/s", "forward", "squares", "square_slowly", [3, slow_ms],
                                   timeout=20)
    time.sleep(0.3)
    parked, parked_out = ask_in_thread(endpoint, "pyrelay/s", "forwarded_so_far", timeout=20)
    time.sleep(0.3)
    stopped_at = time.monotonic()
    procs["py"].signal(signal.SIGTERM)
    assert procs["py"].wait(15) == 0
    slow.join(10)
    parked.join(10)
    if slow_ms < stop_timeout_ms:  # the awaited call ends in time: its method finishes
        assert slow_out.get("value") == 9, slow_out
        assert parked_out.get("value") == 1, parked_out
    else:  # cut short by the stop timeout: answered, not left to the caller's deadline
        assert isinstance(slow_out.get("error"), troupe.DeadlineExceeded), slow_out
        assert "stop timeout" in slow_out["error"].message
        assert parked_out.get("value") == 0, parked_out
        assert slow_out["at"] - stopped_at < 3.0


def test_an_unkeyed_self_call_goes_to_the_other_python_worker(broker: Callable[..., Proc],
                                                               spawn: Callable[..., Proc], endpoint: str) -> None:
    """With one process hosting pypatient, pypatient -> pypatient is a cycle
    (the other test); with two, the broker sends the call to the process
    whose instance is not waiting: the chain's link names the broker's
    request id of the message being handled."""
    broker()
    first = spawn(python_worker_argv(endpoint, "call_actors", name="py-a"), label="py-a")
    second = spawn(python_worker_argv(endpoint, "call_actors", name="py-b"), label="py-b")
    wait_for_workers(endpoint, "pypatient", 2)
    with troupe.Client(endpoint, timeout=10) as c:
        for _ in range(6):  # whichever process takes the call, its own call runs on the other
            caller, callee = c.ask("pypatient", "pids_via", "pypatient")
            assert {caller, callee} == {first.pid, second.pid}
