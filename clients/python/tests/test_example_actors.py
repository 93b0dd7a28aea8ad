"""The C++ example actors (examples/actors/) through the real broker and
worker: what users copy must not overflow silently (issue 16, finding 4)."""

from __future__ import annotations

import subprocess
from typing import Callable

import pytest

import troupe
from conftest import EXAMPLES_WORKER, TROUPE, Proc, needs_cpp, wait_for_workers

pytestmark = needs_cpp

INT64_MAX = 2**63 - 1


@pytest.fixture
def examples(broker: Callable[..., Proc], spawn: Callable[..., Proc], endpoint: str) -> str:
    broker()
    spawn([EXAMPLES_WORKER, "--broker", endpoint, "--processes", "1"], label="cpp-worker")
    wait_for_workers(endpoint, "squares", 1)
    return endpoint


def test_square_overflow_is_an_actor_error(examples: str) -> None:
    with troupe.Client(examples, timeout=5) as c:
        assert c.ask("squares", "square", 3037000499) == 3037000499**2  # the largest that fits
        assert c.ask("squares", "square", -3037000499) == 3037000499**2
        for x in (3037000500, -3037000500, INT64_MAX, -INT64_MAX - 1):
            with pytest.raises(troupe.ActorError, match=f"square of {x} does not fit in a 64-bit integer"):
                c.ask("squares", "square", x)
        with pytest.raises(troupe.ActorError, match="does not fit"):
            c.ask("squares", "square_slowly", 3037000500, 0)
        assert c.ask("squares", "square", 7) == 49  # the instance keeps serving


def test_counter_overflow_is_an_actor_error_and_keeps_the_total(examples: str) -> None:
    with troupe.Client(examples, timeout=5) as c:
        assert c.ask("counter/x", "add", 2**62) == 2**62
        with pytest.raises(troupe.ActorError, match=f"{2**62} \\+ {2**62} does not fit in a 64-bit integer"):
            c.ask("counter/x", "add", 2**62)
        assert c.ask("counter/x", "get") == 2**62  # unchanged by the failed add
        assert c.ask("counter/x", "add", 2**62 - 1) == INT64_MAX
        assert c.ask("counter/y", "add", -INT64_MAX - 1) == -INT64_MAX - 1
        with pytest.raises(troupe.ActorError, match="does not fit"):
            c.ask("counter/y", "add", -1)


def test_troupe_call_reports_the_overflow(examples: str) -> None:
    result = subprocess.run([str(TROUPE), "call", "--broker", examples, "--timeout-ms", "5000",
                             "squares", "square", "3037000500"], capture_output=True, timeout=20)
    assert result.returncode == 1, result
    assert result.stdout == b""
    assert result.stderr == b"error: actor_error: the square of 3037000500 does not fit in a 64-bit integer\n"
