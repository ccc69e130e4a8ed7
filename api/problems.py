"""Errors at the HTTP edge as RFC 9457 problem+json.

Domain code raises ``Problem`` (or Litestar's HTTP exceptions); a store that cannot be reached
(Redis, NATS/JetStream, PostgreSQL: see `STORE_OUTAGES`) becomes a retryable 503 with
``Retry-After``; anything else unexpected becomes a 500 whose body reveals nothing but the
request id, and is logged with its traceback.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import asyncpg
import nats.errors
import nats.js.errors
import redis.exceptions
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from api.observability import current_request_id

log = logging.getLogger("homechef.http")

PROBLEM_JSON = "application/problem+json"

STORE_RETRY_AFTER_S = 2
"""``Retry-After`` of a 503 for a store outage: short, since Redis, NATS and PostgreSQL
restarts take seconds and every client retries (the client decides how often to give up)."""

class PostgresUnreachable(ConnectionError):
    """A new PostgreSQL connection could not be opened (refused, reset, timed out): raised by
    the pool's connect (api/resources.py) so the outage names postgres, not just "store"."""


STORE_OUTAGES: dict[type[Exception], str] = {
    # Redis: refused/reset/pool exhausted (MaxConnectionsError, "No connection available"),
    # loading its dataset after a restart (BusyLoadingError), a read or connect timeout, a
    # replica that has not been promoted yet.
    redis.exceptions.ConnectionError: "redis",
    redis.exceptions.TimeoutError: "redis",
    redis.exceptions.ReadOnlyError: "redis",
    redis.exceptions.TryAgainError: "redis",
    redis.exceptions.ClusterDownError: "redis",
    # NATS / JetStream: no server, reconnecting or closed, no JetStream responder, timeouts.
    nats.errors.NoServersError: "nats",
    nats.errors.TimeoutError: "nats",
    nats.errors.NoRespondersError: "nats",
    nats.errors.StaleConnectionError: "nats",
    nats.errors.OutboundBufferLimitError: "nats",
    nats.errors.ConnectionClosedError: "nats",
    nats.errors.ConnectionDrainingError: "nats",
    nats.errors.ConnectionReconnectingError: "nats",
    nats.js.errors.ServiceUnavailableError: "nats",
    nats.js.errors.NoStreamResponseError: "nats",
    # PostgreSQL: connection lost or refused, server starting or shutting down, full.
    asyncpg.PostgresConnectionError: "postgres",
    asyncpg.CannotConnectNowError: "postgres",
    asyncpg.AdminShutdownError: "postgres",
    asyncpg.CrashShutdownError: "postgres",
    asyncpg.TooManyConnectionsError: "postgres",
    asyncpg.InterfaceError: "postgres",  # "connection is closed" and kin
    # A pooled connection whose server process was terminated mid-use can fail with asyncpg's
    # protocol-state error ("cannot switch to state 11; another operation is in progress"):
    # the connection is broken, a retry gets a fresh one.
    asyncpg.InternalClientError: "postgres",
    PostgresUnreachable: "postgres",
    # Socket-level failures and timeouts no client library wrapped (a pool's acquire timeout,
    # a refused reconnect): some store, not a bug in the handler.
    ConnectionError: "store",
    TimeoutError: "store",
}
"""Exceptions that mean "a store cannot be reached now" (the most specific class wins), with
the store's name. Everything else, including asyncpg's DataError (an argument the query
cannot encode: a bug or unvalidated input), stays a 500."""

_NOT_OUTAGES: tuple[type[Exception], ...] = (asyncpg.DataError,)


def outage_store(exc: BaseException) -> str | None:
    """The store whose outage ``exc`` reports, or None when it is no outage."""
    if isinstance(exc, _NOT_OUTAGES):
        return None
    for cls in type(exc).__mro__:
        store = STORE_OUTAGES.get(cls)
        if store is not None:
            return store
    return None


class Problem(HTTPException):
    """An HTTP error with a machine-readable ``code`` (becomes the problem ``type``)."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail=detail, status_code=status_code, headers=headers)
        self.code = code
        self.problem_extra = extra or {}


def problem_body(
    status: int, detail: str, *, code: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The problem+json document (shared by HTTP handlers and WebSocket close reasons)."""
    body: dict[str, Any] = {
        "type": f"urn:homechef:problem:{code}" if code else "about:blank",
        "title": HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error",
        "status": status,
        "detail": detail,
    }
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    return body


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    extra: dict[str, Any] = {}
    code: str | None = None
    if isinstance(exc, Problem):
        code = exc.code
        extra.update(exc.problem_extra)
    elif isinstance(exc, ValidationException):
        code = "validation"
        if exc.extra:
            extra["errors"] = exc.extra
    detail = exc.detail or HTTPStatus(status).phrase
    body = problem_body(status, detail, code=code, instance=request.url.path, **extra)
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=exc.headers)


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    body = problem_body(
        500, "internal error; quote the request_id when reporting it",
        code="internal", instance=request.url.path,
    )
    return Response(body, status_code=500, media_type=PROBLEM_JSON)


def store_unavailable_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """503 + Retry-After for a store outage (no traceback: one outage fails many requests)."""
    store = outage_store(exc)
    if store is None:
        return internal_error_handler(request, exc)
    log.warning("store unavailable (%s) on %s %s: %s: %s", store, request.method,
                request.url.path, type(exc).__name__, str(exc)[:200])
    body = problem_body(
        503, f"a backing store ({store}) is unavailable; retry after {STORE_RETRY_AFTER_S} s",
        code="store_unavailable", instance=request.url.path, store=store,
        retry_after_s=STORE_RETRY_AFTER_S,
    )
    return Response(body, status_code=503, media_type=PROBLEM_JSON,
                    headers={"Retry-After": str(STORE_RETRY_AFTER_S)})


_TOO_DEEP = "while deserializing an object"
"""The end of msgspec's RecursionError message: a request body nested deeper than it decodes."""


def too_deep_handler(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Any]:
    """400 for a JSON body nested too deeply to decode (the client's mistake, like malformed
    JSON); any other RecursionError is a bug (500)."""
    if not str(exc).endswith(_TOO_DEEP):
        return internal_error_handler(request, exc)
    body = problem_body(400, "JSON body is nested too deeply", code="malformed",
                        instance=request.url.path)
    return Response(body, status_code=400, media_type=PROBLEM_JSON)


def nul_in_text_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """400 for text PostgreSQL cannot store (a NUL character): it can only have come from the
    request, in a query parameter or a body field."""
    body = problem_body(400, "text must not contain NUL (\\u0000) characters",
                        code="invalid_text", instance=request.url.path)
    return Response(body, status_code=400, media_type=PROBLEM_JSON)


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    HTTPException: http_exception_handler,
    RecursionError: too_deep_handler,
    asyncpg.CharacterNotInRepertoireError: nul_in_text_handler,
    **dict.fromkeys(STORE_OUTAGES, store_unavailable_handler),
    **dict.fromkeys(_NOT_OUTAGES, internal_error_handler),
    Exception: internal_error_handler,
}

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "STORE_OUTAGES", "STORE_RETRY_AFTER_S",
           "MediaType", "PostgresUnreachable", "Problem", "outage_store", "problem_body"]
