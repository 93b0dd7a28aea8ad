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
