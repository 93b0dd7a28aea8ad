"""The Python worker (a real subprocess) against a scripted broker socket.

The test plays the broker's side of docs/protocol.md on a real ROUTER socket,
so worker behaviour the C++ broker cannot be made to show on demand
(malformed input, unsolicited DISCONNECT, a missing acknowledgement, silence)
is checked exactly. Runs without the C++ binaries.
"""

from __future__ import annotations

import signal
import time
from typing import Any, Callable

import msgpack
import pytest
import zmq

from conftest import BIN_DIR, EXAMPLES, VECTORS, Proc, python_worker_argv
from troupe import protocol as p


class ScriptedBroker:
    """A ROUTER socket speaking the broker side, every wait bounded."""

    def __init__(self, endpoint: str) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(endpoint)
        self.worker: bytes | None = None  # identity of the last READY
        self.heartbeats = 0
        self.send_heartbeats = True
        self._next_beat = 0.0

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()

    def send(self, frames: list[bytes], identity: bytes | None = None) -> None:
        self.sock.send_multipart([identity or self.worker or b""] + frames)

    def recv(self, timeout: float = 5.0, skip_heartbeats: bool = True) -> tuple[bytes, list[bytes]] | None:
        """Next (identity, frames) from any peer, or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            if self.send_heartbeats and self.worker and now >= self._next_beat:
                self.send(p.encode_heartbeat())
                self._next_beat = now + 0.3
            left = deadline - now
            if left <= 0:
                return None
            if self.sock.poll(int(min(left, 0.1) * 1000) + 1):
                identity, *frames = self.sock.recv_multipart()
                if frames == p.encode_heartbeat():
                    self.heartbeats += 1
                    if skip_heartbeats:
                        continue
                return identity, frames

    def expect_ready(self, timeout: float = 10.0) -> p.Ready:
        got = self.recv(timeout)
        assert got is not None, "no READY from the worker"
        identity, frames = got
        msg = p.decode(frames)
        assert isinstance(msg, p.Ready), msg
        self.worker = identity
        return msg

    def call(self, id_: int, address: str, method: str, args: Any = (), *, flags: int = 0,
             timeout_ms: int = 5000, raw_args: bytes | None = None) -> None:
        frames = p.encode_request(id_, address, method, raw_args if raw_args is not None else list(args),
                                  flags=flags, timeout_ms=timeout_ms)
        self.send(frames)

    def reply(self, timeout: float = 5.0) -> p.Reply | None:
        while True:
            got = self.recv(timeout)
            if got is None:
                return None
            msg = p.decode(got[1])
            if isinstance(msg, p.Reply):
                return msg

    def ask(self, id_: int, address: str, method: str, *args: Any, **kw: Any) -> p.Reply:
        self.call(id_, address, method, args, **kw)
        reply = self.reply()
        assert reply is not None, f"no reply to {address}.{method}"
        assert reply.id == id_
        return reply


@pytest.fixture
def scripted(endpoint: str) -> ScriptedBroker:
    b = ScriptedBroker(endpoint)
    yield b
    b.close()


@pytest.fixture
def pyworker(spawn: Callable[..., Proc], endpoint: str) -> Callable[..., Proc]:
    def start(*extra: str, credits: int = 4, name: str = "w1") -> Proc:
        return spawn(python_worker_argv(endpoint, "sample_actors", credits=credits, name=name,
                                        extra=list(extra)), label=f"pyworker-{name}")
    return start


def test_ready_and_call(scripted: ScriptedBroker, pyworker: Callable[..., Proc]) -> None:
    proc = pyworker(credits=3)
    ready = scripted.expect_ready()
    assert (ready.name, ready.pid, ready.credits) == ("w1", proc.pid, 3)
    assert ready.actors == ["pybroken", "pyecho", "pytally"]
    assert scripted.ask(11, "pyecho", "echo", {"a": [1, 2.5, None]}) == p.Reply(11, "ok", {"a": [1, 2.5, None]})
    assert scripted.ask(12, "pyecho", "pid") == p.Reply(12, "ok", proc.pid)
    # any integer encoding of a meta field is accepted (id as uint64, timeout as uint32)
    meta = b"\x95\xcf" + (13).to_bytes(8, "big") + msgpack.packb("pyecho") + msgpack.packb("add") + b"\x00\xce\x00\x00\x13\x88"
    scripted.send([p.header(p.Command.REQUEST), meta, msgpack.packb([2, 3])])
    assert scripted.reply() == p.Reply(13, "ok", 5)


def test_error_codes(scripted: ScriptedBroker, pyworker: Callable[..., Proc]) -> None:
    pyworker("--max-message-bytes", "4096")
    scripted.expect_ready()
    cases: list[tuple[str, str, Any, str, str]] = [
        ("nope", "echo", [1], "unknown_actor", "nope"),
        ("pyecho", "nope", [], "unknown_method", "nope"),
        ("pyecho", "close", [], "unknown_method", "close"),     # the hook is not a method
        ("pyecho", "_private", [], "unknown_method", "_private"),
        ("pyecho", "add", [1], "bad_args", "b"),                # too few
        ("pyecho", "add", [1, 2, 3], "bad_args", "too many"),
        ("pyecho", "add", [1, "x"], "bad_args", "must be int"),
        ("pyecho", "fail", ["it broke"], "actor_error", "it broke"),
        ("pybroken", "anything", [], "actor_error", "constructor failed on purpose"),
        ("pyecho", "unencodable", [], "actor_error", "cannot be encoded"),
        ("pyecho", "", [], "bad_request", "method"),
        ("bad name!", "echo", [1], "bad_request", "malformed"),
    ]
    for i, (address, method, args, code, text) in enumerate(cases, start=100):
        reply = scripted.ask(i, address, method, *args)
        assert (reply.status, reply.id) == (code, i), (address, method, reply)
        assert text in reply.value, reply
    raw_cases = [
        (b"\x01", "not an array"),                   # args is an int
        (b"\x92\x01", "truncated"),                  # malformed
        (b"\x91" * 40 + b"\x00", "too deep"),        # nesting over 32
        (b"\xdd\xff\xff\xff\xff", "huge length"),    # array claiming 4 G elements
        (msgpack.packb([b"x" * 5000]), "over frame limit"),
    ]
    for i, (raw, why) in enumerate(raw_cases, start=200):
        reply = scripted.ask(i, "pyecho", "echo", raw_args=raw)
        assert reply.status == "bad_args", (why, reply)
    assert scripted.ask(300, "pyecho", "echo", 1, flags=4).status == "bad_request"  # an unknown flag
    # still serving normally after all that
    assert scripted.ask(301, "pyecho", "add", 2, 2).value == 4


def vector(name: str) -> list[bytes]:
    return [bytes.fromhex(line) for line in (VECTORS / f"{name}.hex").read_text().split()]


def test_shared_vectors_reach_the_worker(scripted: ScriptedBroker, pyworker: Callable[..., Proc]) -> None:
    pyworker()
    scripted.expect_ready()
    # Any integer encoding of id, flags and timeout_ms: the meta is read (the
    # worker hosts no `squares` or `counter`, so the answer is unknown_actor
    # to the right id; tells are answered too, for the broker's credit).
    for path in sorted(VECTORS.glob("accept_request_*.hex")):
        scripted.send(vector(path.stem))
        reply = scripted.reply()
        assert reply is not None and reply.status == "unknown_actor", (path.stem, reply)
        assert reply.id in (7, 8), path.stem
    # An address or method that is not UTF-8 is answered bad_request by id,
    # and the message does not echo the bad bytes.
    for name in ("reject_request_address_not_utf8", "reject_request_key_overlong_utf8",
                 "reject_request_method_not_utf8"):
        scripted.send(vector(name))
        reply = scripted.reply()
        assert reply is not None and (reply.id, reply.status) == (7, "bad_request"), (name, reply)
        assert "UTF-8" in reply.value
    # A negative integer makes the meta unreadable: dropped, nothing to answer.
    for name in ("reject_request_negative_id", "reject_request_negative_flags", "reject_request_negative_timeout"):
        scripted.send(vector(name))
    assert scripted.ask(9, "pyecho", "add", 2, 2).value == 4


def test_malformed_messages_are_dropped(scripted: ScriptedBroker, pyworker: Callable[..., Proc]) -> None:
    pyworker()
    scripted.expect_ready()
    garbage = [
        [b"XXX\x01\x01", b"\x90", b"\x90"],                    # wrong signature
        [b"TRP\x07\x01", b"\x90", b"\x90"],                    # wrong version
        [b"TRP\x01\x7f"],                                      # unknown command
        [b"TRP\x01\x01", b"\x90"],                             # REQUEST missing a frame
        [b"TRP\x01\x01", b"\xc1", b"\x90"],                    # unreadable meta: no id to answer
        [b"TRP\x01\x01", msgpack.packb([1, "pyecho"]), b"\x90"],
        [b"TRP\x01\x01", msgpack.packb([-5, "pyecho", "echo", 0, 0]), b"\x91\x01"],
        p.encode_reply(1, "ok", 1),                            # REPLY to a worker
        p.encode_ready("x", 1, 1, ["a"]),                      # READY to a worker
        [b"TRP\x01\x04", b"extra"],                            # HEARTBEAT with a body
        [b""],
    ]
    for frames in garbage:
        scripted.send(frames)
    # none of them gets a reply; the next good request is answered
    assert scripted.ask(7, "pyecho", "echo", "still here").value == "still here"


def test_tell_is_replied_to_the_broker(scripted: ScriptedBroker, pyworker: Callable[..., Proc]) -> None:
    pyworker()
    scripted.expect_ready()
    # the broker needs the reply to a tell to return the credit
    assert scripted.ask(5, "pytally/t", "add", 3, flags=p.FLAG_TELL) == p.Reply(5, "ok", 3)


def test_keyed_instances(scripted: ScriptedBroker, pyworker: Callable[..., Proc]) -> None:
    pyworker()
    scripted.expect_ready()
    assert scripted.ask(1, "pytally/alice", "add", 5).value == 5
    assert scripted.ask(2, "pytally/bob", "add", 1).value == 1
    assert scripted.ask(3, "pytally/alice", "add", 2).value == 7
    assert scripted.ask(4, "pytally/alice", "key_of").value == "alice"
    assert scripted.ask(5, "pytally", "key_of").value is None
    assert scripted.ask(6, "pytally/ключ", "key_of").value == "ключ"


def test_unsolicited_disconnect_gets_ready_again(scripted: ScriptedBroker, pyworker: Callable[..., Proc]) -> None:
    pyworker(credits=2)
    first = scripted.expect_ready()
    scripted.send(p.encode_disconnect())
    again = scripted.expect_ready(timeout=5)
    assert again == first
    assert scripted.ask(1, "pyecho", "echo", 1).value == 1


def test_reconnects_after_broker_silence(scripted: ScriptedBroker, pyworker: Callable[..., Proc]) -> None:
    pyworker("--heartbeat-ms", "100", "--liveness", "3")
    scripted.expect_ready()
    old_identity = scripted.worker
    scripted.send_heartbeats = False  # play dead
    got = scripted.expect_ready(timeout=5)
    assert got.name == "w1"
    assert scripted.worker != old_identity, "the worker should reconnect with a new socket"
    scripted.send_heartbeats = True
    assert scripted.ask(1, "pyecho", "echo", "back").value == "back"


def test_heartbeats_continue_during_a_long_method(scripted: ScriptedBroker, pyworker: Callable[..., Proc]) -> None:
    pyworker("--heartbeat-ms", "100")
    scripted.expect_ready()
    scripted.call(1, "pyecho", "spin", [1.5])
    start = scripted.heartbeats
    reply = scripted.reply(timeout=10)
    assert reply is not None and reply.status == "ok"
    # 1.5 s of busy Python at one heartbeat per 100 ms
    assert scripted.heartbeats - start >= 8, scripted.heartbeats - start


def test_request_past_its_deadline_is_not_run(scripted: ScriptedBroker, pyworker: Callable[..., Proc]) -> None:
    pyworker(credits=2)
    scripted.expect_ready()
    scripted.call(1, "pyecho", "sleep", [0.6])
    scripted.call(2, "pytally/d", "add", [1], timeout_ms=100)  # waits behind the sleep
    replies = {r.id: r for r in (scripted.reply(), scripted.reply())}
    assert replies[1].status == "ok"
    assert replies[2].status == "deadline_exceeded"
    # the expired add never ran: the fresh instance starts at 0
    assert scripted.ask(3, "pytally/d", "add", 10).value == 10


def test_graceful_shutdown(scripted: ScriptedBroker, pyworker: Callable[..., Proc]) -> None:
    proc = pyworker(credits=4)
    scripted.expect_ready()
    assert scripted.ask(1, "pyecho", "echo", 1).value == 1
    assert scripted.ask(2, "pytally/z", "add", 1).value == 1
    scripted.call(3, "pyecho", "sleep", [0.5])
    time.sleep(0.1)
    proc.signal(signal.SIGTERM)
    got = scripted.recv(timeout=5)
    assert got is not None and got[1] == p.encode_disconnect(), got
    # sent before our acknowledgement: the worker must still take and answer it
    scripted.call(4, "pyecho", "echo", ["late"])
    scripted.send(p.encode_disconnect())  # the acknowledgement
    replies = {}
    while len(replies) < 2:
        r = scripted.reply(timeout=5)
        assert r is not None, f"missing replies, have {replies}"
        replies[r.id] = r
    assert replies[3].status == "ok" and replies[4].value == "late"
    assert proc.wait(10) == 0
    out = proc.stdout()
    assert out.count(f"pyecho destroyed in pid {proc.pid}") == 1, out
    assert out.count(f"pytally/z destroyed in pid {proc.pid}") == 1, out
    assert out.count("pyecho built") == 1, out


def test_shutdown_without_acknowledgement_is_bounded(scripted: ScriptedBroker, pyworker: Callable[..., Proc]) -> None:
    proc = pyworker("--heartbeat-ms", "200")
    scripted.expect_ready()
    assert scripted.ask(1, "pyecho", "echo", 1).value == 1
    t0 = time.monotonic()
    proc.signal(signal.SIGINT)
    assert proc.wait(10) == 0
    assert time.monotonic() - t0 < 5
    assert proc.stdout().count("pyecho destroyed") == 1


def test_fast_path_answers_like_the_general_path(scripted: ScriptedBroker, pyworker: Callable[..., Proc]) -> None:
    # The first request for an address builds its instance on the general path;
    # later ones take the worker's fast path. Both must answer alike.
    pyworker("--max-message-bytes", "4096")
    scripted.expect_ready()
    cases: list[tuple[str, str, Any, bytes | None]] = [
        ("pyecho", "echo", [{1: "int key"}], None),        # non-str map keys
        ("pyecho", "echo", [[1, [2, [3]]]], None),
        ("pyecho", "add", [1, 2], None),
        ("pyecho", "add", [True, 2], None),                # bool is not int
        ("pyecho", "add", [1], None),
        ("pyecho", "add", [1, 2, 3], None),
        ("pyecho", "add", [1.5, 2], None),
        ("pyecho", "sleep", [0], None),                    # int where float is annotated
        ("pyecho", "fail", ["boom"], None),
        ("pyecho", "unencodable", [], None),
        ("pyecho", "nope", [], None),
        ("pyecho", "echo", [], b"\x91" * 40 + b"\x00"),    # too deep
        ("pyecho", "echo", [], b"\x01"),                   # not an array
        ("pyecho", "echo", [], b"\x92\x01"),               # truncated
        ("pyecho", "echo", [], msgpack.packb(["x" * 5000])),  # over the frame limit
        ("pytally/a", "add", [2], None),
    ]
    answers: list[list[tuple[str, Any]]] = [[], []]
    for attempt in range(2):
        for i, (address, method, args, raw) in enumerate(cases):
            reply = scripted.ask(1000 * attempt + i + 1, address, method, *args,
                                 **({"raw_args": raw} if raw is not None else {}))
            answers[attempt].append((reply.status, reply.value))
    answers[1][-1] = (answers[1][-1][0], answers[1][-1][1] - 2)  # the tally counted twice
    assert answers[0] == answers[1]
    assert answers[0][0] == ("ok", {1: "int key"})
    assert answers[0][3][0] == "bad_args" and answers[0][6][0] == "bad_args"
    assert answers[0][7][0] == "ok"
    assert [a[0] for a in answers[0][11:15]] == ["bad_args"] * 4
    # a tell is answered too (the broker needs the reply for the credit), on the fast path as well
    assert scripted.ask(5000, "pyecho", "add", 1, 1, flags=p.FLAG_TELL) == p.Reply(5000, "ok", 2)


def test_short_and_long_requests_do_not_stop_the_worker(scripted: ScriptedBroker,
                                                        pyworker: Callable[..., Proc]) -> None:
    pyworker()
    scripted.expect_ready()
    assert scripted.ask(1, "pyecho", "echo", 1).value == 1
    good = p.encode_request(2, "pyecho", "echo", ["after"], timeout_ms=5000)
    # a REQUEST that is only a header, followed at once by a good one: the good one is answered
    scripted.send([p.header(p.Command.REQUEST)] + good)
    assert scripted.reply() == p.Reply(2, "ok", "after")
    scripted.send([p.header(p.Command.REQUEST)])
    assert scripted.ask(3, "pyecho", "echo", "alone").value == "alone"
    # four frames: dropped whole, no method runs
    scripted.send(p.encode_request(4, "pytally/f", "add", [4], timeout_ms=5000) + [b"extra"])
    assert scripted.ask(5, "pytally/f", "add", 5) == p.Reply(5, "ok", 5)
    # two frames followed by a good request: dropped, and the good one answered
    scripted.send(p.encode_request(6, "pytally/f", "add", [6], timeout_ms=5000)[:2])
    scripted.send(p.encode_request(7, "pytally/f", "add", [7], timeout_ms=5000))
    assert scripted.reply() == p.Reply(7, "ok", 12)


def test_requests_behind_a_long_method_keep_their_order(scripted: ScriptedBroker,
                                                        pyworker: Callable[..., Proc]) -> None:
    # What arrives while a method runs is taken off the socket by the heartbeat
    # thread; it must still be handled in arrival order, one at a time.
    pyworker(credits=20)
    scripted.expect_ready()
    scripted.call(1, "pyecho", "sleep", [0.5])
    for i in range(2, 12):
        scripted.call(i, "pytally/order", "add", [i])
    replies = [scripted.reply(timeout=10) for _ in range(11)]
    assert [r.id for r in replies] == list(range(1, 12))
    totals = [r.value for r in replies[1:]]
    assert totals == [sum(range(2, i + 1)) for i in range(2, 12)]


def test_ready_acknowledgement_sets_the_heartbeat(scripted: ScriptedBroker, pyworker: Callable[..., Proc]) -> None:
    proc = pyworker()  # configured with the default 1000 ms
    scripted.expect_ready()
    scripted.send(p.encode_ready_ack(100, 3))
    assert scripted.ask(1, "pyecho", "echo", 1).value == 1
    start = scripted.heartbeats
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        scripted.recv(timeout=deadline - time.monotonic())
    assert scripted.heartbeats - start >= 6, scripted.heartbeats - start
    assert "serving" in proc.stderr()


def test_refused_ready_exits_2(scripted: ScriptedBroker, pyworker: Callable[..., Proc]) -> None:
    proc = pyworker()
    scripted.expect_ready()
    assert scripted.ask(1, "pyecho", "echo", 1).value == 1
    scripted.send(p.encode_disconnect("READY credits must be an int in 1..100000"))
    after = []
    while (got := scripted.recv(timeout=1.0)) is not None:
        after.append(p.decode(got[1]))
    assert not any(isinstance(m, p.Ready) for m in after), after  # never sent again
    assert proc.wait(10) == 2
    assert "READY credits must be an int in 1..100000" in proc.stderr()
    assert proc.stdout().count("pyecho destroyed") == 1


@pytest.mark.parametrize("impl", ["python", "cpp"])
def test_a_released_instance_is_dropped_once_its_awaiting_method_ends(impl: str, scripted: ScriptedBroker,
                                                                     spawn: Callable[..., Proc],
                                                                     endpoint: str) -> None:
    """RELEASE names a keyed instance whose method awaits a call: the worker
    (Python and C++ alike) drops it once that method, and the messages
    waiting behind it, have run; never under a suspended method."""
    if impl == "cpp":
        calls_worker = BIN_DIR / "troupe-test-calls-worker"
        if not calls_worker.is_file():
            pytest.skip(f"C++ test worker not built: {calls_worker}")
        spawn([str(calls_worker), "--broker", endpoint], label="cpp-calls-worker")
        address, method, args = "patient/a", "square_slowly", [3, 10]
        probe = ("patient/probe", "quick", 1)
    else:
        spawn(python_worker_argv(endpoint, str(EXAMPLES / "relay.py"), "call_actors", name="w1"),
              label="pyworker-calls")
        address, method, args = "pypatient/a", "call", ["squares", "square_slowly", [3, 10]]
        probe = ("pypatient/probe", "pid")
    scripted.expect_ready()
    scripted.send(p.encode_ready_ack(1000, 3))
    scripted.call(1, address, method, args)
    got = scripted.recv(timeout=5)
    assert got is not None, "no call from the method"
    calls, frames = got
    call_id = p.decode_request_meta_chain(frames[1])[0]
    scripted.send(p.encode_release([address]))
    scripted.call(2, address, "report")  # waits in the worker behind the awaiting method
    # The worker reads its socket in order: once another instance has
    # answered, the RELEASE and the report have arrived before the call's reply.
    assert scripted.ask(4, *probe).status == "ok"
    scripted.send(p.encode_reply(call_id, "ok", 9), identity=calls)
    assert scripted.reply() == p.Reply(1, "ok", 9)
    behind = scripted.reply()
    assert behind is not None and behind.id == 2 and str(behind.value["finished"]) == "1", behind
    # Idle now, it is gone: the next message builds a new instance.
    assert str(scripted.ask(3, address, "report").value["finished"]) == "0"


def test_a_call_from_a_method_carries_its_chain_and_the_time_left(scripted: ScriptedBroker,
                                                                  spawn: Callable[..., Proc],
                                                                  endpoint: str) -> None:
    """Calls go out on a second socket of the worker: each carries the
    handled REQUEST's chain plus [own address, its id] and at most the time
    that REQUEST has left; the worker heartbeats while the method awaits;
    an error reply keeps its code (docs/protocol.md, "Call chains")."""
    spawn(python_worker_argv(endpoint, str(EXAMPLES / "relay.py"), "call_actors", name="w1",
                             extra=["--heartbeat-ms", "150"]), label="pyworker-calls")
    scripted.expect_ready()
    work = scripted.worker
    scripted.send(p.encode_request(41, "pyrelay/a", "forward", ["squares", "square", [7]], timeout_ms=2000,
                                   chain=[("client/x", 5)]))
    got = scripted.recv(timeout=5)
    assert got is not None, "no call from the method"
    calls, frames = got
    assert calls != work and frames[0] == p.header(p.Command.REQUEST)
    id_, address, method, flags, timeout_ms, chain = p.decode_request_meta_chain(frames[1])
    assert (address, method, flags, msgpack.unpackb(frames[2])) == ("squares", "square", 0, [7])
    assert chain == [["client/x", 5], ["pyrelay/a", 41]]
    assert 1000 < timeout_ms <= 2000
    beats = scripted.heartbeats
    assert scripted.recv(timeout=0.9) is None  # the method awaits: nothing but heartbeats
    assert scripted.heartbeats - beats >= 4, scripted.heartbeats - beats
    scripted.send(p.encode_reply(id_, "ok", 49), identity=calls)
    assert scripted.reply() == p.Reply(41, "ok", 49)
    # An error reply to the call is the method's answer, code and message.
    scripted.send(p.encode_request(42, "pyrelay/a", "forward", ["squares", "square", [7]], timeout_ms=2000))
    got = scripted.recv(timeout=5)
    assert got is not None and got[0] == calls
    id2, *_, chain2 = p.decode_request_meta_chain(got[1][1])
    assert chain2 == [["pyrelay/a", 42]]
    scripted.send(p.encode_reply(id2, "worker_lost", "the callee died"), identity=calls)
    assert scripted.reply() == p.Reply(42, "worker_lost", "the callee died")
    # timeout= lowers the time a call gets below what its message has left.
    scripted.send(p.encode_request(44, "pypatient", "call_within", ["squares", "square", [7], 0.3],
                                   timeout_ms=2000))
    got = scripted.recv(timeout=5)
    assert got is not None and got[0] == calls
    id3, _, _, _, timeout3, chain3 = p.decode_request_meta_chain(got[1][1])
    assert timeout3 == 300 and chain3 == [["pypatient", 44]]
    scripted.send(p.encode_reply(id3, "ok", 49), identity=calls)
    assert scripted.reply() == p.Reply(44, "ok", 49)
    # A chain already 64 long: the call is not sent, bad_request at once.
    scripted.send(p.encode_request(43, "pyrelay/a", "forward", ["squares", "square", [7]], timeout_ms=2000,
                                   chain=[(f"hop/{i}", i + 1) for i in range(64)]))
    reply = scripted.reply()
    assert reply is not None and reply.id == 43 and reply.status == "bad_request", reply
    assert "longer than 64" in reply.value
