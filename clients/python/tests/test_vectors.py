"""The Python encoder against tests/vectors, and decoding of every vector."""

from __future__ import annotations

import pytest

from conftest import VECTORS
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
}

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
    **{f"reply_error_{code}": p.encode_reply(7, code, msg) for code, msg in ERROR_MESSAGES.items()},
}


def test_every_error_code_has_a_vector() -> None:
    assert set(ERROR_MESSAGES) == set(p.ERROR_CODES)
    on_disk = {f.stem for f in VECTORS.glob("*.hex")}
    assert on_disk == set(ENCODED)


@pytest.mark.parametrize("name", sorted(ENCODED))
def test_encoder_matches_vector(name: str) -> None:
    assert ENCODED[name] == load(name)


@pytest.mark.parametrize("name", sorted(ENCODED))
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


def test_header_layout() -> None:
    assert p.header(p.Command.REQUEST) == bytes.fromhex("5452500101")
    assert [c.value for c in p.Command] == [1, 2, 3, 4, 5]
