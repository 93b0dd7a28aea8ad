"""CURVE keys for the Python client and worker (docs/security.md).

A client or worker holds its own secret key file (``NAME.key_secret``) and
the broker's public key file (``NAME.key``), given as arguments or through
``$TROUPE_CURVE_SECRET`` and ``$TROUPE_BROKER_KEY``. The files are in
ZeroMQ's certificate format, the one ``troupe keygen``, pyzmq's
``zmq.auth.create_certificates`` and czmq write; they are read here with the
same rules as troupe's C++ reader, so a bad file is a :class:`KeyFileError`
that names the file and the line.

:class:`HandshakeWatch` follows a socket's handshakes (a ZeroMQ socket
monitor) so that a refused key, a wrong broker key and an absent broker
read differently in errors.
"""

from __future__ import annotations

import itertools
import os
import re
import struct
from dataclasses import dataclass

import zmq

SECRET_ENV = "TROUPE_CURVE_SECRET"
BROKER_KEY_ENV = "TROUPE_BROKER_KEY"

_Z85 = re.compile(r"[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}\Z")
_MAX_FILE = 64 * 1024


class KeyFileError(ValueError):
    """A key file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class Keys:
    """Z85 keys for a CURVE client socket."""

    public: bytes
    secret: bytes
    server: bytes


def read_certificate(path: str, need_secret: bool) -> tuple[str, str | None]:
    """``(public, secret)`` Z85 keys of a certificate file (``secret`` is
    None in a public one). Raises :class:`KeyFileError`."""
    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_FILE + 1)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read: {exc.strerror}") from None
    if len(raw) > _MAX_FILE:
        raise KeyFileError(f"{path}: larger than 64 KiB: not a certificate")
    if b"\0" in raw:
        raise KeyFileError(f"{path}: binary data: not a certificate")
    text = raw.decode("utf-8", errors="replace")
    section, keys, lines = "", {}, {}
    for n, line in enumerate(text.split("\n"), 1):
        stripped = line.strip(" \t\r")
        if not stripped or stripped.startswith("#"):
            continue
        if not line[:1].isspace():
            if "=" not in stripped:
                section = stripped
            continue
        if "=" not in stripped:
            continue
        name, value = (s.strip(" \t\r") for s in stripped.split("=", 1))
        if value[:1] in ("'", '"'):
            end = value.find(value[0], 1)
            if end < 0:
                raise KeyFileError(f"{path}: line {n}: unterminated quoted value")
            value = value[1:end]
        if section == "curve" and name in ("public-key", "secret-key"):
            if name in keys:
                raise KeyFileError(f"{path}: line {n}: {name} given twice (also on line {lines[name]})")
            if not _Z85.match(value):
                raise KeyFileError(f"{path}: line {n}: {name} is not a CURVE key: expected 40 Z85 characters")
            keys[name], lines[name] = value, n
    if "public-key" not in keys:
        raise KeyFileError(f"{path}: no public-key in a `curve` section: not a ZeroMQ certificate "
                           "(make one with `troupe keygen`)")
    secret = keys.get("secret-key")
    if need_secret and secret is None:
        raise KeyFileError(f"{path}: no secret-key: this is a public certificate; give the NAME.key_secret file, "
                           "not NAME.key")
    if secret is not None and zmq.curve_public(secret.encode()).decode() != keys["public-key"]:
        raise KeyFileError(f"{path}: line {lines['secret-key']}: secret-key does not belong to public-key")
    return keys["public-key"], secret


def load(curve_secret: str | None = None, broker_key: str | None = None) -> Keys | None:
    """The keys to use: the files given, else ``$TROUPE_CURVE_SECRET`` and
    ``$TROUPE_BROKER_KEY``; None when neither is set (plaintext). Raises
    :class:`KeyFileError` when only one is given or a file is unusable."""
    secret_file = curve_secret or os.environ.get(SECRET_ENV) or ""
    broker_file = broker_key or os.environ.get(BROKER_KEY_ENV) or ""
    if not secret_file and not broker_file:
        return None
    if not secret_file:
        raise KeyFileError(f"a broker key is given but no secret key (curve_secret or ${SECRET_ENV}): "
                           "CURVE needs both")
    if not broker_file:
        raise KeyFileError(f"a secret key is given but no broker key (broker_key or ${BROKER_KEY_ENV}): "
                           "CURVE needs both")
    public, secret = read_certificate(secret_file, need_secret=True)
    server, _ = read_certificate(broker_file, need_secret=False)
    assert secret is not None
    return Keys(public.encode(), secret.encode(), server.encode())


def secure(sock: zmq.Socket, keys: Keys | None) -> None:
    """Makes ``sock`` a CURVE client of the broker (before connect); nothing
    for ``None``."""
    if keys is None:
        return
    sock.curve_serverkey = keys.server
    sock.curve_publickey = keys.public
    sock.curve_secretkey = keys.secret


_EVENTS = (zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
           | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_DISCONNECTED)
_MECHANISM_MISMATCH = 0x11000002
_serial = itertools.count()


class HandshakeWatch:
    """What the handshakes of a socket connecting to the broker said, read
    from a socket monitor when asked (never blocks). Create it before the
    socket connects; close it before the socket."""

    def __init__(self, ctx: zmq.Context, sock: zmq.Socket, endpoint: str, curve: bool) -> None:
        self.endpoint, self.curve = endpoint, curve
        self.connected = False
        self.gave_up = False  # ZeroMQ dropped the connection for good: replace the socket
        self.failure = ""
        address = f"inproc://troupe-py-handshake-{os.getpid()}-{next(_serial)}"
        sock.monitor(address, _EVENTS)
        self._sock = sock
        self._pair = zmq.Socket(ctx, zmq.PAIR)  # a plain socket even in an asyncio context
        self._pair.linger = 0
        self._pair.connect(address)

    def poll(self) -> None:
        """Reads the events that arrived."""
        while True:
            try:
                frames = self._pair.recv_multipart(zmq.NOBLOCK)
            except (zmq.Again, zmq.ZMQError):
                return
            if len(frames[0]) >= 6:
                event, value = struct.unpack("=HI", frames[0][:6])
                self._on_event(event, value)

    def _on_event(self, event: int, value: int) -> None:
        at = f"the broker at {self.endpoint}"
        if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self.connected, self.gave_up, self.failure = True, False, ""
        elif event == zmq.EVENT_DISCONNECTED:
            self.connected = False
        elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            self.connected, self.gave_up = False, True
            self.failure = (f"authentication failed: {at} does not accept this key (ZAP status {value}); its public "
                            "key must be in the broker's key directory for this role")
        elif event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
            self.connected, self.gave_up = False, True
            if value == _MECHANISM_MISMATCH:
                self.failure = (f"authentication failed: {at} does not use CURVE (it runs without --curve-secret), "
                                "but this program has keys" if self.curve else
                                f"authentication failed: {at} requires CURVE: give curve_secret and broker_key "
                                f"(or ${SECRET_ENV} and ${BROKER_KEY_ENV})")
            else:
                self.failure = f"authentication failed: the handshake with {at} failed (ZMTP protocol error {value:#x})"
        elif event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            self.connected = False
            self.failure = (f"authentication failed: {at} closed the connection during the CURVE handshake; is the "
                            "broker key its public key?" if self.curve else
                            f"no broker answering at {self.endpoint} (the connection closed during the handshake)")

    def why(self, default: str) -> str:
        """``default`` while the connection is up (or no handshake has failed
        and one may yet come), else why calls cannot get through."""
        self.poll()
        if self.connected:
            return default
        return self.failure or f"no broker answering at {self.endpoint}"

    def close(self) -> None:
        try:
            self._sock.disable_monitor()
        except zmq.ZMQError:
            pass
        self._pair.close(linger=0)
