"""Client behaviour that needs no broker: bounded waits, guards, validation."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import troupe


def test_ask_without_broker_ends_with_deadline_exceeded(endpoint: str) -> None:
    with troupe.Client(endpoint, timeout=0.3, grace=0.2) as c:
        t0 = time.monotonic()
        with pytest.raises(troupe.DeadlineExceeded) as info:
            c.ask("squares", "square", 3)
        assert 0.4 <= time.monotonic() - t0 < 2.0
        assert info.value.code == "deadline_exceeded"
        c.tell("squares", "square", 3)  # a tell does not wait at all
        with pytest.raises(troupe.DeadlineExceeded):
            c.map("squares", "square", [1, 2, 3], timeout=0.2)
        got = c.map("squares", "square", [1, 2], timeout=0.2, return_exceptions=True)
        assert all(isinstance(g, troupe.DeadlineExceeded) for g in got)


def test_async_ask_without_broker_ends_with_deadline_exceeded(endpoint: str) -> None:
    async def main() -> None:
        async with troupe.AsyncClient(endpoint, timeout=0.3, grace=0.2) as c:
            t0 = time.monotonic()
            results = await asyncio.gather(*(c.ask("squares", "square", i) for i in range(50)),
                                           return_exceptions=True)
            assert all(isinstance(r, troupe.DeadlineExceeded) for r in results)
            assert time.monotonic() - t0 < 2.0
    asyncio.run(main())


def test_concurrent_use_from_two_threads_is_refused(endpoint: str) -> None:
    with troupe.Client(endpoint, timeout=1.0, grace=0.0) as c:
        errors: list[BaseException] = []
        t = threading.Thread(target=lambda: pytest.raises(troupe.DeadlineExceeded, c.ask, "a", "b"))
        t.start()
        time.sleep(0.2)
        try:
            c.ask("a", "b")
        except RuntimeError as exc:
            errors.append(exc)
        t.join(5)
        assert errors and "two threads" in str(errors[0])


def test_unpackable_args_fail_locally(endpoint: str) -> None:
    with troupe.Client(endpoint, timeout=0.2) as c:
        with pytest.raises(TypeError):
            c.ask("echo", "echo", object())


def test_closed_client_and_bad_timeouts(endpoint: str) -> None:
    c = troupe.Client(endpoint)
    c.close()
    c.close()
    with pytest.raises(RuntimeError, match="closed"):
        c.ask("a", "b")
    with pytest.raises(ValueError):
        troupe.Client(endpoint, timeout=0)


class ScriptedReplies:
    """A ROUTER on ``endpoint`` answering each REQUEST with ``script(id)``:
    a list of messages (lists of frames) sent back at once. Runs in a thread,
    every wait bounded."""

    def __init__(self, endpoint: str, script) -> None:
        import zmq
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(endpoint)
        self.script, self.stop = script, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        from troupe import protocol as p
        while not self.stop.is_set():
            if not self.sock.poll(50):
                continue
            identity, *frames = self.sock.recv_multipart()
            msg = p.decode(frames)
            if isinstance(msg, p.Request) and not msg.tell:
                for reply in self.script(msg.id, msg.args):
                    self.sock.send_multipart([identity] + reply)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close(0)
        self.ctx.term()


def _answers(id_: int, args: bytes) -> list[list[bytes]]:
    """Malformed replies around the good one: each must be ignored."""
    import msgpack
    from troupe import protocol as p
    x = msgpack.unpackb(args)[0]
    good = p.encode_reply(id_, "ok", x * 10)
    return [
        [p.header(p.Command.REPLY)],                                  # a header alone
        p.encode_reply(id_, "ok", "four frames") + [b"extra"],       # one frame too many
        p.encode_reply(id_, "ok", "two frames")[:2],                 # one frame short, then the good one
        good,
        p.encode_reply(id_ + 10**9, "ok", "unknown id"),             # a reply to no call
        p.encode_heartbeat(),                                        # not a REPLY
    ]


def test_client_ignores_malformed_replies(endpoint: str) -> None:
    broker = ScriptedReplies(endpoint, _answers)
    try:
        with troupe.Client(endpoint, timeout=5) as c:
            assert [c.ask("a", "b", i) for i in range(5)] == [0, 10, 20, 30, 40]
            assert c.map("a", "b", range(50), window=7) == [i * 10 for i in range(50)]
    finally:
        broker.close()


def test_async_client_ignores_malformed_replies(endpoint: str) -> None:
    broker = ScriptedReplies(endpoint, _answers)

    async def main() -> None:
        async with troupe.AsyncClient(endpoint, timeout=5) as c:
            assert await asyncio.gather(*(c.ask("a", "b", i) for i in range(50))) == [i * 10 for i in range(50)]
            assert await c.map("a", "b", range(50), window=7) == [i * 10 for i in range(50)]

    try:
        asyncio.run(main())
    finally:
        broker.close()


def test_async_map_failures_and_timeouts(endpoint: str) -> None:
    from troupe import protocol as p

    def script(id_: int, args: bytes) -> list[list[bytes]]:
        import msgpack
        x = msgpack.unpackb(args)[0]
        if x == 3:
            return [p.encode_reply(id_, "actor_error", "three")]
        if x == 5:
            return []  # never answered: ends with deadline_exceeded
        return [p.encode_reply(id_, "ok", x)]

    broker = ScriptedReplies(endpoint, script)

    async def main() -> None:
        async with troupe.AsyncClient(endpoint, timeout=0.3, grace=0.1) as c:
            got = await c.map("a", "b", range(8), window=3, return_exceptions=True)
            assert got[:3] == [0, 1, 2] and got[4] == 4 and got[6:] == [6, 7]
            assert isinstance(got[3], troupe.ActorError) and isinstance(got[5], troupe.DeadlineExceeded)
            with pytest.raises(troupe.ActorError):
                await c.map("a", "b", range(8), window=3)
            with pytest.raises(TypeError):
                await c.map("a", "b", [object()])
            assert await c.ask("a", "b", 9) == 9  # still usable

    try:
        asyncio.run(main())
    finally:
        broker.close()


def test_async_client_in_a_second_asyncio_run(endpoint: str) -> None:
    from troupe import protocol as p
    broker = ScriptedReplies(endpoint, lambda id_, args: [p.encode_reply(id_, "ok", 1)] if id_ != 2 else [])
    c = troupe.AsyncClient(endpoint, timeout=0.2, grace=0.1)
    try:
        assert asyncio.run(c.ask("a", "b")) == 1
        with pytest.raises(troupe.DeadlineExceeded):  # the sweep runs on the new loop
            asyncio.run(asyncio.wait_for(c.ask("a", "b"), 5))
        assert asyncio.run(c.ask("a", "b")) == 1
    finally:
        asyncio.run(c.close())
        broker.close()
