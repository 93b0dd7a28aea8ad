"""Defining Python actors: :func:`actor`, :func:`method`, the registry.

An actor is a class at module scope registered under a name::

    @troupe.actor("greeter")
    class Greeter:
        def __init__(self, key: str | None = None): ...   # optional key argument
        def greet(self, name: str) -> str: ...            # exposed as "greet"
        def close(self) -> None: ...                      # called once at shutdown

A constructor that takes ``ctx`` gets a :class:`troupe.Context`, through
which its methods call other actors; ``async def`` methods may await those
calls. Exposed methods are the public methods (names not starting with ``_``,
except ``close``). If any method is decorated with :func:`method`, only the
decorated ones are exposed. The class never leaves the worker process: a
client sends the actor's name, the method's name and plain data.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, TypeVar

from . import protocol as p

T = TypeVar("T", bound=type)
F = TypeVar("F", bound=Callable[..., Any])

CLOSE_HOOK = "close"
CONTEXT_PARAM = "ctx"
_MARK = "__troupe_method__"


class ArgumentError(Exception):
    """Arguments that do not fit a method (reported as ``bad_args``)."""


@dataclass
class ActorType:
    """A registered actor class: its name, methods and how to build it."""

    name: str
    cls: type
    methods: dict[str, Callable[..., Any]]
    takes_key: bool
    takes_ctx: bool = False
    """Whether the constructor takes ``ctx`` (a :class:`troupe.Context`)."""
    coroutines: frozenset[str] = frozenset()
    """The methods that are ``async def``: the worker drives them."""
    _signatures: dict[str, tuple[inspect.Signature, dict[str, Any]]] = field(default_factory=dict)
    # Binders of plain methods only: the worker's fast path looks methods up
    # here, so an async def method never takes it.
    _binders: dict[str, Callable[[list[Any]], list[Any]]] = field(default_factory=dict)
    _async_binders: dict[str, Callable[[list[Any]], list[Any]]] = field(default_factory=dict)

    def retry_policies(self) -> list[dict[str, Any]]:
        """The retry policies of its methods (:func:`retry`), as READY
        ``retry`` entries (docs/protocol.md)."""
        return [{"actor": self.name, "method": m, **getattr(fn, _RETRY)}
                for m, fn in sorted(self.methods.items()) if hasattr(fn, _RETRY)]

    def create(self, key: str | None, ctx: Any = None) -> Any:
        """Construct one instance: ``key`` is passed if the constructor takes
        one, and ``ctx`` (keyword) if it takes a ``ctx`` parameter."""
        if self.takes_ctx:
            return self.cls(key, ctx=ctx) if self.takes_key else self.cls(ctx=ctx)
        return self.cls(key) if self.takes_key else self.cls()

    def bind(self, method: str, args: list[Any]) -> list[Any]:
        """Check ``args`` against ``method``'s signature and simple annotations.

        Returns the (possibly converted, e.g. int -> float) positional
        arguments; raises :class:`ArgumentError` if they do not fit.
        """
        sig, hints = self._signature(method)
        try:
            bound = sig.bind(None, *args)  # None stands for self
        except TypeError as exc:
            raise ArgumentError(f"{self.name}.{method}: {exc}") from None
        out = list(args)
        params = list(sig.parameters.values())[1:]
        for i, value in enumerate(args):
            if i >= len(params) or params[i].kind is inspect.Parameter.VAR_POSITIONAL:
                break
            hint = hints.get(params[i].name)
            if hint is not None:
                out[i] = _convert(value, hint, f"{self.name}.{method}: argument {params[i].name!r}")
        del bound
        return out

    def binder(self, method: str) -> Callable[[list[Any]], list[Any]]:
        """``bind`` for one method, prepared once: the returned function checks
        and converts ``args`` in place (the worker's freshly unpacked list) and
        returns it, or raises :class:`ArgumentError` with ``bind``'s message.

        The count is compared with bounds taken from the signature once, and an
        argument whose type is exactly its annotation's is accepted without
        further checks; anything else goes through the same code as ``bind``.
        """
        cache = self._async_binders if method in self.coroutines else self._binders
        fn = cache.get(method)
        if fn is None:
            fn = cache[method] = self._prepare(method)
        return fn

    def _prepare(self, method: str) -> Callable[[list[Any]], list[Any]]:
        sig, hints = self._signature(method)
        kinds = inspect.Parameter
        params = list(sig.parameters.values())[1:]
        positional = [q for q in params if q.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)]
        if any(q.kind is kinds.KEYWORD_ONLY and q.default is kinds.empty for q in params):
            return lambda args: self.bind(method, args)  # never callable with positional args alone
        low = sum(1 for q in positional if q.default is kinds.empty)
        high = None if any(q.kind is kinds.VAR_POSITIONAL for q in params) else len(positional)
        checks = []
        for i, q in enumerate(positional):
            hint = hints.get(q.name)
            if hint is not None and (typing.get_origin(hint) or hint) in _SIMPLE:
                checks.append((i, typing.get_origin(hint) or hint, hint,
                               f"{self.name}.{method}: argument {q.name!r}"))
        checks_t = tuple(checks)
        general = self.bind

        def bind_fast(args: list[Any]) -> list[Any]:
            n = len(args)
            if n < low or (high is not None and n > high):
                return general(method, args)  # raises ArgumentError with the signature's own words
            for i, target, hint, where in checks_t:
                if i >= n:
                    break
                value = args[i]
                if type(value) is not target:
                    args[i] = _convert(value, hint, where)
            return args

        return bind_fast

    def _signature(self, method: str) -> tuple[inspect.Signature, dict[str, Any]]:
        cached = self._signatures.get(method)
        if cached is None:
            fn = self.methods[method]
            try:
                hints = typing.get_type_hints(fn)
            except Exception:
                hints = {}  # unresolvable annotations: check the count only
            hints.pop("return", None)
            cached = (inspect.signature(fn), hints)
            self._signatures[method] = cached
        return cached


_SIMPLE = {int, float, str, bytes, bool, list, dict}
# bad_args names MessagePack's types, as the C++ worker does
# (docs/protocol.md, "Error codes"), not Python's.
_WIRE_NAMES = {int: "int", float: "float", str: "str", bytes: "bin", bytearray: "bin", bool: "bool",
               list: "array", tuple: "array", dict: "map", type(None): "nil"}


def wire_type_name(value_or_type: Any) -> str:
    """The wire type name of a decoded value (or of a Python type)."""
    t = value_or_type if isinstance(value_or_type, type) else type(value_or_type)
    return _WIRE_NAMES.get(t, "ext")


def _convert(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a simple annotation; others are not checked."""
    target = typing.get_origin(hint) or hint
    if target not in _SIMPLE:
        return value
    if target is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # MessagePack integers are fine where a float is wanted
    if target is int and isinstance(value, bool):
        raise ArgumentError(f"{where} must be int, got bool")
    if target is bytes and isinstance(value, bytearray):
        return bytes(value)
    if not isinstance(value, target):
        raise ArgumentError(f"{where} must be {wire_type_name(target)}, got {wire_type_name(value)}")
    return value


_REGISTRY: dict[str, ActorType] = {}


def actor(name: str) -> Callable[[T], T]:
    """Register a module-scope class as the actor ``name``.

    ``name`` is 1..64 characters from ``[A-Za-z0-9_.-]``. The constructor
    takes no argument, or one: the key of a keyed address
    (``counter/alice`` gives ``"alice"``; an unkeyed address gives ``None``);
    a parameter named ``ctx`` also gets the instance's :class:`troupe.Context`,
    by keyword, for calling other actors.
    """
    if p.address_problem(name) or name.startswith("$") or "/" in name:
        raise ValueError(f"invalid actor name {name!r}: 1..64 characters from [A-Za-z0-9_.-]")

    def register(cls: T) -> T:
        if not isinstance(cls, type):
            raise TypeError("@troupe.actor decorates a class")
        if "<locals>" in cls.__qualname__:
            # The worker finds actors by importing their module; a class made
            # inside a function would not exist there.
            raise TypeError(f"actor {name!r}: {cls.__qualname__} must be defined at module scope")
        old = _REGISTRY.get(name)
        if old is not None and (old.cls.__module__, old.cls.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"actor name {name!r} is already used by {old.cls.__module__}.{old.cls.__qualname__}")
        methods = _methods_of(cls)
        _REGISTRY[name] = ActorType(name, cls, methods, _takes_key(cls), _takes_ctx(cls),
                                    frozenset(m for m, fn in methods.items() if inspect.iscoroutinefunction(fn)))
        return cls

    return register


def method(fn: F) -> F:
    """Mark a method as exposed. Once any method of a class is marked, only
    marked methods are exposed."""
    setattr(fn, _MARK, True)
    return fn


_RETRY = "_troupe_retry"


def retry(attempts: int = 3, backoff: float = 1.0, max_backoff: float = 60.0,
          on: Sequence[str] = ("actor_error", "worker_lost")) -> Callable[[F], F]:
    """Declare how a durable message to this method is run again when a run
    ends with one of the error codes in ``on`` (docs/durability.md): at most
    ``attempts`` runs, waiting ``backoff × 2^(n-1)`` seconds (at most
    ``max_backoff``) before run n + 1. The worker tells the broker, which
    keeps the schedule in its store. Raises ValueError for a bad policy."""
    if not 1 <= attempts <= 1000 or not 0 <= backoff <= 86400 or not 0 <= max_backoff <= 86400:
        raise ValueError("retry: attempts 1..1000, backoff and max_backoff 0..86400 seconds")
    codes = list(on)
    if not set(codes) <= set(p.ERROR_CODES):
        raise ValueError(f"retry: `on` takes error codes, from {', '.join(p.ERROR_CODES)}")
    policy = {"attempts": attempts, "backoff_ms": int(backoff * 1000), "max_backoff_ms": int(max_backoff * 1000),
              "on": codes}

    def mark(fn: F) -> F:
        setattr(fn, _RETRY, policy)
        return fn

    return mark


def registered() -> dict[str, ActorType]:
    """A copy of the registry: actor name to :class:`ActorType`."""
    return dict(_REGISTRY)


def _methods_of(cls: type) -> dict[str, Callable[..., Any]]:
    found: dict[str, Callable[..., Any]] = {}
    for attr in dir(cls):
        if attr.startswith("_") or attr == CLOSE_HOOK:
            continue
        raw = inspect.getattr_static(cls, attr)
        if isinstance(raw, (staticmethod, classmethod)) or not inspect.isfunction(raw):
            continue  # only plain instance methods take part
        if p.method_problem(attr):
            continue
        found[attr] = raw
    marked = {k: v for k, v in found.items() if getattr(v, _MARK, False)}
    return marked or found


def _constructor_params(cls: type) -> list[inspect.Parameter]:
    try:
        return list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        return []


def _takes_key(cls: type) -> bool:
    """Whether the constructor takes a positional argument (the key) other
    than ``ctx``."""
    params = [q for q in _constructor_params(cls) if q.name != CONTEXT_PARAM]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                  inspect.Parameter.VAR_POSITIONAL)
    return bool(params) and params[0].kind in positional


def _takes_ctx(cls: type) -> bool:
    """Whether the constructor takes ``ctx`` by keyword."""
    return any(q.name == CONTEXT_PARAM and q.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                      inspect.Parameter.KEYWORD_ONLY)
               for q in _constructor_params(cls))
