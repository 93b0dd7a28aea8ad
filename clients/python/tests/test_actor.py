"""Defining actors: exposure rules, keys, argument checks."""

from __future__ import annotations

import pytest

import troupe
from troupe.actor import ArgumentError, registered


@troupe.actor("t_public")
class Public:
    def visible(self, x: int) -> int:
        return x

    def scale(self, x: float, factor: float = 2.0) -> float:
        return x * factor

    def many(self, *xs: int) -> int:
        return sum(xs)

    def _hidden(self) -> None: ...

    def close(self) -> None: ...

    @staticmethod
    def helper() -> None: ...


@troupe.actor("t_marked")
class Marked:
    def __init__(self, key: str | None = None) -> None:
        self.key = key

    @troupe.method
    def exposed(self) -> str | None:
        return self.key

    def not_exposed(self) -> None: ...


def test_public_methods_are_exposed() -> None:
    t = registered()["t_public"]
    assert sorted(t.methods) == ["many", "scale", "visible"]
    assert not t.takes_key
    assert isinstance(t.create("ignored"), Public)


def test_marked_methods_only() -> None:
    t = registered()["t_marked"]
    assert list(t.methods) == ["exposed"]
    assert t.takes_key and t.create("alice").key == "alice"


def test_argument_checks() -> None:
    t = registered()["t_public"]
    assert t.bind("visible", [3]) == [3]
    assert t.bind("scale", [3]) == [3.0] and isinstance(t.bind("scale", [3])[0], float)
    assert t.bind("scale", [1.5, 4]) == [1.5, 4.0]
    assert t.bind("many", [1, 2, 3]) == [1, 2, 3]
    for method, args in [("visible", []), ("visible", [1, 2]), ("visible", ["x"]),
                         ("visible", [True]), ("visible", [1.5]), ("scale", ["x"])]:
        with pytest.raises(ArgumentError):
            t.bind(method, args)


def test_local_class_rejected() -> None:
    with pytest.raises(TypeError, match="module scope"):
        @troupe.actor("t_local")
        class Local:
            def m(self) -> None: ...


@pytest.mark.parametrize("name", ["", "has space", "a/b", "$broker", "x" * 65])
def test_bad_names_rejected(name: str) -> None:
    with pytest.raises(ValueError):
        troupe.actor(name)


def test_name_clash_rejected() -> None:
    with pytest.raises(ValueError, match="already used"):
        troupe.actor("t_public")(Marked)


@troupe.actor("t_caller")
class Caller:
    def __init__(self, key: str | None = None, *, ctx: troupe.Context) -> None:
        self.key, self.ctx = key, ctx

    async def forward(self, address: str) -> int:
        return await self.ctx.ask(address, "get")

    def plain(self) -> int:
        return 1


@troupe.actor("t_ctx_only")
class CtxOnly:
    def __init__(self, ctx: troupe.Context) -> None:
        self.ctx = ctx


def test_a_constructor_taking_ctx_gets_a_context_by_keyword() -> None:
    t = registered()["t_caller"]
    assert t.takes_key and t.takes_ctx and t.coroutines == frozenset({"forward"})
    ctx = troupe.Context("t_caller/alice")
    made = t.create("alice", ctx)
    assert made.key == "alice" and made.ctx is ctx
    assert (ctx.address, ctx.name, ctx.key) == ("t_caller/alice", "t_caller", "alice")
    only = registered()["t_ctx_only"]
    assert not only.takes_key and only.takes_ctx  # ctx is not the key
    assert only.create(None, ctx).ctx is ctx
    plain = registered()["t_public"]
    assert not plain.takes_ctx and not plain.coroutines
    # an async def method never takes the worker's fast path
    t.binder("forward")
    t.binder("plain")
    assert "forward" not in t._binders and "plain" in t._binders


def test_a_context_outside_a_worker_sends_nothing() -> None:
    ctx = troupe.Context("t_caller")
    assert ctx.key is None
    pending = ctx.ask("squares", "square", 7)
    assert pending.done()
    with pytest.raises(troupe.BadRequest, match="need a worker process"):
        pending.result()
    ctx.tell("squares", "square", 7)  # nothing to send it: nothing happens
    with pytest.raises(TypeError):
        ctx.ask("squares", "square", object())
    # An async def method driven by hand: the call ends at once, so it never suspends.
    coro = Caller(ctx=ctx).forward("counter/x")
    with pytest.raises(troupe.BadRequest):
        coro.send(None)
