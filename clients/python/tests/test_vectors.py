"""The Python encoder against tests/vectors, decoding of every vector, and
the real broker and C++ worker against the accept_* and reject_* vectors."""

from __future__ import annotations

import time
from typing import Callable

import msgpack
import pytest
import zmq

import troupe
from conftest import EXAMPLES_WORKER, VECTORS, Proc, needs_cpp, wait_for_workers
from troupe import protocol as p


def load(name: str) -> list[bytes]:
    text = (VECTORS / f"{name}.hex").read_text()
    assert text.endswith("\n")
    return [bytes.fromhex(line) for line in text.split("\n")[:-1]]


ERROR_MESSAGES = {
    "unknown_actor": "no worker hosts actor 'nope'",
    "unknown_method": "actor 'squares' has no method 'nope'",
    "bad_args": "expected 1 argument, got 2",
    "actor_error": "boom",
    "overloaded": "queue for 'squares' is full",
    "deadline_exceeded": "timeout of 5000 ms passed",
    "worker_lost": "worker 'examples-worker-1' died",
    "bad_request": "malformed request meta",
    "time_limit_exceeded": "squares.square_slowly ran past its time limit of 5000 ms; its process was replaced",
    "store_unavailable": "the broker's store cannot be written: store /var/lib/troupe/b.store: the disk is full",
    "call_cycle": "call cycle: counter/a -> ledger/b -> counter/a (the instance of 'counter/a' is waiting up "
                  "this chain)",
}
TELL_ID = "0f1e2d3c4b5a69780000000000000001"

ENCODED = {
    "request_ask": p.encode_request(7, "squares", "square", [7], timeout_ms=5000),
    "request_tell": p.encode_request(8, "counter/alice", "add", [5], flags=p.FLAG_TELL, timeout_ms=0),
    "request_to_worker": p.encode_request(7, "squares", "square", [7], timeout_ms=5000),
    "request_management": p.encode_request(9, "$broker", "stats", []),
    "reply_ok": p.encode_reply(7, p.Status.OK, 49),
    "ready": p.encode_ready("examples-worker-1", 4242, 16, ["squares", "vectorize", "counter"]),
    "heartbeat": p.encode_heartbeat(),
    "heartbeat_for_worker": p.encode_heartbeat(b"w00000000deadbeef"),
    "disconnect": p.encode_disconnect(),
    "ready_ack": p.encode_ready_ack(1000, 3),
    "disconnect_refused": p.encode_disconnect("READY credits must be an int in 1..100000"),
    "disconnect_worker_gone": p.encode_worker_gone(b"w00000000deadbeef", with_info=False),
    "disconnect_time_limit": p.encode_worker_gone(b"w00000000deadbeef", 7, "ran past its time limit of 5000 ms"),
    "release": p.encode_release(["counter/alice", "counter/bob"]),
    **{f"reply_error_{code}": p.encode_reply(7, code, msg) for code, msg in ERROR_MESSAGES.items()},
    # Durable messages (docs/protocol.md, "Durable messages").
    "request_durable_tell": p.encode_request(10, "counter/alice", "add", [5], flags=p.FLAG_TELL, message_id=TELL_ID),
    "request_durable_delayed": p.encode_request(11, "mailer", "send", [1234], flags=p.FLAG_TELL,
                                                message_id="order-1234", delay_ms=30000),
    "request_durable_ask": p.encode_request(12, "squares", "square", [7], timeout_ms=5000, message_id="ask-12"),
    "request_durable_to_worker": p.encode_request(7, "counter/alice", "add", [5], flags=p.FLAG_TELL,
                                                  timeout_ms=60000, message_id=TELL_ID, delivery=2),
    "reply_durable_confirmed": p.encode_reply(10, p.Status.OK, None),
    "ready_with_keys": p.encode_ready(
        "examples-worker-1", 4242, 16, ["squares", "counter"], keys=["counter/alice", "counter/bob"],
        retry=[{"actor": "counter", "method": "add", "attempts": 3, "backoff_ms": 1000, "max_backoff_ms": 60000,
                "on": ["actor_error", "worker_lost"]}]),
    "ready_for_worker": p.encode_ready("examples-worker-1", 4242, 16, ["counter"], keys=["counter/alice"],
                                       worker=b"w00000000deadbeef"),
    "release_to_worker": p.encode_release(["counter/alice"]),
    # Call chains (docs/protocol.md, "Call chains").
    "request_chained": p.encode_request(12, "ledger/b", "add", [5], timeout_ms=5000, chain=[("counter/a", 7)]),
    "request_chained_to_worker": p.encode_request(9, "squares", "square", [7], timeout_ms=4000,
                                                  chain=[("relay/a", 7), ("relay/b", 8)]),
}


# accept_*: integers in wider or signed encodings; each decodes to the same
# message as its shortest-form twin (tests/vectors/README.md).
ACCEPT = {
    **{f"accept_request_{enc}": "request_tell" for enc in ("uint8", "int8")},
    **{f"accept_request_{enc}": "request_ask"
       for enc in ("uint16", "uint32", "uint64", "int16", "int32", "int64", "mixed")},
    **{f"accept_reply_{enc}": "reply_ok"
       for enc in ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64")},
    "accept_ready_signed_ints": "ready",
}

# reject_*: malformed. A REQUEST whose meta cannot be read is answered with
# id 0; one whose address or method is bad is answered by its id (7).
META_UNREADABLE, BAD_ADDRESS, BAD_METHOD, MALFORMED = "meta", "address", "method", "malformed"
REJECT = {
    "reject_request_negative_id": META_UNREADABLE,
    "reject_request_negative_flags": META_UNREADABLE,
    "reject_request_negative_timeout": META_UNREADABLE,
    "reject_request_address_not_utf8": BAD_ADDRESS,
    "reject_request_key_overlong_utf8": BAD_ADDRESS,
    "reject_request_method_not_utf8": BAD_METHOD,
    "reject_reply_negative_id": MALFORMED,
    "reject_reply_status_not_utf8": MALFORMED,
    "reject_ready_repeated_actors": MALFORMED,
    "reject_ready_repeated_unknown_key": MALFORMED,
    "reject_ready_name_not_utf8": MALFORMED,
    "reject_ready_negative_credits": MALFORMED,
    "reject_disconnect_negative_stuck": MALFORMED,
    "reject_disconnect_repeated_why": MALFORMED,
    "reject_request_durable_without_id": META_UNREADABLE,
    "reject_request_durable_id_too_long": META_UNREADABLE,
    "reject_request_durable_repeated_id": META_UNREADABLE,
    "reject_request_chain_empty": META_UNREADABLE,
    "reject_request_chain_too_long": META_UNREADABLE,
    "reject_request_chain_bad_link": META_UNREADABLE,
    "reject_request_chain_sixth_not_nil": META_UNREADABLE,
    "reject_ready_key_not_keyed": MALFORMED,
    "reject_ready_retry_zero_attempts": MALFORMED,
    "reject_release_not_str": MALFORMED,
    "reject_release_not_utf8": MALFORMED,
}


def test_every_error_code_has_a_vector() -> None:
    assert set(ERROR_MESSAGES) == set(p.ERROR_CODES)
    on_disk = {f.stem for f in VECTORS.glob("*.hex")}
    assert on_disk == set(ENCODED) | set(ACCEPT) | set(REJECT)


@pytest.mark.parametrize("name", sorted(ACCEPT))
def test_accept_vector_decodes_like_its_shortest_form(name: str) -> None:
    frames, twin = load(name), load(ACCEPT[name])
    assert frames != twin  # another encoding...
    assert p.decode(frames) == p.decode(twin)  # ...of the same message


@pytest.mark.parametrize("name", sorted(REJECT))
def test_reject_vector_is_refused(name: str) -> None:
    frames = load(name)
    how = REJECT[name]
    if how == MALFORMED or how == META_UNREADABLE:
        with pytest.raises(p.ProtocolError):
            p.decode(frames)
        return
    # The meta is readable, so the request can be answered by its id...
    request = p.decode(frames)
    assert isinstance(request, p.Request) and request.id == 7
    # ...and the bad part is reported without echoing its bytes.
    address_problem, method_problem = p.address_problem(request.address), p.method_problem(request.method)
    assert (address_problem is not None, method_problem is not None) == (how == BAD_ADDRESS, how == BAD_METHOD)
    for problem in filter(None, (address_problem, method_problem)):
        problem.encode("utf-8")  # raises if the message carried a bad byte


@pytest.mark.parametrize("name", sorted(ENCODED))
def test_encoder_matches_vector(name: str) -> None:
    assert ENCODED[name] == load(name)


@pytest.mark.parametrize("name", sorted({*ENCODED, *ACCEPT, *REJECT}))
def test_readme_lists_vector(name: str) -> None:
    readme = (VECTORS / "README.md").read_text()
    assert f"`{name}.hex`" in readme
    for frame in load(name):
        assert frame.hex() in readme


def test_decode_requests() -> None:
    assert p.decode(load("request_ask")) == p.Request(7, "squares", "square", 0, 5000, b"\x91\x07")
    tell = p.decode(load("request_tell"))
    assert isinstance(tell, p.Request) and tell.tell and tell.address == "counter/alice"
    assert p.unpack(tell.args) == [5]
    assert p.decode(load("request_to_worker")) == p.decode(load("request_ask"))
    mgmt = p.decode(load("request_management"))
    assert (mgmt.address, mgmt.method, p.unpack(mgmt.args)) == ("$broker", "stats", [])


def test_decode_replies() -> None:
    assert p.decode(load("reply_ok")) == p.Reply(7, "ok", 49)
    for code, msg in ERROR_MESSAGES.items():
        reply = p.decode(load(f"reply_error_{code}"))
        assert reply == p.Reply(7, code, msg) and not reply.ok


def test_decode_ready_and_bodyless() -> None:
    assert p.decode(load("ready")) == p.Ready("examples-worker-1", 4242, 16, ["squares", "vectorize", "counter"])
    assert isinstance(p.decode(load("heartbeat")), p.Heartbeat)
    assert p.decode(load("heartbeat_for_worker")) == p.Heartbeat(b"w00000000deadbeef")
    assert isinstance(p.decode(load("disconnect")), p.Disconnect)


def test_decode_broker_answers_to_ready() -> None:
    assert p.decode(load("ready_ack")) == p.ReadyAck(1000, 3)
    assert p.decode(load("disconnect_refused")) == p.Disconnect("READY credits must be an int in 1..100000")
    assert p.decode(load("disconnect")) == p.Disconnect()


def test_decode_supervisor_notice_and_release() -> None:
    assert p.decode(load("disconnect_time_limit")) == p.WorkerGone(
        b"w00000000deadbeef", 7, "ran past its time limit of 5000 ms")
    assert p.decode(load("release")) == p.Release(["counter/alice", "counter/bob"])
    assert p.decode(p.encode_worker_gone(b"w1", why="killed by signal 9")) == p.WorkerGone(b"w1", 0, "killed by signal 9")
    with pytest.raises(p.ProtocolError):
        p.decode(p.encode_release([]))


def test_header_layout() -> None:
    assert p.header(p.Command.REQUEST) == bytes.fromhex("5452500101")
    assert [c.value for c in p.Command] == [1, 2, 3, 4, 5, 6]


# ------------------------------------------------------------ end to end
# Every accept_* and reject_* vector sent to the real broker (and a real C++
# worker behind it) gets the outcome tests/vectors/README.md lists.

class Peer:
    """A DEALER socket on the broker; every wait bounded."""

    def __init__(self, endpoint: str) -> None:
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def send(self, frames: list[bytes]) -> None:
        self.sock.send_multipart(frames)

    def recv(self, timeout: float = 5.0) -> p.Message | None:
        """The next REQUEST or REPLY, or None after ``timeout``. A client
        ignores the rest (the broker may answer a forged REPLY or READY with
        a DISCONNECT)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if self.sock.poll(int(left * 1000) + 1):
                message = p.decode(self.sock.recv_multipart())
                if isinstance(message, (p.Request, p.Reply)):
                    return message
        return None

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def served(broker: Callable[..., Proc], spawn: Callable[..., Proc], endpoint: str) -> str:
    broker()
    spawn([EXAMPLES_WORKER, "--broker", endpoint, "--processes", "1"], label="cpp-worker")
    wait_for_workers(endpoint, "squares", 1)
    return endpoint


@needs_cpp
def test_broker_and_worker_accept_every_integer_encoding(served: str) -> None:
    client = Peer(served)
    try:
        for name in sorted(n for n in ACCEPT if n.startswith("accept_request_")):
            client.send(load(name))
            if ACCEPT[name] == "request_ask":  # squares.square(7), id 7
                assert client.recv() == p.Reply(7, "ok", 49), name
        # The two tells (counter/alice add 5) were taken, and in order.
        with troupe.Client(served, timeout=5) as c:
            assert c.ask("counter/alice", "get") == 10
        assert client.recv(0.2) is None  # and no bad_request came for them
    finally:
        client.close()


@needs_cpp
def test_broker_accepts_signed_ids_from_a_worker(served: str) -> None:
    # A worker whose library writes integers as int32/int64: READY (pid
    # int32, credits int8), then a REPLY whose id is int64-encoded.
    worker, client = Peer(served), Peer(served)
    try:
        ready = load("accept_ready_signed_ints")
        info = msgpack.unpackb(ready[1])
        assert info["actors"] == ["squares", "vectorize", "counter"]
        worker.send(ready)
        wait_for_workers(served, "squares", 2)
        with troupe.Client(served, timeout=5) as c:
            names = {w["name"]: w for w in c.workers()}
            assert names["examples-worker-1"]["credits"] == 16
        # Keyed requests until one lands on the scripted worker.
        for i in range(1, 50):
            worker.send(p.encode_heartbeat())  # the scripted worker stays alive
            client.send(p.encode_request(i, f"counter/k{i}", "get", timeout_ms=5000))
            request = worker.recv(0.3)
            if isinstance(request, p.Request):
                break
            assert client.recv() is not None  # the C++ worker answered it
        else:
            pytest.fail("no request reached the scripted worker")
        assert 0 < request.id < 2**63  # the protocol promises ids an int64 holds
        meta = b"\x92\xd3" + request.id.to_bytes(8, "big") + msgpack.packb("ok")
        worker.send([p.header(p.Command.REPLY), meta, msgpack.packb(42)])
        assert client.recv() == p.Reply(i, "ok", 42)
    finally:
        worker.close()
        client.close()


@needs_cpp
def test_broker_refuses_every_reject_vector(served: str) -> None:
    client = Peer(served)
    try:
        with troupe.Client(served, timeout=5) as c:
            dropped_before = c.stats()["dropped"]
            workers_before = c.workers()
        for name, how in sorted(REJECT.items()):
            client.send(load(name))
            if how == MALFORMED:  # REPLY or READY: dropped, never answered
                continue
            reply = client.recv()
            expected_id = 0 if how == META_UNREADABLE else 7
            assert isinstance(reply, p.Reply) and (reply.id, reply.status) == (expected_id, "bad_request"), name
            assert "\ufffd" not in reply.value and "\udcff" not in reply.value  # no echo of the bad bytes
        assert client.recv(0.3) is None
        with troupe.Client(served, timeout=5) as c:
            malformed = sum(1 for how in REJECT.values() if how == MALFORMED)
            assert c.stats()["dropped"] - dropped_before >= malformed
            # No READY among them registered a worker or a name.
            assert c.workers() == workers_before
            assert c.ask("squares", "square", 3) == 9
    finally:
        client.close()
