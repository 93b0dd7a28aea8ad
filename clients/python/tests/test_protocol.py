"""Limits and malformed input in troupe.protocol."""

from __future__ import annotations

import msgpack
import pytest

import troupe
from troupe import protocol as p


def nested(depth: int) -> bytes:
    return b"\x91" * depth + b"\x00"


def test_depth_limit() -> None:
    assert p.unpack(nested(32)) is not None
    with pytest.raises(p.ProtocolError, match="nesting"):
        p.unpack(nested(33))
    with pytest.raises(p.ProtocolError):
        p.unpack(nested(5000))  # beyond msgpack's own stack: still a clean error
    # maps count as levels too
    deep_map = b"\x81\x00" * 33 + b"\x00"
    with pytest.raises(p.ProtocolError):
        p.unpack(deep_map)


@pytest.mark.parametrize("data", [
    b"\xdd\xff\xff\xff\xff",          # array32 claiming 4 G elements, 5 bytes received
    b"\xdf\xff\xff\xff\xff",          # map32 likewise
    b"\xdb\x7f\xff\xff\xff",          # str32 of 2 GiB
    b"\xc6\x7f\xff\xff\xff",          # bin32
    b"\xc9\x7f\xff\xff\xff\x01",      # ext32
    b"\x92\x01",                      # truncated
    b"\x01\x02",                      # trailing data
    b"\xc1",                          # never-used byte
    b"\xa2\xff\xfe",                  # invalid UTF-8 str
    b"\x81\x91\x01\x02",              # array as a map key: unhashable
    b"",                              # nothing
])
def test_malformed_values(data: bytes) -> None:
    with pytest.raises(p.ProtocolError):
        p.unpack(data)


def test_frame_size_limit() -> None:
    big = msgpack.packb(b"x" * 100)
    assert p.unpack(big, max_bytes=len(big)) == b"x" * 100
    with pytest.raises(p.ProtocolError, match="over the limit"):
        p.unpack(big, max_bytes=len(big) - 1)


def test_any_integer_encoding_accepted() -> None:
    # id 7 as uint64 (0xcf), not shortest: readers must accept it.
    meta = b"\x95\xcf" + (7).to_bytes(8, "big") + msgpack.packb("a") + msgpack.packb("m") + b"\x00\xce\x00\x00\x00\x05"
    assert p.decode_request_meta(meta) == (7, "a", "m", 0, 5)


@pytest.mark.parametrize("frames, why", [
    ([], "empty"),
    ([b"TRQ\x01\x01", b"\x90", b"\x90"], "signature"),
    ([b"TRP\x02\x04"], "version"),
    ([b"TRP\x01\x09"], "command"),
    ([b"TRP\x01"], "short header"),
    ([b"TRP\x01\x04", b"w1", b"w2"], "heartbeat with two body frames"),
    ([b"TRP\x01\x04", b""], "heartbeat with an empty worker id"),
    ([b"TRP\x01\x01", b"\x90"], "request missing args"),
    ([b"TRP\x01\x01", msgpack.packb([1, "a", "m", 0]), b"\x90"], "meta of 4"),
    ([b"TRP\x01\x01", msgpack.packb([-1, "a", "m", 0, 0]), b"\x90"], "negative id"),
    ([b"TRP\x01\x01", msgpack.packb([True, "a", "m", 0, 0]), b"\x90"], "bool id"),
    ([b"TRP\x01\x01", msgpack.packb([1, b"a", "m", 0, 0]), b"\x90"], "bin address"),
    ([b"TRP\x01\x02", msgpack.packb([1]), b"\xc0"], "reply meta of 1"),
    ([b"TRP\x01\x03", msgpack.packb({"name": "w", "pid": 1, "credits": 0, "actors": ["a"]})], "zero credits"),
    ([b"TRP\x01\x03", msgpack.packb(["not", "a", "map"])], "ready not a map"),
])
def test_malformed_messages(frames: list[bytes], why: str) -> None:
    with pytest.raises(p.ProtocolError):
        p.decode(frames)


def test_ready_ignores_unknown_keys() -> None:
    frames = [p.header(p.Command.READY),
              msgpack.packb({"actors": ["a"], "credits": 2, "zone": "x", "pid": 9, "name": "w"})]
    ready = p.decode(frames)
    assert ready == p.Ready("w", 9, 2, ["a"], {"zone": "x"})


def ready_frame(*pairs: tuple[bytes, bytes]) -> list[bytes]:
    """A READY whose info map is written pair by pair (already packed), so a
    key can repeat."""
    assert len(pairs) < 16
    return [p.header(p.Command.READY), bytes([0x80 | len(pairs)]) + b"".join(k + v for k, v in pairs)]


def kv(key: str, value: object) -> tuple[bytes, bytes]:
    return msgpack.packb(key), msgpack.packb(value)


READY_FIELDS = {"name": "w", "pid": 1, "credits": 1, "actors": ["a"]}


@pytest.mark.parametrize("key", [*READY_FIELDS, "future"])
def test_ready_rejects_a_repeated_key(key: str) -> None:
    fields = [kv(k, v) for k, v in READY_FIELDS.items()] + [kv("future", 1)]
    assert p.decode(ready_frame(*fields)).actors == ["a"]
    with pytest.raises(p.ProtocolError, match="repeats the key"):
        p.decode(ready_frame(*fields, kv(key, READY_FIELDS.get(key, 2))))


def test_ready_repeated_actors_cannot_register_past_the_bound() -> None:
    # Fuzzing finding (issue 16): {"credits": 1, "actors": [10,000 names],
    # "actors": ["b"]} registered 10,001 names, each array within its bound.
    names = [f"a{i}" for i in range(p.MAX_ACTORS)]
    at_bound = ready_frame(kv("name", "w"), kv("pid", 1), kv("credits", 1), kv("actors", names))
    assert len(p.decode(at_bound).actors) == p.MAX_ACTORS
    with pytest.raises(p.ProtocolError):
        p.decode(ready_frame(kv("name", "w"), kv("pid", 1), kv("credits", 1), kv("actors", names + ["b"])))
    with pytest.raises(p.ProtocolError, match="repeats the key 'actors'"):
        p.decode(ready_frame(kv("name", "w"), kv("pid", 1), kv("credits", 1), kv("actors", names),
                             kv("actors", ["b"])))


@pytest.mark.parametrize("info, why", [
    (b"\x84\x01\x02" + b"".join(k + v for k, v in (kv("pid", 1), kv("credits", 1), kv("actors", ["a"]))),
     "an int key"),
    (msgpack.packb({"name": "w", "pid": 1, "credits": 1, "actors": ["a"]}) + b"\xc0", "trailing bytes"),
    (b"\x84\xa4name\xa2w\x80" + b"".join(k + v for k, v in (kv("pid", 1), kv("credits", 1), kv("actors", ["a"]))),
     "name not UTF-8"),
])
def test_ready_rejects_malformed_info(info: bytes, why: str) -> None:
    with pytest.raises(p.ProtocolError):
        p.decode([p.header(p.Command.READY), info])


@pytest.mark.parametrize("encoded", [
    b"\x07", b"\xcc\x07", b"\xcd\x00\x07", b"\xce\x00\x00\x00\x07", b"\xcf" + (7).to_bytes(8, "big"),
    b"\xd0\x07", b"\xd1\x00\x07", b"\xd2\x00\x00\x00\x07", b"\xd3" + (7).to_bytes(8, "big"),
])
def test_every_integer_encoding_in_every_field(encoded: bytes) -> None:
    a, m = msgpack.packb("a"), msgpack.packb("m")
    assert p.decode_request_meta(b"\x95" + encoded + a + m + b"\x00\x00") == (7, "a", "m", 0, 0)
    assert p.decode_request_meta(b"\x95\x01" + a + m + encoded + b"\x00") == (1, "a", "m", 7, 0)
    assert p.decode_request_meta(b"\x95\x01" + a + m + b"\x00" + encoded) == (1, "a", "m", 0, 7)
    reply = p.decode([p.header(p.Command.REPLY), b"\x92" + encoded + msgpack.packb("ok"), b"\xc0"])
    assert reply == p.Reply(7, "ok", None)


@pytest.mark.parametrize("encoded", [b"\xff", b"\xe0", b"\xd0\xff", b"\xd1\x80\x00", b"\xd2\xff\xff\xff\xff",
                                     b"\xd3" + (-1).to_bytes(8, "big", signed=True)])
def test_negative_integers_are_malformed(encoded: bytes) -> None:
    a, m = msgpack.packb("a"), msgpack.packb("m")
    for meta in (b"\x95" + encoded + a + m + b"\x00\x00", b"\x95\x01" + a + m + encoded + b"\x00",
                 b"\x95\x01" + a + m + b"\x00" + encoded):
        with pytest.raises(p.ProtocolError):
            p.decode_request_meta(meta)
    with pytest.raises(p.ProtocolError):
        p.decode([p.header(p.Command.REPLY), b"\x92" + encoded + msgpack.packb("ok"), b"\xc0"])


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"a\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"])
def test_address_and_method_not_utf8_are_reported_by_id(raw: bytes) -> None:
    def meta(address: bytes, method: bytes) -> bytes:
        return (b"\x95\x07" + bytes([0xa0 | len(address)]) + address + bytes([0xa0 | len(method)]) + method
                + b"\x00\x00")

    id_, address, method, _, _ = p.decode_request_meta(meta(b"counter/" + raw, b"add"))
    assert id_ == 7
    assert p.address_problem(address) == "address is not valid UTF-8"
    assert p.method_problem(method) is None
    id_, address, method, _, _ = p.decode_request_meta(meta(b"counter/k", b"add" + raw))
    assert id_ == 7 and p.address_problem(address) is None
    assert p.method_problem(method) == "method name is not valid UTF-8"
    # A caller's own str that UTF-8 cannot hold is reported, not raised.
    assert p.address_problem("counter/\udcff") == "address is not valid UTF-8"


@pytest.mark.parametrize("address, ok", [
    ("squares", True), ("counter/alice", True), ("counter/a/b", True), ("$broker", True),
    ("a" * 64, True), ("a" * 65, False), ("", False), ("sq uares", False), ("counter/", False),
    ("counter/" + "k" * 255, True), ("counter/" + "k" * 256, False), ("/key", False), ("é", False),
    ("counter/ключ", True),
])
def test_address_validation(address: str, ok: bool) -> None:
    assert (p.address_problem(address) is None) == ok


def test_error_classes() -> None:
    for code in p.ERROR_CODES:
        exc = troupe.error_for(code, "msg")
        assert type(exc).__name__.lower() == code.replace("_", "") or code == "actor_error"
        assert isinstance(exc, troupe.TroupeError)
        assert exc.code == code and exc.message == "msg" and str(exc) == f"{code}: msg"
    odd = troupe.error_for("from_the_future", "x")
    assert type(odd) is troupe.TroupeError and odd.code == "from_the_future"
    assert isinstance(troupe.error_for("actor_error", "x"), troupe.ActorError)


def test_worker_error_messages_are_always_utf8() -> None:
    from troupe.worker import _message

    assert _message(ValueError("bad \udcff byte")) == "bad ? byte"
    assert _message(ValueError("café")) == "café"
    assert _message(ValueError()) == "ValueError"
    p.encode_reply(1, p.Status.ACTOR_ERROR, _message(ValueError("\ud800")))  # packs
