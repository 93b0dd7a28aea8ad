"""`troupe call` and JSON: bad ARGs exit 2, and a reply is printed as JSON by
the rules of docs/operations.md ("The command line"), in output linear in the
reply. A scripted worker answers with exactly the bytes a test chooses, so
values no actor library would produce (maps as keys) can be checked."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from typing import Callable, Iterator

import msgpack
import pytest
import zmq

from conftest import TROUPE, Proc, needs_cpp, wait_for_workers
from troupe import protocol as p

pytestmark = needs_cpp


def troupe_call(*argv: str, broker: str = "ipc:///nonexistent/troupe.sock",
                timeout: float = 20) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(TROUPE), "call", "--broker", broker, "--timeout-ms", "5000", *argv],
                          capture_output=True, timeout=timeout)


# ------------------------------------------------------------ bad ARGs

@pytest.mark.parametrize("argv, position", [
    (["squares", "square", "1e400"], 1),
    (["squares", "square", "-1e400"], 1),
    (["squares", "square_slowly", "3", "[1, 1e999]"], 2),
])
def test_number_out_of_range_is_bad_usage(argv: list[str], position: int) -> None:
    # Found by fuzzing (issue 16): a JSON out_of_range exception escaped, exit 1.
    started = time.monotonic()
    result = troupe_call(*argv)
    assert result.returncode == 2, result
    stderr = result.stderr.decode()
    assert stderr.startswith(f"error: argument {position} holds a number out of range: "), stderr
    assert "json.exception" not in stderr
    assert time.monotonic() - started < 5  # refused before any connection


def test_bench_refuses_it_too() -> None:
    result = subprocess.run([str(TROUPE), "bench", "--broker", "ipc:///nonexistent/troupe.sock",
                             "squares", "square", "1e400"], capture_output=True, timeout=20)
    assert result.returncode == 2 and b"out of range" in result.stderr, result


# ------------------------------------------------------------ replies as JSON

class ScriptedWorker:
    """Hosts actor `raw` on the real broker and answers every request with
    ``status`` and the ``value`` bytes, verbatim."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.status = "ok"
        self.value = b"\xc0"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.endpoint)
        try:
            sock.send_multipart(p.encode_ready("scripted", os.getpid(), 1, ["raw"]))
            next_beat = 0.0
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_beat:
                    sock.send_multipart(p.encode_heartbeat())
                    next_beat = now + 0.3
                if not sock.poll(50):
                    continue
                message = p.decode(sock.recv_multipart())
                if isinstance(message, p.Request):
                    sock.send_multipart([p.header(p.Command.REPLY), msgpack.packb([message.id, self.status]),
                                         self.value])
        finally:
            sock.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture
def raw(broker: Callable[..., Proc], endpoint: str) -> Iterator[ScriptedWorker]:
    broker()
    worker = ScriptedWorker(endpoint)
    try:
        wait_for_workers(endpoint, "raw", 1)
        yield worker
    finally:
        worker.stop()


def nested_map_keys(levels: int) -> bytes:
    """{{{...{}: nil}...: nil}: nil}: each level a map whose only key is the
    level below (issue 16's input)."""
    value = b"\x80"
    for _ in range(levels):
        value = b"\x81" + value + b"\xc0"
    return value


def call_raw(worker: ScriptedWorker, value: bytes, status: str = "ok") -> subprocess.CompletedProcess[bytes]:
    worker.status, worker.value = status, value
    return troupe_call("raw", "get", broker=worker.endpoint)


@pytest.mark.parametrize("value, shown", [
    (msgpack.packb({1: "a", -2: "b"}), {"1": "a", "-2": "b"}),
    (msgpack.packb({None: 1, True: 2, 2.5: 3}), {"null": 1, "true": 2, "2.5": 3}),
    (b"\x81\x92\x01\x02\xa1x", {"[1,2]": "x"}),                      # {[1, 2]: "x"}
    (b"\x81\x81\xa1a\x01\x02", {'{"a":1}': 2}),                     # {{"a": 1}: 2}
    (b"\x81\xc4\x02\x01\x02\x01", {"[1,2]": 1}),                     # {bin 01 02: 1}
    (b"\x81\x81\x91\x01\x02\x03", {'{"msgpack:9101":2}': 3}),       # {{[1]: 2}: 3}
    (b"\x81\x91\x81\x92\x01\xa1q\x02\x03", {'[{"msgpack:9201a171":2}]': 3}),  # {[{[1, "q"]: 2}]: 3}
    (b"\x81\x81\x81\xa1k\x01\xc0\xc0", {'{"msgpack:81a16b01":null}': None}),
    (b"\xa3a\xffb", "a\ufffdb"),                                    # a str that is not UTF-8
    (b"\x81\xa2\xff\xfe\x01", {"\ufffd\ufffd": 1}),
    (nested_map_keys(3), {'{"msgpack:8180c0":null}': None}),
])
def test_reply_as_json(raw: ScriptedWorker, value: bytes, shown: object) -> None:
    result = call_raw(raw, value)
    assert result.returncode == 0, result
    assert json.loads(result.stdout) == shown


@pytest.mark.parametrize("levels", [26, 31])
def test_nested_map_keys_print_small_and_fast(raw: ScriptedWorker, levels: int) -> None:
    # Issue 16: 26 levels (54 bytes) took over a second and printed 200 MB;
    # 31 ran out of memory. Now the output is linear in the reply.
    value = nested_map_keys(levels)
    started = time.monotonic()
    result = call_raw(raw, value)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result
    assert len(result.stdout) <= 4 * len(value) + 32, len(result.stdout)
    assert elapsed < 5, elapsed  # a process start and one call
    outer = json.loads(result.stdout)
    (key,) = outer
    assert json.loads(key) == {"msgpack:" + value[1:-1][1:-1].hex(): None}


def test_error_message_that_is_not_utf8(raw: ScriptedWorker) -> None:
    result = call_raw(raw, b"\xa4bad\xff", status="actor_error")
    assert result.returncode == 1, result
    assert result.stderr.decode("utf-8") == "error: actor_error: bad\ufffd\n"
