"""Failures that tell the user what to do, and the event log (issue 9), with
the real programs: the C++ broker, the C++ examples worker, the Python
worker and the `troupe` command line. Every process is stopped by pid at
teardown (conftest.spawn) and every wait is bounded."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from typing import Callable

import pytest

import troupe
from conftest import (EXAMPLES_WORKER, TROUPE, Proc, child_env, needs_cpp, python_worker_argv,
                      wait_for_workers, wait_until)

pytestmark = needs_cpp

# The fields every troupe program's JSON lines carry, in this order
# (docs/operations.md, "Logs").
LOG_FIELDS = ["ts", "level", "program", "pid", "event", "msg"]
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def run(argv: list[str], timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    """Runs a program that must end by itself within ``timeout`` s."""
    try:
        return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout,
                              env=child_env(), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:  # subprocess.run has killed it by pid
        pytest.fail(f"{argv[0]} did not exit within {timeout} s: {exc.stderr!r}")


def py_worker(*args: str) -> list[str]:
    return ["/usr/bin/python3", "-m", "troupe.worker", "sample_actors", *args]


def json_lines(text: str) -> list[dict]:
    """Every line of ``text`` is one JSON object with the common fields."""
    out = []
    for line in text.splitlines():
        obj = json.loads(line)
        assert list(obj)[:len(LOG_FIELDS)] == LOG_FIELDS, line
        assert TS.match(obj["ts"]), line
        assert obj["level"] in ("error", "warn", "info", "debug"), line
        assert isinstance(obj["pid"], int), line
        out.append(obj)
    return out


# ------------------------------------------------------------------ bad endpoints and flags


@pytest.mark.parametrize("which", ["cpp", "python"])
def test_a_worker_given_a_bogus_endpoint_exits_2_with_one_line(which: str) -> None:
    argv = [EXAMPLES_WORKER, "--broker", "bogus://x"] if which == "cpp" else py_worker("--broker", "bogus://x")
    start = time.monotonic()
    r = run(argv)
    assert r.returncode == 2, r
    assert time.monotonic() - start < 8
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "cannot connect to 'bogus://x'" in lines[0] and "tcp://127.0.0.1:5555" in lines[0], lines
    assert "terminate called" not in r.stderr


def test_list_needs_no_broker() -> None:
    r = run([EXAMPLES_WORKER, "--broker", "bogus://x", "--list"])
    assert r.returncode == 0 and "squares: square square_slowly" in r.stdout, r


def test_a_worker_pool_given_a_bogus_endpoint_exits_2_before_forking() -> None:
    r = run([EXAMPLES_WORKER, "--broker", "tcp://", "--processes", "2"])
    assert r.returncode == 2, r
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize("flags", [["--credits", "x"], ["--credits", "0"], ["--no-such-flag"],
                                   ["--log-level", "loud"], ["--log-format", "xml"]])
@pytest.mark.parametrize("which", ["cpp", "python"])
def test_bad_worker_flags_exit_2(which: str, flags: list[str]) -> None:
    argv = [EXAMPLES_WORKER, *flags] if which == "cpp" else py_worker(*flags)
    r = run(argv)
    assert r.returncode == 2, r
    assert r.stderr.strip(), "a usage error says what is wrong"


@pytest.mark.parametrize("flags", [["broker", "--log-level", "loud"], ["broker", "--heartbeat-ms", "1"],
                                   ["call"], ["no-such-command"]])
def test_bad_troupe_flags_exit_2(flags: list[str]) -> None:
    r = run([TROUPE, *flags])
    assert r.returncode == 2, r


@pytest.mark.parametrize("argv", [[TROUPE, "--help"], [EXAMPLES_WORKER, "--help"]])
def test_help_exits_0(argv: list) -> None:
    r = run(argv)
    assert r.returncode == 0, r
    assert "--version" in r.stdout


@pytest.mark.parametrize("argv", [[TROUPE], [EXAMPLES_WORKER], py_worker()])
def test_every_executable_has_version(argv: list) -> None:
    r = run([*argv, "--version"])
    assert r.returncode == 0, r
    assert r.stdout.strip() == f"troupe {troupe.__version__}", r


# ------------------------------------------------------------------ the broker


def test_a_taken_port_names_the_endpoint(spawn: Callable[..., Proc]) -> None:
    first = spawn([TROUPE, "broker", "--listen", "tcp://127.0.0.1:*"], label="first")
    line = wait_until(lambda: re.search(r"listening on (tcp://\S+)", first.stdout()), 10, "the first broker")
    taken = line.group(1)  # type: ignore[union-attr]
    r = run([TROUPE, "broker", "--listen", taken])
    assert r.returncode == 1, r
    assert f"cannot listen on {taken}: Address already in use" in r.stderr, r.stderr
    assert "choose another --listen" in r.stderr


def test_a_name_whose_workers_are_gone_says_so(broker: Callable[..., Proc], spawn: Callable[..., Proc],
                                               endpoint: str) -> None:
    broker("--heartbeat-ms", "100", "--liveness", "3")
    worker = spawn([EXAMPLES_WORKER, "--broker", endpoint], label="worker")
    wait_for_workers(endpoint, "squares", 1)
    with troupe.Client(endpoint, timeout=5) as c:
        assert c.ask("squares", "square", 3) == 9
    worker.signal(signal.SIGKILL)
    worker.wait(5)
    with troupe.Client(endpoint, timeout=2) as c:
        wait_until(lambda: not [w for w in c.workers() if "squares" in w["actors"]], 5, "the worker declared lost")
        with pytest.raises(troupe.DeadlineExceeded) as err:
            c.ask("squares", "square", 3, timeout=0.5)
    assert "no live worker hosts actor 'squares'" in str(err.value), err.value
    # The command line says the same.
    r = run([TROUPE, "call", "--broker", endpoint, "--timeout-ms", "500", "squares", "square", "3"])
    assert r.returncode == 1 and "no live worker hosts actor 'squares'" in r.stderr, r


def test_a_slow_worker_is_not_called_gone(broker: Callable[..., Proc], spawn: Callable[..., Proc],
                                          endpoint: str) -> None:
    broker()
    spawn([EXAMPLES_WORKER, "--broker", endpoint], label="worker")
    wait_for_workers(endpoint, "squares", 1)
    with troupe.Client(endpoint, timeout=0.3) as c, pytest.raises(troupe.DeadlineExceeded) as err:
        c.ask("squares", "square_slowly", 2, 2000)
    assert "no live worker" not in str(err.value), err.value


# ------------------------------------------------------------------ the event log


def test_the_broker_logs_workers_joining_leaving_and_lost_as_json(broker: Callable[..., Proc],
                                                                  spawn: Callable[..., Proc],
                                                                  endpoint: str) -> None:
    b = broker("--log-format", "json", "--heartbeat-ms", "100", "--liveness", "3")
    leaver = spawn([EXAMPLES_WORKER, "--broker", endpoint, "--name", "leaver"], label="leaver")
    victim = spawn(python_worker_argv(endpoint, "sample_actors", name="victim"), label="victim")
    wait_for_workers(endpoint, "squares", 1)
    wait_for_workers(endpoint, "pyecho", 1)

    def events(name: str) -> list[dict]:
        return [e for e in json_lines(b.stderr()) if e["event"] == name]

    joined = {e["worker"]: e for e in events("worker_joined")}
    assert set(joined) == {"leaver", "victim"}, joined
    assert joined["leaver"]["pid"] == b.pid and joined["leaver"]["program"] == "broker"
    assert joined["leaver"]["worker_pid"] == leaver.pid and joined["victim"]["worker_pid"] == victim.pid
    assert "squares" in joined["leaver"]["actors"].split(",") and joined["leaver"]["credits"] > 0
    assert "pyecho" in joined["victim"]["actors"].split(",")

    leaver.signal(signal.SIGTERM)
    assert leaver.wait(10) == 0
    left = wait_until(lambda: events("worker_left"), 5, "worker_left")
    assert [e["worker"] for e in left] == ["leaver"] and left[0]["level"] == "info"  # type: ignore[index]

    victim.signal(signal.SIGKILL)
    lost = wait_until(lambda: events("worker_lost"), 5, "worker_lost")
    assert [e["worker"] for e in lost] == ["victim"], lost  # type: ignore[union-attr]
    # Noticed by its silence, or sooner when its connection closed.
    reason = lost[0]["reason"]  # type: ignore[index]
    assert lost[0]["level"] == "warn" and ("silent for longer than 300 ms" in reason  # type: ignore[index]
                                           or "could not send" in reason), reason
    # Requests are not events.
    with troupe.Client(endpoint, timeout=2) as c:
        for _ in range(20):
            c.ping()
    assert len(json_lines(b.stderr())) < 12, b.stderr()


def test_log_level_warn_keeps_only_warnings_and_errors(broker: Callable[..., Proc], spawn: Callable[..., Proc],
                                                      endpoint: str) -> None:
    b = broker("--log-level", "warn", "--heartbeat-ms", "100")
    worker = spawn([EXAMPLES_WORKER, "--broker", endpoint, "--name", "w"], label="worker")
    wait_for_workers(endpoint, "squares", 1)
    worker.signal(signal.SIGKILL)
    wait_until(lambda: "was lost" in b.stderr(), 5, "the loss logged")
    assert "joined" not in b.stderr(), b.stderr()
    assert all(line.startswith("troupe broker: warning: ") for line in b.stderr().splitlines()), b.stderr()


def test_the_text_log_says_the_same(broker: Callable[..., Proc], spawn: Callable[..., Proc], endpoint: str) -> None:
    b = broker()
    w = spawn([EXAMPLES_WORKER, "--broker", endpoint, "--name", "tw"], label="worker")
    wait_for_workers(endpoint, "squares", 1)
    w.signal(signal.SIGTERM)
    w.wait(10)
    wait_until(lambda: "worker 'tw'" in b.stderr() and " left" in b.stderr(), 5, "the text lines")
    assert re.search(r"troupe broker: worker 'tw' \(pid \d+\) joined: hosts \S*squares\S* with \d+ credits",
                     b.stderr()), b.stderr()


def test_a_pool_writes_json_lines_too(broker: Callable[..., Proc], spawn: Callable[..., Proc],
                                      endpoint: str) -> None:
    broker()
    pool = spawn([EXAMPLES_WORKER, "--broker", endpoint, "--name", "jp", "--processes", "2", "--log-format", "json"],
                 label="pool")
    wait_for_workers(endpoint, "squares", 2)
    pool.signal(signal.SIGTERM)
    assert pool.wait(15) == 0
    lines = json_lines(pool.stderr())
    assert {e["event"] for e in lines} == {"worker", "supervisor"}, lines
    assert {e["worker"] for e in lines if e["event"] == "worker"} == {"jp-1", "jp-2"}, lines


@pytest.mark.parametrize("which", ["cpp", "python"])
def test_workers_write_the_same_json_fields(broker: Callable[..., Proc], spawn: Callable[..., Proc],
                                            endpoint: str, which: str) -> None:
    broker()
    argv = ([EXAMPLES_WORKER, "--broker", endpoint, "--name", "jw", "--log-format", "json"] if which == "cpp"
            else python_worker_argv(endpoint, "sample_actors", name="jw", extra=["--log-format", "json"]))
    w = spawn(argv, label="worker")
    wait_until(lambda: "registered" in w.stderr() or "serving" in w.stderr(), 10, "the worker's first lines")
    w.signal(signal.SIGTERM)
    assert w.wait(10) == 0
    lines = json_lines(w.stderr())
    assert lines and all(e["program"] == "jw" and e["worker"] == "jw" and e["event"] == "worker" for e in lines)
    assert all(e["pid"] == w.pid for e in lines), lines
