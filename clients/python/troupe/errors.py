"""Exceptions for REPLY error codes.

Every error a call can end with is a :class:`TroupeError`; the subclass tells
the code, ``.code`` carries it as a string and ``.message`` the text the
broker or worker sent.
"""

from __future__ import annotations

from .protocol import Status


class TroupeError(Exception):
    """A call ended with an error status. ``code`` is the protocol code."""

    code: str = ""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class UnknownActor(TroupeError):
    """No worker hosts the actor name, or the name is malformed."""

    code = Status.UNKNOWN_ACTOR.value


class UnknownMethod(TroupeError):
    """The actor has no method of that name."""

    code = Status.UNKNOWN_METHOD.value


class BadArgs(TroupeError):
    """Wrong number or types of arguments, or arguments over a limit."""

    code = Status.BAD_ARGS.value


class ActorError(TroupeError):
    """The method (or the actor's constructor) raised; ``message`` is its text."""

    code = Status.ACTOR_ERROR.value


class Overloaded(TroupeError):
    """The broker's queue for this request was full."""

    code = Status.OVERLOADED.value


class DeadlineExceeded(TroupeError):
    """The timeout passed before a result arrived (broker- or client-side)."""

    code = Status.DEADLINE_EXCEEDED.value


class WorkerLost(TroupeError):
    """The worker holding the request died or went silent."""

    code = Status.WORKER_LOST.value


class BadRequest(TroupeError):
    """The request was malformed or over a protocol limit."""

    code = Status.BAD_REQUEST.value


class TimeLimitExceeded(TroupeError):
    """The method ran past its hard time limit; its worker process was killed
    and replaced (the instance's in-memory state went with it)."""

    code = Status.TIME_LIMIT_EXCEEDED.value


class StoreUnavailable(TroupeError):
    """A durable message was not stored: the broker has no store, or cannot
    write it (disk full, read-only, corrupt). Nothing was confirmed."""

    code = Status.STORE_UNAVAILABLE.value


class CallCycle(TroupeError):
    """A request made from inside a method would wait on an instance already
    waiting up its own call chain (A -> B -> A); the message names the chain."""

    code = Status.CALL_CYCLE.value


_BY_CODE: dict[str, type[TroupeError]] = {
    cls.code: cls
    for cls in (UnknownActor, UnknownMethod, BadArgs, ActorError, Overloaded,
                DeadlineExceeded, WorkerLost, BadRequest, TimeLimitExceeded, StoreUnavailable,
                CallCycle)
}


def error_for(code: str, message: object) -> TroupeError:
    """The exception for a REPLY with error ``code`` and ``message``.

    An unknown code (from a newer peer) gives a plain :class:`TroupeError`
    that still carries it.
    """
    text = message if isinstance(message, str) else repr(message)
    cls = _BY_CODE.get(code)
    return cls(text) if cls is not None else TroupeError(text, code)
