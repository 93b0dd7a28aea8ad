#!/usr/bin/python3
"""Write the troupe protocol test vectors (docs/protocol.md, "Test vectors").

Each message kind becomes ``<kind>.hex``: one ZeroMQ frame per line, lowercase
hex, the 5-byte header first. Bodies are packed with msgpack-python in the
shortest form (``use_bin_type=True``). ``README.md`` is written from the same
table, so the listed decoded content cannot drift from the files.

Run from anywhere:  /usr/bin/python3 tests/vectors/generate.py
The C++ and Python suites compare their encoders with the committed files;
changing a value here changes the contract, so do it on purpose.

Two more families are written by hand, byte by byte (no troupe code and no
msgpack encoder decides their bytes), because no conforming encoder would
produce them:

- ``accept_*``: not the shortest form (integers in wider or signed
  encodings). A reader must decode each to the same message as the
  shortest-form vector it names.
- ``reject_*``: malformed (a negative integer, a str that is not UTF-8, a
  repeated map key). A reader must refuse each, with the outcome listed.
"""

from __future__ import annotations

import json
import pathlib
import struct
from typing import Any

import msgpack

HERE = pathlib.Path(__file__).resolve().parent

SIGNATURE = b"TRP"
VERSION = 1
REQUEST, REPLY, READY, HEARTBEAT, DISCONNECT, RELEASE = 1, 2, 3, 4, 5, 6

ERROR_MESSAGES: dict[str, str] = {
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


class Raw(bytes):
    """A frame written as these bytes, not as MessagePack."""


class Int:
    """An integer written in one named MessagePack encoding, not the shortest."""

    FORMATS = {"uint8": (0xcc, ">B"), "uint16": (0xcd, ">H"), "uint32": (0xce, ">I"), "uint64": (0xcf, ">Q"),
               "int8": (0xd0, ">b"), "int16": (0xd1, ">h"), "int32": (0xd2, ">i"), "int64": (0xd3, ">q"),
               "negative fixint": (None, ">b")}

    def __init__(self, value: int, encoding: str) -> None:
        self.value, self.encoding = value, encoding

    def encode(self) -> bytes:
        marker, fmt = self.FORMATS[self.encoding]
        body = struct.pack(fmt, self.value)
        if marker is None:
            assert -32 <= self.value < 0
            return body
        return bytes([marker]) + body

    def show(self) -> str:
        return f"{self.value} as {self.encoding}"


class Str:
    """A str holding these bytes, which need not be UTF-8."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def encode(self) -> bytes:
        assert len(self.data) < 32
        return bytes([0xa0 | len(self.data)]) + self.data

    def show(self) -> str:
        return '"' + self.data.decode("utf-8", "backslashreplace") + '"'


class Pairs(list):
    """A map written pair by pair, so that a key may repeat."""


def encode_by_hand(value: Any) -> bytes:
    """MessagePack of a value that may hold Int, Str and Pairs."""
    if isinstance(value, (Int, Str)):
        return value.encode()
    if isinstance(value, Pairs):
        assert len(value) < 16
        return bytes([0x80 | len(value)]) + b"".join(encode_by_hand(k) + encode_by_hand(v) for k, v in value)
    if isinstance(value, list):
        assert len(value) < 16
        return bytes([0x90 | len(value)]) + b"".join(encode_by_hand(v) for v in value)
    return msgpack.packb(value, use_bin_type=True)  # a plain scalar in its shortest form


def show_by_hand(value: Any) -> str:
    if isinstance(value, (Int, Str)):
        return value.show()
    if isinstance(value, Pairs):
        return "{" + ", ".join(f"{show_by_hand(k)}: {show_by_hand(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(show_by_hand(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def has_hand_parts(value: Any) -> bool:
    if isinstance(value, (Int, Str, Pairs)):
        return True
    return isinstance(value, list) and any(has_hand_parts(v) for v in value)


def pack(value: Any) -> bytes:
    if isinstance(value, Raw):
        return bytes(value)
    if has_hand_parts(value):
        return encode_by_hand(value)
    return msgpack.packb(value, use_bin_type=True)


def header(command: int) -> bytes:
    return SIGNATURE + bytes([VERSION, command])


# name -> (command name, description, list of (frame label, python value or None))
VECTORS: dict[str, tuple[str, str, list[tuple[str, Any]]]] = {
    "request_ask": (
        "REQUEST", "client -> broker ask",
        [("meta", [7, "squares", "square", 0, 5000]), ("args", [7])],
    ),
    "request_tell": (
        "REQUEST", "client -> broker tell (flags bit 0 set, broker default timeout)",
        [("meta", [8, "counter/alice", "add", 1, 0]), ("args", [5])],
    ),
    "request_to_worker": (
        "REQUEST", "broker -> worker; same shape as a client request "
        "(id is the broker's request id, timeout_ms the time left)",
        [("meta", [7, "squares", "square", 0, 5000]), ("args", [7])],
    ),
    "request_management": (
        "REQUEST", "client -> broker, management actor `$broker` method `stats`",
        [("meta", [9, "$broker", "stats", 0, 0]), ("args", [])],
    ),
    "reply_ok": (
        "REPLY", "successful reply to request 7",
        [("meta", [7, "ok"]), ("value", 49)],
    ),
}
for _code, _message in ERROR_MESSAGES.items():
    VECTORS[f"reply_error_{_code}"] = (
        "REPLY", f"error reply `{_code}` to request 7",
        [("meta", [7, _code]), ("value", _message)],
    )
VECTORS["ready"] = (
    "READY", "worker -> broker registration (map keys in this order)",
    [("info", {
        "name": "examples-worker-1",
        "pid": 4242,
        "credits": 16,
        "actors": ["squares", "vectorize", "counter"],
    })],
)
VECTORS["heartbeat"] = ("HEARTBEAT", "worker <-> broker, header only", [])
VECTORS["heartbeat_for_worker"] = (
    "HEARTBEAT", "from a worker's heartbeat socket; the frame is the raw routing id of its work socket",
    [("worker", Raw(b"w00000000deadbeef"))],
)
VECTORS["ready_ack"] = (
    "READY", "broker -> worker: acknowledges a READY, with the liveness settings the worker must use",
    [("info", {"heartbeat_ms": 1000, "liveness": 3})],
)
VECTORS["disconnect"] = ("DISCONNECT", "worker <-> broker, header only", [])
VECTORS["disconnect_refused"] = (
    "DISCONNECT", "broker -> worker: its READY is refused, and the frame says why (a str)",
    [("reason", "READY credits must be an int in 1..100000")],
)
VECTORS["disconnect_worker_gone"] = (
    "DISCONNECT", "pool supervisor -> broker: the worker process whose work socket has this raw routing id "
    "is gone (it died, or was killed)",
    [("worker", Raw(b"w00000000deadbeef"))],
)
VECTORS["disconnect_time_limit"] = (
    "DISCONNECT", "pool supervisor -> broker: the process was killed while running request 7 past its time limit",
    [("worker", Raw(b"w00000000deadbeef")),
     ("info", {"stuck": 7, "why": "ran past its time limit of 5000 ms"})],
)
VECTORS["release"] = (
    "RELEASE", "worker -> broker: these keyed instances were passivated (destroyed) in the worker",
    [("addresses", ["counter/alice", "counter/bob"])],
)

# Durable messages (docs/protocol.md, "Durable messages").
VECTORS["request_durable_tell"] = (
    "REQUEST", "client -> broker durable tell (flags 3: tell and durable), with its message id",
    [("meta", [10, "counter/alice", "add", 3, 0, {"id": "0f1e2d3c4b5a69780000000000000001"}]), ("args", [5])],
)
VECTORS["request_durable_delayed"] = (
    "REQUEST", "client -> broker durable tell not delivered before 30 s after the broker got it",
    [("meta", [11, "mailer", "send", 3, 0, {"id": "order-1234", "delay_ms": 30000}]), ("args", [1234])],
)
VECTORS["request_durable_ask"] = (
    "REQUEST", "client -> broker durable ask (flags 2)",
    [("meta", [12, "squares", "square", 2, 5000, {"id": "ask-12"}]), ("args", [7])],
)
VECTORS["request_durable_to_worker"] = (
    "REQUEST", "broker -> worker: a durable message's second delivery, with its message id",
    [("meta", [7, "counter/alice", "add", 3, 60000, {"id": "0f1e2d3c4b5a69780000000000000001", "delivery": 2}]),
     ("args", [5])],
)
VECTORS["reply_durable_confirmed"] = (
    "REPLY", "broker -> client: durable tell 10 is stored (fsync'd)",
    [("meta", [10, "ok"]), ("value", None)],
)
VECTORS["ready_with_keys"] = (
    "READY", "worker -> broker registration with the keyed instances it holds and a retry policy",
    [("info", {
        "name": "examples-worker-1",
        "pid": 4242,
        "credits": 16,
        "actors": ["squares", "counter"],
        "keys": ["counter/alice", "counter/bob"],
        "retry": [{"actor": "counter", "method": "add", "attempts": 3, "backoff_ms": 1000,
                   "max_backoff_ms": 60000, "on": ["actor_error", "worker_lost"]}],
    })],
)
VECTORS["ready_for_worker"] = (
    "READY", "from a worker's heartbeat socket, registering its work socket (raw routing id) after a broker "
    "restart",
    [("info", {"name": "examples-worker-1", "pid": 4242, "credits": 16, "actors": ["counter"],
               "keys": ["counter/alice"]}),
     ("worker", Raw(b"w00000000deadbeef"))],
)
VECTORS["release_to_worker"] = (
    "RELEASE", "broker -> worker: another worker holds these keys; destroy your instances of them",
    [("addresses", ["counter/alice"])],
)

# Call chains (docs/protocol.md, "Call chains").
VECTORS["request_chained"] = (
    "REQUEST", "an ask made from inside the method of `counter/a`, which runs the broker's request 7; "
    "the 6th element is nil (not durable)",
    [("meta", [12, "ledger/b", "add", 0, 5000, None, [["counter/a", 7]]]), ("args", [5])],
)
VECTORS["request_chained_to_worker"] = (
    "REQUEST", "broker -> worker: the chain forwarded as it came, two links long",
    [("meta", [9, "squares", "square", 0, 4000, None, [["relay/a", 7], ["relay/b", 8]]]), ("args", [7])],
)

COMMANDS = {"REQUEST": REQUEST, "REPLY": REPLY, "READY": READY,
            "HEARTBEAT": HEARTBEAT, "DISCONNECT": DISCONNECT, "RELEASE": RELEASE}


def ints(encoding: str, *values: int) -> list[Int]:
    return [Int(v, encoding) for v in values]


# name -> (command name, description, body, name of the shortest-form vector
# it decodes to). Every integer of the meta in one encoding, then the mix the
# issue was found with.
ACCEPT: dict[str, tuple[str, str, list[tuple[str, Any]], str]] = {}
for _enc in ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64"):
    if _enc.endswith("8"):  # 5000 does not fit in 8 bits: use the tell, whose timeout is 0
        _id, _flags, _timeout = ints(_enc, 8, 1, 0)
        ACCEPT[f"accept_request_{_enc}"] = (
            "REQUEST", f"`request_tell` with id, flags and timeout_ms as {_enc}",
            [("meta", [_id, "counter/alice", "add", _flags, _timeout]), ("args", [5])], "request_tell")
    else:
        _id, _flags, _timeout = ints(_enc, 7, 0, 5000)
        ACCEPT[f"accept_request_{_enc}"] = (
            "REQUEST", f"`request_ask` with id, flags and timeout_ms as {_enc}",
            [("meta", [_id, "squares", "square", _flags, _timeout]), ("args", [7])], "request_ask")
ACCEPT["accept_request_mixed"] = (
    "REQUEST", "`request_ask` with id as int64, flags as int8, timeout_ms as int16",
    [("meta", [Int(7, "int64"), "squares", "square", Int(0, "int8"), Int(5000, "int16")]), ("args", [7])],
    "request_ask")
for _enc in ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64"):
    ACCEPT[f"accept_reply_{_enc}"] = (
        "REPLY", f"`reply_ok` with the id as {_enc}",
        [("meta", [Int(7, _enc), "ok"]), ("value", 49)], "reply_ok")
ACCEPT["accept_ready_signed_ints"] = (
    "READY", "`ready` with pid as int32 and credits as int8",
    [("info", Pairs([("name", "examples-worker-1"), ("pid", Int(4242, "int32")), ("credits", Int(16, "int8")),
                     ("actors", ["squares", "vectorize", "counter"])]))], "ready")

# Outcomes of malformed input (docs/protocol.md, "Limits and bad input").
META_UNREADABLE = "the broker answers `bad_request` with id 0; a worker drops it"
BAD_REQUEST_7 = "the broker (and a worker) answers `bad_request` with id 7"
DROPPED = "dropped and counted in `stats.dropped`"
READY_REFUSED = "the broker answers DISCONNECT with the reason and counts it in `stats.dropped`"
DROPPED_NO_REMOVAL = "dropped and counted in `stats.dropped`; the worker it names stays registered"

# name -> (command name, description, body, outcome)
REJECT: dict[str, tuple[str, str, list[tuple[str, Any]], str]] = {
    "reject_request_negative_id": (
        "REQUEST", "id -1 as int64",
        [("meta", [Int(-1, "int64"), "squares", "square", 0, 5000]), ("args", [7])], META_UNREADABLE),
    "reject_request_negative_flags": (
        "REQUEST", "flags -1 as negative fixint",
        [("meta", [7, "squares", "square", Int(-1, "negative fixint"), 5000]), ("args", [7])], META_UNREADABLE),
    "reject_request_negative_timeout": (
        "REQUEST", "timeout_ms -5000 as int16",
        [("meta", [7, "squares", "square", 0, Int(-5000, "int16")]), ("args", [7])], META_UNREADABLE),
    "reject_request_address_not_utf8": (
        "REQUEST", "the key of the address is the bytes ff fe, not UTF-8",
        [("meta", [7, Str(b"squares/\xff\xfe"), "square", 0, 5000]), ("args", [7])], BAD_REQUEST_7),
    "reject_request_key_overlong_utf8": (
        "REQUEST", "the key holds c0 af, an overlong encoding of `/`, not UTF-8",
        [("meta", [7, Str(b"counter/a\xc0\xaf"), "add", 0, 5000]), ("args", [5])], BAD_REQUEST_7),
    "reject_request_method_not_utf8": (
        "REQUEST", "the method ends with ed a0 80, an encoded surrogate (U+D800), not UTF-8",
        [("meta", [7, "squares", Str(b"square\xed\xa0\x80"), 0, 5000]), ("args", [7])], BAD_REQUEST_7),
    "reject_reply_negative_id": (
        "REPLY", "id -7 as int8",
        [("meta", [Int(-7, "int8"), "ok"]), ("value", 49)], DROPPED),
    "reject_reply_status_not_utf8": (
        "REPLY", "status holds the byte ff, not UTF-8",
        [("meta", [7, Str(b"ok\xff")]), ("value", 49)], DROPPED),
    "reject_ready_repeated_actors": (
        "READY", "the key `actors` twice (each array within 1..10000 names)",
        [("info", Pairs([("name", "w"), ("pid", 1), ("credits", 1), ("actors", ["squares"]),
                         ("actors", ["counter"])]))], READY_REFUSED),
    "reject_ready_repeated_unknown_key": (
        "READY", "an unknown key, `future`, twice",
        [("info", Pairs([("credits", 1), ("actors", ["squares"]), ("future", 1), ("future", 2)]))], READY_REFUSED),
    "reject_ready_name_not_utf8": (
        "READY", "name holds the byte 80, a lone continuation byte, not UTF-8",
        [("info", Pairs([("name", Str(b"w\x80")), ("pid", 1), ("credits", 1), ("actors", ["squares"])]))],
        READY_REFUSED),
    "reject_ready_negative_credits": (
        "READY", "credits -1 as int32",
        [("info", Pairs([("name", "w"), ("pid", 1), ("credits", Int(-1, "int32")), ("actors", ["squares"])]))],
        READY_REFUSED),
    "reject_disconnect_negative_stuck": (
        "DISCONNECT", "a supervisor's DISCONNECT whose `stuck` is -7 as int8",
        [("worker", Raw(b"w00000000deadbeef")), ("info", Pairs([("stuck", Int(-7, "int8"))]))],
        DROPPED_NO_REMOVAL),
    "reject_disconnect_repeated_why": (
        "DISCONNECT", "a supervisor's DISCONNECT whose info has the key `why` twice",
        [("worker", Raw(b"w00000000deadbeef")), ("info", Pairs([("why", "a"), ("why", "b")]))],
        DROPPED_NO_REMOVAL),
    "reject_request_durable_without_id": (
        "REQUEST", "a durable request whose 6th element has no `id`",
        [("meta", [7, "counter/alice", "add", 3, 0, {"delay_ms": 5}]), ("args", [5])], META_UNREADABLE),
    "reject_request_durable_id_too_long": (
        "REQUEST", "a message id of 129 bytes",
        [("meta", [7, "counter/alice", "add", 3, 0, {"id": "x" * 129}]), ("args", [5])], META_UNREADABLE),
    "reject_request_durable_repeated_id": (
        "REQUEST", "a durable request whose 6th element has the key `id` twice",
        [("meta", [7, "counter/alice", "add", 3, 0, Pairs([("id", "a"), ("id", "b")])]), ("args", [5])],
        META_UNREADABLE),
    "reject_request_chain_empty": (
        "REQUEST", "a 7th element (call chain) with no link",
        [("meta", [7, "ledger/b", "add", 0, 5000, None, []]), ("args", [5])], META_UNREADABLE),
    "reject_request_chain_too_long": (
        "REQUEST", "a call chain of 65 links",
        [("meta", [7, "ledger/b", "add", 0, 5000, None, [["counter/a", 1]] * 65]), ("args", [5])],
        META_UNREADABLE),
    "reject_request_chain_bad_link": (
        "REQUEST", "a chain link naming `$broker`",
        [("meta", [7, "ledger/b", "add", 0, 5000, None, [["$broker", 1]]]), ("args", [5])], META_UNREADABLE),
    "reject_request_chain_sixth_not_nil": (
        "REQUEST", "a chained request whose 6th element is neither nil nor a durable map",
        [("meta", [7, "ledger/b", "add", 0, 5000, 0, [["counter/a", 1]]]), ("args", [5])], META_UNREADABLE),
    "reject_ready_key_not_keyed": (
        "READY", "`keys` holds an address without a key",
        [("info", Pairs([("name", "w"), ("pid", 1), ("credits", 1), ("actors", ["counter"]),
                         ("keys", ["counter"])]))], READY_REFUSED),
    "reject_ready_retry_zero_attempts": (
        "READY", "a retry policy of 0 attempts",
        [("info", Pairs([("name", "w"), ("pid", 1), ("credits", 1), ("actors", ["counter"]),
                         ("retry", [{"actor": "counter", "method": "add", "attempts": 0}])]))], READY_REFUSED),
    "reject_release_not_str": (
        "RELEASE", "an address that is an int",
        [("addresses", ["counter/alice", Int(7, "uint8")])], DROPPED),
    "reject_release_not_utf8": (
        "RELEASE", "an address whose key holds the byte ff, not UTF-8",
        [("addresses", [Str(b"counter/\xff")])], DROPPED),
}
ALL: dict[str, tuple[str, str, list[tuple[str, Any]]]] = {
    **VECTORS,
    **{name: (c, d, b) for name, (c, d, b, _) in ACCEPT.items()},
    **{name: (c, d, b) for name, (c, d, b, _) in REJECT.items()},
}


def frames_of(name: str) -> list[bytes]:
    command, _, body = ALL[name]
    return [header(COMMANDS[command])] + [pack(v) for _, v in body]


def check_by_hand() -> None:
    """Every accept_* vector decodes, with msgpack-python, to its shortest-form
    twin; every reject_* one is a well-formed MessagePack that the protocol
    refuses, so the vectors test troupe's rules and not a parser's accident."""
    def decoded(frames: list[bytes], name: str = "") -> list[Any]:
        body = ALL[name][2] if name else [(None, None)] * (len(frames) - 1)
        return [msgpack.unpackb(f, raw=True, strict_map_key=False)
                for f, (_, v) in zip(frames[1:], body) if not isinstance(v, Raw)]  # a routing id is raw bytes

    for name, (_, _, _, twin) in ACCEPT.items():
        assert frames_of(name) != frames_of(twin), name
        assert decoded(frames_of(name)) == decoded(frames_of(twin)), name
    for name in REJECT:
        decoded(frames_of(name), name)  # raises if it is not even MessagePack


def readme() -> str:
    lines = [
        "# Protocol test vectors",
        "",
        "Encoded troupe protocol v1 messages, as described in",
        "`docs/protocol.md` (\"Test vectors\"). Each `.hex` file holds one",
        "message: one ZeroMQ frame per line in lowercase hex, the 5-byte header",
        "(`54525001` + command byte) first. Bodies are MessagePack in the",
        "shortest form. The C++ and the Python test suites compare their",
        "encoders with these bytes and decode them back.",
        "",
        "Two more families are written byte by byte, because no conforming",
        "encoder produces them (see \"Encodings\" in docs/protocol.md):",
        "",
        "- `accept_*.hex`: integers in wider or signed encodings. A reader must",
        "  decode each to the same message as the shortest-form vector named",
        "  with it.",
        "- `reject_*.hex`: malformed (a negative integer, a str that is not",
        "  UTF-8, a repeated map key). A reader must refuse each; the outcome",
        "  at the broker is listed with it.",
        "",
        "Normative: the bytes, the status codes and the outcomes. Not",
        "normative: the text of error messages in `value` frames and below,",
        "which are examples; real implementations word them differently, and",
        "a client branches on `status` only (docs/protocol.md, \"Test vectors\").",
        "",
        "Generated by `generate.py` (run `/usr/bin/python3 tests/vectors/generate.py`);",
        "this README is generated too. Values are shown as JSON; `N as int16`",
        "is an integer in that encoding, `\\xff` a byte of a str that is not UTF-8.",
        "",
    ]
    for name, (command, description, body) in ALL.items():
        frames = frames_of(name)
        lines.append(f"## `{name}.hex`")
        lines.append("")
        lines.append(f"{command} (`0x{COMMANDS[command]:02x}`): {description}.")
        if name in ACCEPT:
            lines.append(f"Decodes to the same message as `{ACCEPT[name][3]}.hex`.")
        if name in REJECT:
            lines.append(f"Malformed: {REJECT[name][3]}.")
        lines.append("")
        lines.append("| frame | decoded | hex |")
        lines.append("| --- | --- | --- |")
        lines.append(f"| header | `TRP` v1 {command} | `{frames[0].hex()}` |")
        for (label, value), frame in zip(body, frames[1:]):
            if isinstance(value, Raw):
                shown = f"raw {bytes(value)!r}"
            elif has_hand_parts(value):
                shown = show_by_hand(value)
            else:
                shown = json.dumps(value, ensure_ascii=False)
            lines.append(f"| {label} | `{shown}` | `{frame.hex()}` |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    check_by_hand()
    for name in ALL:
        text = "".join(frame.hex() + "\n" for frame in frames_of(name))
        (HERE / f"{name}.hex").write_text(text)
    (HERE / "README.md").write_text(readme())
    print(f"wrote {len(ALL)} vectors and README.md to {HERE}")


if __name__ == "__main__":
    main()
