"""troupe for Python: clients for a troupe broker, and Python actors.

* :class:`Client` — blocking calls: ``ask``, ``tell``, ``map``.
* :class:`AsyncClient` — the same for asyncio.
* :func:`actor` / :func:`method` — define actors that ``python3 -m troupe.worker``
  hosts; :class:`Context` — what their methods call other actors with.
* :mod:`troupe.protocol` — the wire protocol (docs/protocol.md).
"""

from .actor import actor, method, registered, retry
from .aio import AsyncClient
from .calls import Context, Pending
from .client import Client, default_endpoint
from .errors import (ActorError, BadArgs, BadRequest, CallCycle, DeadlineExceeded, Overloaded, StoreUnavailable,
                     TimeLimitExceeded, TroupeError, UnknownActor, UnknownMethod, WorkerLost, error_for)

__version__ = "0.1.0"

__all__ = [
    "ActorError", "AsyncClient", "BadArgs", "BadRequest", "CallCycle", "Client", "Context", "DeadlineExceeded",
    "Overloaded", "Pending", "StoreUnavailable", "TimeLimitExceeded", "TroupeError", "UnknownActor", "UnknownMethod", "WorkerLost", "actor",
    "default_endpoint", "error_for", "method", "registered", "retry",
]
