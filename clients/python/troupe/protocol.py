"""troupe wire protocol, version 1 (docs/protocol.md).

Everything here is pure data handling: building and parsing frames, the error
codes, the limits. Sockets live in :mod:`troupe.client`, :mod:`troupe.aio` and
:mod:`troupe.worker`.
"""

from __future__ import annotations

import enum
import itertools
import re
from dataclasses import dataclass, field
from typing import Any, Sequence, Union

import msgpack

SIGNATURE = b"TRP"
VERSION = 1
HEADER_LEN = 5

FLAG_TELL = 0x01
"""REQUEST flags bit 0: one-way message, the client never gets a REPLY."""
FLAG_DURABLE = 0x02
"""REQUEST flags bit 1: durable (docs/durability.md); ``meta`` has a 6th element."""
MAX_MESSAGE_ID_BYTES = 128
MAX_CHAIN_LENGTH = 64
"""Links in a REQUEST's call chain at most (docs/protocol.md, "Call chains")."""
MAX_DELAY_MS = 31_536_000_000
MAX_READY_KEYS = 100_000

MAX_MESSAGE_BYTES = 1 << 20
"""Largest frame (1 MiB), the broker's default ``--max-message-bytes``."""
MAX_DEPTH = 32
"""Deepest MessagePack nesting of containers accepted in a value."""
MAX_NAME_BYTES = 64
MAX_KEY_BYTES = 255
MAX_METHOD_BYTES = 128
MAX_WORKER_NAME_BYTES = 128
MAX_CREDITS = 100_000
MAX_ACTORS = 10_000
MAX_ID = (1 << 64) - 1
DEFAULT_TIMEOUT_MS = 60_000
DEFAULT_QUEUE_LIMIT = 10_000
HEARTBEAT_INTERVAL_MS = 1000
HEARTBEAT_LIVENESS = 3
BROKER_ACTOR = "$broker"

_NAME_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


MAX_HEARTBEAT_MS = 3_600_000  # in a READY acknowledgement
MAX_LIVENESS = 100


class Command(enum.IntEnum):
    """The command byte, header byte 4."""

    REQUEST = 0x01
    REPLY = 0x02
    READY = 0x03
    HEARTBEAT = 0x04
    DISCONNECT = 0x05
    RELEASE = 0x06


class Status(enum.StrEnum):
    """The ``status`` of a REPLY: ``ok`` or one of the stable error codes."""

    OK = "ok"
    UNKNOWN_ACTOR = "unknown_actor"
    UNKNOWN_METHOD = "unknown_method"
    BAD_ARGS = "bad_args"
    ACTOR_ERROR = "actor_error"
    OVERLOADED = "overloaded"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    WORKER_LOST = "worker_lost"
    BAD_REQUEST = "bad_request"
    TIME_LIMIT_EXCEEDED = "time_limit_exceeded"
    STORE_UNAVAILABLE = "store_unavailable"
    CALL_CYCLE = "call_cycle"


ERROR_CODES: tuple[str, ...] = tuple(s.value for s in Status if s is not Status.OK)

# Frames after the header, per command.
_BODY_FRAMES = {
    Command.REQUEST: 2,
    Command.REPLY: 2,
    Command.READY: 1,
    Command.HEARTBEAT: 0,
    Command.DISCONNECT: 0,
    Command.RELEASE: 1,
}


class ProtocolError(ValueError):
    """A message or value that is malformed or over a limit."""


# ---------------------------------------------------------------- values


def pack(value: Any) -> bytes:
    """Pack one value in MessagePack's shortest form (str as str, bytes as bin).

    Raises :class:`TypeError` for values MessagePack cannot represent.
    """
    return msgpack.packb(value, use_bin_type=True)


def _check_depth(value: Any, max_depth: int) -> None:
    # Iterative so a hostile value cannot exhaust Python's recursion limit;
    # only containers are stacked, so a long flat array costs one type test
    # per element.
    if not isinstance(value, (list, dict)):
        return
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise ProtocolError(f"nesting deeper than {max_depth}")
        children = item if isinstance(item, list) else itertools.chain.from_iterable(item.items())
        stack.extend((child, depth + 1) for child in children if isinstance(child, (list, dict)))


def unpack(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES,
           max_depth: int = MAX_DEPTH) -> Any:
    """Unpack exactly one MessagePack value from ``data`` within the limits.

    Container and string sizes are bounded by the frame length (a hostile
    length prefix cannot make us allocate more than we received), nesting by
    ``max_depth`` (a container counts one level, scalars none). Map keys may be
    any hashable value. Raises :class:`ProtocolError` on anything malformed.
    """
    n = len(data)
    if n > max_bytes:
        raise ProtocolError(f"frame of {n} bytes is over the limit of {max_bytes}")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=False,
            max_str_len=n,
            max_bin_len=n,
            max_array_len=n,
            max_map_len=n // 2,
            max_ext_len=n,
        )
    except (ValueError, TypeError, msgpack.UnpackException, UnicodeDecodeError) as exc:
        # ExtraData, FormatError, StackError and UnpackValueError are ValueErrors;
        # TypeError covers unhashable map keys (e.g. an array used as a key).
        raise ProtocolError(f"malformed MessagePack: {exc.__class__.__name__}: {exc}") from None
    _check_depth(value, max_depth)
    return value


def _unique_keys(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """A map of a protocol frame: a repeated key is malformed (docs/protocol.md, Encodings)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("a map repeats a key")
    return result


def _unpacker(data: bytes, max_bytes: int, unicode_errors: str = "strict") -> msgpack.Unpacker:
    n = len(data)
    if n > max_bytes:
        raise ProtocolError(f"frame of {n} bytes is over the limit of {max_bytes}")
    unpacker = msgpack.Unpacker(
        raw=False, use_list=True, strict_map_key=False, unicode_errors=unicode_errors,
        object_pairs_hook=_unique_keys,
        max_buffer_size=max(n, 1), max_str_len=n, max_bin_len=n, max_array_len=n, max_map_len=n // 2,
        max_ext_len=n)
    unpacker.feed(data)
    return unpacker


# What msgpack raises for malformed input: ExtraData, FormatError, StackError
# and UnpackValueError are ValueErrors, OutOfData an UnpackException;
# TypeError covers unhashable map keys (e.g. an array used as a key).
_MALFORMED = (ValueError, TypeError, msgpack.UnpackException, UnicodeDecodeError)


def _unpack_meta(data: bytes, max_bytes: int, unicode_errors: str = "strict") -> Any:
    """One value of a meta frame: flat, so no depth check is needed beyond
    msgpack's own; ``unicode_errors`` as in :class:`msgpack.Unpacker`."""
    unpacker = _unpacker(data, max_bytes, unicode_errors)
    try:
        value = unpacker.unpack()
    except _MALFORMED as exc:
        raise ProtocolError(f"malformed MessagePack: {exc.__class__.__name__}: {exc}") from None
    if unpacker.tell() != len(data):
        raise ProtocolError("trailing bytes after the value")
    return value


def _unpack_protocol_map(data: bytes, what: str, max_bytes: int) -> dict[str, Any]:
    """A map the protocol defines (READY ``info``): str keys, none repeated.

    A repeated key is malformed rather than "last one wins", so that no map can
    smuggle a second copy of a bounded field (e.g. READY ``actors`` twice).
    """
    unpacker = _unpacker(data, max_bytes)
    result: dict[str, Any] = {}
    try:
        count = unpacker.read_map_header()
        for _ in range(count):
            key = unpacker.unpack()
            if not isinstance(key, str):
                raise ProtocolError(f"{what} keys must be str")
            if key in result:
                raise ProtocolError(f"{what} repeats the key {key!r}")
            value = unpacker.unpack()
            _check_depth(value, MAX_DEPTH - 1)  # the map itself is level 1
            result[key] = value
    except ProtocolError:
        raise
    except _MALFORMED as exc:
        raise ProtocolError(f"{what} is not a readable map: {exc.__class__.__name__}: {exc}") from None
    if unpacker.tell() != len(data):
        raise ProtocolError(f"trailing bytes after {what}")
    return result


# ---------------------------------------------------------------- validation


def _is_uint(value: Any, maximum: int = MAX_ID) -> bool:
    # bool is an int subclass in Python; MessagePack true/false are not ints.
    # msgpack gives an int for every integer encoding (uint 8..64, int 8..64),
    # so any encoding of a non-negative value passes, as the spec asks.
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= maximum


def _is_utf8(text: str) -> bool:
    """Whether ``text`` came from well-formed UTF-8 (and can go back to it).

    Strings decoded with ``surrogateescape`` carry each invalid byte as a lone
    surrogate, which UTF-8 cannot encode; so can a str a caller built.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def split_address(address: str) -> tuple[str, str | None]:
    """Split ``name`` or ``name/key`` into ``(name, key or None)``."""
    name, sep, key = address.partition("/")
    return name, (key if sep else None)


def address_problem(address: str) -> str | None:
    """Why ``address`` is malformed, or ``None`` if it is well formed.

    ``$broker`` (and any ``$`` name) is accepted: it is reserved, not invalid.
    The message never repeats bytes that are not UTF-8.
    """
    if not _is_utf8(address):
        return "address is not valid UTF-8"
    name, key = split_address(address)
    bare = name[1:] if name.startswith("$") else name
    if len(name.encode()) > MAX_NAME_BYTES or not _NAME_RE.fullmatch(bare):
        return f"malformed actor name {name!r}"
    if key is not None and not 1 <= len(key.encode()) <= MAX_KEY_BYTES:
        return f"key must be 1..{MAX_KEY_BYTES} bytes"
    return None


def method_problem(method: str) -> str | None:
    """Why ``method`` is malformed, or ``None``."""
    if not _is_utf8(method):
        return "method name is not valid UTF-8"
    if not 1 <= len(method.encode()) <= MAX_METHOD_BYTES:
        return f"method name must be 1..{MAX_METHOD_BYTES} bytes"
    return None


# ---------------------------------------------------------------- messages


@dataclass(frozen=True)
class Request:
    """A REQUEST. ``args`` is the raw MessagePack frame, left undecoded."""

    id: int
    address: str
    method: str
    flags: int
    timeout_ms: int
    args: bytes

    @property
    def tell(self) -> bool:
        return bool(self.flags & FLAG_TELL)


@dataclass(frozen=True)
class Reply:
    """A REPLY. ``value`` is decoded; for errors it is the message string."""

    id: int
    status: str
    value: Any

    @property
    def ok(self) -> bool:
        return self.status == Status.OK


@dataclass(frozen=True)
class Ready:
    """A READY. ``extra`` keeps keys this version does not know."""

    name: str
    pid: int
    credits: int
    actors: list[str]
    extra: dict[Any, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReadyAck:
    """A READY from the broker: it registered the worker, which must use
    these liveness settings from now on."""

    heartbeat_ms: int
    liveness: int


@dataclass(frozen=True)
class Heartbeat:
    """A HEARTBEAT. ``worker`` is set when it came from a worker's separate
    heartbeat socket: the routing id of that worker's work socket."""

    worker: bytes | None = None


@dataclass(frozen=True)
class Disconnect:
    """A DISCONNECT. From the broker, ``reason`` is set when it refused the
    worker's READY (do not send it again); without one, register again."""

    reason: str | None = None


@dataclass(frozen=True)
class WorkerGone:
    """A DISCONNECT from a pool supervisor: the worker process whose work
    socket has routing id ``worker`` is gone; ``stuck`` is the broker request
    id it was killed in for its time limit (0: none)."""

    worker: bytes
    stuck: int = 0
    why: str = ""


@dataclass(frozen=True)
class Release:
    """A RELEASE: the worker passivated the instances of these keyed addresses."""

    addresses: list[str]


MAX_RELEASE_ADDRESSES = 10_000
MAX_WHY_BYTES = 256

Message = Union[Request, Reply, Ready, ReadyAck, Heartbeat, Disconnect, WorkerGone, Release]


def header(command: Command) -> bytes:
    """The 5-byte first frame for ``command``."""
    return SIGNATURE + bytes((VERSION, int(command)))


def encode_request(id: int, address: str, method: str, args: Sequence[Any] | bytes = (),
                   *, flags: int = 0, timeout_ms: int = 0, message_id: str | None = None,
                   delay_ms: int = 0, delivery: int = 0,
                   chain: Sequence[Sequence[Any]] = ()) -> list[bytes]:
    """Frames of a REQUEST. ``args`` is a sequence of values or an already
    packed MessagePack array (bytes), which is sent unchanged. With
    ``message_id`` it is durable: the durable flag is set and ``meta`` gets
    its 6th element (docs/protocol.md, "Durable messages"). With ``chain``
    (``(address, broker request id)`` links, outermost first) ``meta`` gets
    its 7th element, the 6th being nil when not durable ("Call chains")."""
    args_frame = args if isinstance(args, (bytes, bytearray)) else pack(list(args))
    meta_list: list[Any] = [id, address, method, flags, timeout_ms]
    if message_id is not None:
        meta_list[3] = flags | FLAG_DURABLE
        durable: dict[str, Any] = {"id": message_id}
        if delay_ms:
            durable["delay_ms"] = delay_ms
        if delivery:
            durable["delivery"] = delivery
        meta_list.append(durable)
    if chain:
        if message_id is None:
            meta_list.append(None)
        meta_list.append([[a, i] for a, i in chain])
    return [header(Command.REQUEST), pack(meta_list), bytes(args_frame)]


def encode_reply(id: int, status: str, value: Any) -> list[bytes]:
    """Frames of a REPLY. Raises :class:`TypeError` if ``value`` cannot be packed."""
    return [header(Command.REPLY), pack([id, str(status)]), pack(value)]


def encode_ready(name: str, pid: int, credits: int, actors: Sequence[str], *,
                 keys: Sequence[str] = (), retry: Sequence[dict[str, Any]] = (),
                 worker: bytes | None = None) -> list[bytes]:
    """Frames of a READY (keys in the order of the spec's table); ``keys``
    (the keyed instances held) and ``retry`` (retry policies) only when not
    empty; with ``worker``, the form a heartbeat socket sends on behalf of
    the work socket with that routing id."""
    info: dict[str, Any] = {"name": name, "pid": pid, "credits": credits, "actors": list(actors)}
    if keys:
        info["keys"] = list(keys)
    if retry:
        info["retry"] = [dict(r) for r in retry]
    return [header(Command.READY), pack(info)] + ([bytes(worker)] if worker is not None else [])


def encode_heartbeat(worker: bytes | None = None) -> list[bytes]:
    """Frames of a HEARTBEAT; with ``worker``, the form a separate heartbeat
    socket sends on behalf of the work socket with that routing id."""
    return [header(Command.HEARTBEAT)] + ([worker] if worker is not None else [])


def encode_ready_ack(heartbeat_ms: int, liveness: int) -> list[bytes]:
    """Frames of the broker's READY acknowledging a worker's READY."""
    return [header(Command.READY), pack({"heartbeat_ms": heartbeat_ms, "liveness": liveness})]


def encode_disconnect(reason: str | None = None) -> list[bytes]:
    """Frames of a DISCONNECT; with ``reason``, the broker's refusal of a READY."""
    return [header(Command.DISCONNECT)] + ([pack(reason)] if reason is not None else [])


def encode_worker_gone(worker: bytes, stuck: int = 0, why: str = "", *, with_info: bool = True) -> list[bytes]:
    """Frames of a supervisor's DISCONNECT for one of its processes; the
    ``info`` frame holds only the keys set (none without ``with_info``)."""
    frames = [header(Command.DISCONNECT), bytes(worker)]
    if with_info:
        info: dict[str, Any] = {}
        if stuck:
            info["stuck"] = stuck
        if why:
            info["why"] = why
        frames.append(pack(info))
    return frames


def encode_release(addresses: Sequence[str]) -> list[bytes]:
    """Frames of a RELEASE of passivated keyed addresses."""
    return [header(Command.RELEASE), pack(list(addresses))]


def _decode_worker_gone(frames: Sequence[bytes], max_bytes: int) -> WorkerGone:
    if not 1 <= len(frames[1]) <= 255:
        raise ProtocolError("DISCONNECT worker id must be 1..255 bytes")
    info = _unpack_protocol_map(bytes(frames[2]), "DISCONNECT info", max_bytes)
    stuck, why = info.get("stuck", 0), info.get("why", "")
    if "stuck" in info and (not _is_uint(stuck) or stuck == 0):
        raise ProtocolError("DISCONNECT stuck must be a uint64, not 0")
    if "why" in info and (not isinstance(why, str) or not 1 <= len(why.encode()) <= MAX_WHY_BYTES):
        raise ProtocolError("DISCONNECT why must be a str of 1..256 bytes")
    return WorkerGone(bytes(frames[1]), stuck, why)


def _decode_release(frame: bytes, max_bytes: int) -> Release:
    addresses = unpack(frame, max_bytes=max_bytes)
    if (not isinstance(addresses, list) or not 1 <= len(addresses) <= MAX_RELEASE_ADDRESSES
            or not all(isinstance(a, str) for a in addresses)):
        raise ProtocolError("RELEASE must be an array of 1..10000 str")
    return Release(addresses)


def decode_header(frame: bytes) -> Command:
    """Check a header frame and return its command."""
    if len(frame) != HEADER_LEN or frame[:3] != SIGNATURE:
        raise ProtocolError("bad signature")
    if frame[3] != VERSION:
        raise ProtocolError(f"unsupported protocol version {frame[3]}")
    try:
        return Command(frame[4])
    except ValueError:
        raise ProtocolError(f"unknown command 0x{frame[4]:02x}") from None


def durable_meta(value: Any) -> dict[str, Any]:
    """Check a durable REQUEST's 6th ``meta`` element: a map with ``id`` (str
    of 1..128 bytes) and optionally ``delay_ms`` and ``delivery`` (uint);
    returns it. Raises :class:`ProtocolError`."""
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ProtocolError("REQUEST durable element must be a map with str keys")
    mid = value.get("id")
    if not isinstance(mid, str) or not 1 <= len(mid.encode("utf-8", "surrogateescape")) <= MAX_MESSAGE_ID_BYTES:
        raise ProtocolError("REQUEST durable id must be a str of 1..128 bytes")
    for k in ("delay_ms", "delivery"):
        if k in value and not _is_uint(value[k]):
            raise ProtocolError(f"REQUEST durable {k} must be a uint")
    return value


def call_chain(value: Any) -> list[tuple[str, int]]:
    """Check a REQUEST's 7th ``meta`` element, its call chain: 1..64 links
    ``[address, id]``, each address well formed and not ``$broker``; returns
    the links. Raises :class:`ProtocolError`."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_CHAIN_LENGTH:
        raise ProtocolError(f"REQUEST call chain must be an array of 1..{MAX_CHAIN_LENGTH} links")
    links = []
    for link in value:
        if (not isinstance(link, list) or len(link) != 2 or not isinstance(link[0], str)
                or not _is_uint(link[1]) or address_problem(link[0]) is not None or link[0].startswith("$")):
            raise ProtocolError("REQUEST call chain links must be [address: str, id: uint]")
        links.append((link[0], link[1]))
    return links


def decode_request_meta(meta: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> tuple[int, str, str, int, int]:
    """Parse a REQUEST ``meta`` frame into ``(id, address, method, flags, timeout_ms)``;
    :func:`decode_request_meta_chain` also gives its call chain."""
    return decode_request_meta_chain(meta, max_bytes=max_bytes)[:5]  # type: ignore[return-value]


def decode_request_meta_chain(meta: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES
                              ) -> tuple[int, str, str, int, int, list[list[Any]] | None]:
    """Parse a REQUEST ``meta`` frame into ``(id, address, method, flags,
    timeout_ms, chain)``, ``chain`` being its 7th element as sent (links
    ``[address, id]``, checked by :func:`call_chain`) or None.

    Only the shape and types are checked here, not whether the address or
    method are well formed (that gets a reply, an unreadable meta does not):
    check them with :func:`address_problem` and :func:`method_problem`. So
    that a request whose address or method is not UTF-8 can still be answered
    by id, their invalid bytes come back as lone surrogates
    (``surrogateescape``), which those two functions report.
    """
    m = _unpack_meta(meta, max_bytes, unicode_errors="surrogateescape")
    if not isinstance(m, list) or len(m) not in (5, 6, 7):
        raise ProtocolError("REQUEST meta must be an array of 5 elements (6 when durable, 7 with a call chain)")
    if len(m) == 6 or (len(m) == 7 and m[5] is not None):
        durable_meta(m[5])
    chain = None
    if len(m) == 7:
        call_chain(m[6])
        chain = m[6]
    id_, address, method, flags, timeout_ms = m[:5]
    if not _is_uint(id_):
        raise ProtocolError("REQUEST id must be a uint64")
    if not isinstance(address, str) or not isinstance(method, str):
        raise ProtocolError("REQUEST address and method must be str")
    if not _is_uint(flags) or not _is_uint(timeout_ms):
        raise ProtocolError("REQUEST flags and timeout_ms must be uint")
    return id_, address, method, flags, timeout_ms, chain


def decode(frames: Sequence[bytes], *, max_bytes: int = MAX_MESSAGE_BYTES) -> Message:
    """Parse a whole message (all frames, header first).

    Raises :class:`ProtocolError` if it is malformed or over a limit. For a
    REQUEST only ``meta`` is decoded; ``args`` stays bytes.
    """
    if not frames:
        raise ProtocolError("empty message")
    command = decode_header(bytes(frames[0]))
    if command is Command.HEARTBEAT and len(frames) == 2:
        if not 1 <= len(frames[1]) <= 255:
            raise ProtocolError("HEARTBEAT worker id must be 1..255 bytes")
        return Heartbeat(bytes(frames[1]))
    if command is Command.DISCONNECT and len(frames) == 3:
        return _decode_worker_gone(frames, max_bytes)
    if command is Command.DISCONNECT and len(frames) == 2:
        reason = unpack(bytes(frames[1]), max_bytes=max_bytes)
        if not isinstance(reason, str):
            raise ProtocolError("DISCONNECT reason must be a str")
        return Disconnect(reason)
    if len(frames) - 1 != _BODY_FRAMES[command]:
        raise ProtocolError(f"{command.name} must have {_BODY_FRAMES[command]} frames after the header")
    if command is Command.HEARTBEAT:
        return Heartbeat()
    if command is Command.DISCONNECT:
        return Disconnect()
    if command is Command.RELEASE:
        return _decode_release(bytes(frames[1]), max_bytes)
    if command is Command.REQUEST:
        id_, address, method, flags, timeout_ms = decode_request_meta(bytes(frames[1]), max_bytes=max_bytes)
        return Request(id_, address, method, flags, timeout_ms, bytes(frames[2]))
    if command is Command.REPLY:
        meta = unpack(bytes(frames[1]), max_bytes=max_bytes)
        if not isinstance(meta, list) or len(meta) != 2:
            raise ProtocolError("REPLY meta must be an array of 2 elements")
        id_, status = meta
        if not _is_uint(id_) or not isinstance(status, str):
            raise ProtocolError("REPLY meta must be [uint64 id, str status]")
        value = unpack(bytes(frames[2]), max_bytes=max_bytes)
        return Reply(id_, status, value)
    # READY: the worker's registration, or the broker's acknowledgement of it
    info = _unpack_protocol_map(bytes(frames[1]), "READY info", max_bytes)
    if "actors" not in info and "heartbeat_ms" in info:
        heartbeat_ms, liveness = info.get("heartbeat_ms"), info.get("liveness")
        if (not _is_uint(heartbeat_ms) or not 1 <= heartbeat_ms <= MAX_HEARTBEAT_MS
                or not _is_uint(liveness) or not 1 <= liveness <= MAX_LIVENESS):
            raise ProtocolError("READY acknowledgement must hold heartbeat_ms 1..3600000 and liveness 1..100")
        return ReadyAck(heartbeat_ms, liveness)
    name, pid, credits, actors = (info.get(k) for k in ("name", "pid", "credits", "actors"))
    if not isinstance(name, str) or not 1 <= len(name.encode()) <= MAX_WORKER_NAME_BYTES:
        raise ProtocolError("READY name must be a str of 1..128 bytes")
    if not _is_uint(pid) or not _is_uint(credits) or not 1 <= credits <= MAX_CREDITS:
        raise ProtocolError("READY pid and credits must be uint, credits 1..100000")
    if (not isinstance(actors, list) or not 1 <= len(actors) <= MAX_ACTORS
            or not all(isinstance(a, str) for a in actors)):
        raise ProtocolError("READY actors must be an array of 1..10000 str")
    extra = {k: v for k, v in info.items() if k not in ("name", "pid", "credits", "actors")}
    _check_ready_durable(extra)
    return Ready(name, pid, credits, actors, extra)


def _check_ready_durable(extra: dict[str, Any]) -> None:
    """READY ``keys`` and ``retry``, when present (docs/protocol.md, READY)."""
    keys = extra.get("keys", [])
    if not isinstance(keys, list) or len(keys) > MAX_READY_KEYS or not all(
            isinstance(k, str) and "/" in k and address_problem(k) is None for k in keys):
        raise ProtocolError("READY keys must be an array of at most 100000 keyed addresses")
    retry = extra.get("retry", [])
    if not isinstance(retry, list) or len(retry) > 10_000:
        raise ProtocolError("READY retry must be an array of at most 10000 policies")
    for r in retry:
        ok = (isinstance(r, dict) and isinstance(r.get("actor"), str) and isinstance(r.get("method"), str)
              and _is_uint(r.get("attempts", 1)) and 1 <= r.get("attempts", 1) <= 1000
              and all(_is_uint(r.get(k, 0)) and r.get(k, 0) <= 86_400_000 for k in ("backoff_ms", "max_backoff_ms"))
              and isinstance(r.get("on", []), list) and all(c in ERROR_CODES for c in r.get("on", [])))
        if not ok:
            raise ProtocolError("READY retry entries must be {actor, method, attempts 1..1000, backoff_ms and "
                                "max_backoff_ms 0..86400000, on: error codes}")
