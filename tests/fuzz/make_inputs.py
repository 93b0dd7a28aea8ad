#!/usr/bin/python3
"""Writes the seed corpora (corpus/<harness>/) and the regression inputs
(regressions/<harness>/) of the fuzz harnesses. The seeds come from the
protocol's test vectors (tests/vectors/*.hex); the regression inputs are the
findings of issue 16, written in each harness's input format (see the
harness's source). Run it again after adding vectors:

    /usr/bin/python3 tests/fuzz/make_inputs.py

Files are only ever added or overwritten, never deleted: inputs the fuzzer
found and someone saved here stay.
"""
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent
VECTORS = HERE.parent / "vectors"


def write(kind, harness, name, data):
    path = HERE / kind / harness / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def vectors():
    """name -> list of frames (bytes), header first."""
    out = {}
    for p in sorted(VECTORS.glob("*.hex")):
        out[p.stem] = [bytes.fromhex(line.strip()) for line in p.read_text().splitlines() if line.strip()]
    return out


# ---- msgpack, just enough to write inputs --------------------------------

def mp_str(s):
    b = s.encode() if isinstance(s, str) else s
    if len(b) < 32:
        return bytes([0xA0 | len(b)]) + b
    if len(b) < 256:
        return b"\xd9" + bytes([len(b)]) + b
    return b"\xda" + struct.pack(">H", len(b)) + b


def mp_uint(n):
    if n < 128:
        return bytes([n])
    if n < 256:
        return b"\xcc" + bytes([n])
    if n < 65536:
        return b"\xcd" + struct.pack(">H", n)
    if n < 2**32:
        return b"\xce" + struct.pack(">I", n)
    return b"\xcf" + struct.pack(">Q", n)


def mp_array_header(n):
    return bytes([0x90 | n]) if n < 16 else (b"\xdc" + struct.pack(">H", n) if n < 65536 else b"\xdd" + struct.pack(">I", n))


def mp_map_header(n):
    return bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)


def u16(n):
    return struct.pack("<H", n)


def u64(n):
    return struct.pack("<Q", n & (2**64 - 1))


# ---- seeds from the vectors --------------------------------------------------

def seeds(vs):
    for name, frames in vs.items():
        bodies = frames[1:]
        kind = name.split("_")[0] if not name.startswith(("accept_", "reject_")) else name.split("_")[1]
        for i, body in enumerate(bodies):
            write("corpus", "wire_reader", f"{name}-{i}", body)
            write("corpus", "unpack_bounded", f"{name}-{i}", bytes([32]) + body)
        if kind == "request" and len(bodies) >= 1:
            write("corpus", "request_meta", name, bodies[0])
        if kind == "reply" and len(bodies) >= 1:
            write("corpus", "reply_meta", name, bodies[0])
            if len(bodies) == 2:
                # client_reply: frame count 3, frames with 16-bit lengths, then the result type.
                frames_in = b"".join(u16(len(f)) + f for f in frames)
                for t in (0, 3, 8):
                    write("corpus", "client_reply", f"{name}-as{t}", bytes([3]) + frames_in + bytes([t]))
                write("corpus", "json_msgpack", name, b"\x00" + bodies[1])
        if kind == "ready" and len(bodies) >= 1:
            write("corpus", "ready", name, bodies[0])
        if kind == "request" and len(bodies) == 2:
            write("corpus", "json_msgpack", f"{name}-args", b"\x00" + bodies[1])


def json_seeds():
    for i, text in enumerate([b"7", b'"alice"', b"[1, 2.5, \"x\"]", b'{"a": [true, null]}', b"-3\x00\"two\"", b"1e3"]):
        write("corpus", "json_msgpack", f"args-{i}", b"\x01" + text)


# dispatch: op (address index, 14 = raw), method index (11 = raw), args
# mode (0 raw with a 16-bit length, 1 typed array, 2 one int64).
ADDRESSES = ["squares", "counter", "counter/a", "counter/b", "echo", "echo/x", "vectorize", "probe", "probe/k",
             "probe/bad", "nobody", "bad name!", "counter/", "$broker"]
METHODS = ["square", "add", "get", "echo", "fail", "whoami", "apply", "serial", "boom", "nope", ""]


def call(address, method, args=None, int_arg=None):
    out = bytes([ADDRESSES.index(address)]) if address in ADDRESSES else bytes([len(ADDRESSES)]) + mp_len(address)
    out += bytes([METHODS.index(method)]) if method in METHODS else bytes([len(METHODS)]) + mp_len(method)
    if int_arg is not None:
        return out + b"\x02" + u64(int_arg)
    return out + b"\x00" + u16(len(args)) + args


def mp_len(s):
    b = s.encode() if isinstance(s, str) else s
    return bytes([len(b)]) + b


def dispatch_seeds():
    calls = {
        "square": call("squares", "square", mp_array_header(1) + mp_uint(7)),
        "counter": call("counter/a", "add", int_arg=5) + call("counter/a", "get", b"\x90"),
        "echo": call("echo", "echo", b"\x91" + mp_map_header(1) + mp_str("k") + b"\x93\xc0\xc3\xcb" + bytes(8)),
        "fail": call("echo/x", "fail", b"\x91" + mp_str("boom")),
        "apply": call("vectorize", "apply", b"\x91\x93\x01\xcb" + struct.pack(">d", 2.5) + b"\xff"),
        "probe": call("probe/k", "serial", b"\x90") + b"\xff" + call("probe/k", "serial", b"\x90")
        + call("probe/bad", "serial", b"\x90"),
        "unknown": call("nobody", "x", b"\x90") + call("squares", "cube", b"\x91\x02") + call("bad name!", "m", b"\x90"),
    }
    for name, data in calls.items():
        write("corpus", "dispatch", name, data)


# broker_core: a setup byte, then steps (see broker_core.cpp). Each step is
# op, worker choice, client choice, then the step's own bytes.
def step(op, worker=0, client=0):
    return bytes([op, worker, client])


def ready(worker, mask, credits_choice=0):
    return step(0, worker) + bytes([mask, credits_choice])


def ask(client, choice, name, key=0, tell=False, timeout=(0,)):
    out = step(1, 0, client) + bytes([choice])
    if choice < 6:
        out += bytes([name]) + (bytes([key]) if choice >= 3 else b"")
        out += bytes([1])  # method "m"
    elif choice == 6:
        out += bytes([name])  # management method index
    out += bytes([0 if tell else 1]) + bytes(timeout)
    return out


def reply(worker, which=0, status=0, value=(0,)):
    return step(3, worker) + bytes([which, 1, 0, status]) + bytes(value)


def advance(choice):
    return step(8) + bytes([choice])


def broker_seeds(vs):
    squares, counter = 0, 1
    scenarios = {
        "pool": b"\x03" + ready(0, 0b1, 2) + bytes([2]) + ask(0, 0, squares) + ask(1, 0, squares) + reply(0) + reply(0),
        "keyed": b"\x03" + ready(0, 0b10) + ready(1, 0b10) + ask(0, 3, counter, 0) + ask(1, 3, counter, 1)
        + reply(0) + reply(1) + ask(0, 3, counter, 0),
        "overloaded": b"\x00" + ready(0, 0b1) + ask(0, 0, squares) + ask(0, 0, squares) + ask(0, 0, squares),
        "deadline": b"\x07" + ready(0, 0b1) + ask(0, 0, squares) + ask(0, 0, squares) + advance(6) + reply(0),
        "worker_lost": b"\x03" + ready(0, 0b11) + ask(0, 3, counter, 2) + advance(5) + advance(5),
        "disconnect": b"\x03" + ready(0, 0b1) + ask(0, 0, squares) + step(7) + reply(0) + ask(0, 0, squares),
        "management": b"\x03" + ready(0, 0b1) + ask(2, 6, 1) + ask(2, 6, 2) + ask(3, 6, 4),
        "heartbeat_for": b"\x03" + ready(0, 0b1) + step(6) + bytes([0, 1]) + step(6, 1) + bytes([1, 0, 3]) + b"abc",
    }
    # A DISCONNECT with a body frame from a worker holding a request (the body names another worker).
    scenarios["disconnect_with_body"] = b"\x03" + ready(0, 0b1) + ask(0, 0, 0) + step(9) + bytes([2, 1, 5]) \
        + u16(1) + b"x" + bytes([4])
    for name, data in scenarios.items():
        write("corpus", "broker_core", name, data)
    # Each vector as raw frames from a worker, after a READY.
    for name, frames in vs.items():
        sender = 0 if "request" in name else 4  # a client's message from a client, the rest from worker-0
        raw = step(9) + bytes([len(frames), 0]) + b"".join(u16(len(f)) + f for f in frames) + bytes([sender])
        write("corpus", "broker_core", f"vector-{name}", b"\x03" + ready(0, 0b111) + raw)


# ---- issue 16's findings -----------------------------------------------------

def regressions():
    # 1. A READY that repeats `actors`: each array within 1..10000, together more.
    small = mp_map_header(3) + mp_str("credits") + b"\x01" + mp_str("actors") + b"\x91" + mp_str("a") \
        + mp_str("actors") + b"\x91" + mp_str("b")
    write("regressions", "ready", "issue16-1-repeated-actors", small)
    names = [f"n{i}" for i in range(10000)]
    big = mp_map_header(3) + mp_str("credits") + b"\x01" + mp_str("actors") + mp_array_header(len(names)) \
        + b"".join(mp_str(n) for n in names) + mp_str("actors") + b"\x91" + mp_str("b")
    write("regressions", "ready", "issue16-1-10001-names", big)

    # 2. Keys stay placed on a worker whose second READY no longer hosts the name.
    squares, counter = 0, 1
    data = b"\x03" + ready(0, 0b10) + ask(0, 3, counter, 0) + reply(0) + ready(0, 0b01) + ready(1, 0b10) \
        + ask(0, 3, counter, 0)
    write("regressions", "broker_core", "issue16-2-keys-survive-second-ready", data)

    # 3. `troupe call` printing nested non-str map keys: 26 levels of {{...}: nil}.
    value = b"\x80"
    for _ in range(26):
        value = b"\x81" + value + b"\xc0"
    write("regressions", "json_msgpack", "issue16-3-nested-map-keys", b"\x00" + value)

    # 4. The example actors overflow silently.

    # Error messages echo the caller's bytes; they must still be UTF-8 (a protocol str).
    write("regressions", "dispatch", "error-message-not-utf8", call("echo", "fail", b"\x91" + mp_str(b"\xff\xfe")))
    write("regressions", "dispatch", "method-not-utf8", call("squares", b"cu\x00\xff", b"\x90"))

    write("regressions", "dispatch", "issue16-4-square-overflow", call("squares", "square", int_arg=3037000500))
    write("regressions", "dispatch", "issue16-4-counter-overflow",
          call("counter/x", "add", int_arg=4611686018427387904) * 2)

    # 5. A JSON number the CLI cannot represent must be bad usage (invalid_argument).
    write("regressions", "json_msgpack", "issue16-5-json-1e400", b"\x01" + b"1e400")


# ---- open findings: fail with the strict invariant, not replayed yet ----------

def open_findings():
    # A READY without `name` decodes; encode_ready then writes "name": "", which decode_ready refuses.
    write("open", "ready", "ready-without-name-round-trip",
          mp_map_header(2) + mp_str("credits") + b"\x01" + mp_str("actors") + b"\x91" + mp_str("squares"))


if __name__ == "__main__":
    vs = vectors()
    seeds(vs)
    json_seeds()
    dispatch_seeds()
    broker_seeds(vs)
    regressions()
    open_findings()
