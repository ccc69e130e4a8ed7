"""JSON logs carrying the request id, with credentials redacted, and Prometheus metrics with
one registry per app."""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from bisect import bisect_left
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Histogram
from pythonjsonlogger.json import JsonFormatter

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
REQUEST_ID_HEADER = b"x-request-id"


def current_request_id() -> str | None:
    return _request_id.get()


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


REDACTED = "[REDACTED]"

# What a credential looks like in a logged line. uvicorn logs every WebSocket handshake with
# its path and query string ('"WebSocket /ws/courier?token=..." [accepted]'), access logs
# carry the full URL, and an exception's text can quote a header.
_SECRET_QUERY_RE = re.compile(
    r"(?P<keep>(?<![A-Za-z0-9_-])(?:access_token|refresh_token|id_token|token)=)"
    r"[^&;\s\"'#\\]+", re.I)
_AUTH_HEADER_RE = re.compile(
    r"(?P<keep>\bauthorization\b[\"']?\s*[:=,]\s*(?:b?[\"'])?(?:bearer|basic|token)?\s*)"
    r"[^\s\"',;\\)\]}]+", re.I)
_BEARER_RE = re.compile(r"(?P<keep>\bbearer[\s.,]+)[A-Za-z0-9._~+/=-]{8,}", re.I)
_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_KEEP_AND_REDACT = rf"\g<keep>{REDACTED}"
_MAYBE_SECRET = ("eyj", "token", "bearer", "authorization")  # lower case
_PLAIN = logging.Formatter()


def redact(text: str) -> str:
    """``text`` with every credential replaced by ``[REDACTED]``.

    Covers query parameters named ``token``, ``access_token``, ``refresh_token`` and
    ``id_token``; the value of an ``Authorization`` header (``Bearer``/``Basic`` scheme kept);
    a bearer token after ``bearer`` (a header value or a WebSocket subprotocol); and anything
    shaped like a JWT (``eyJ…`` in three base64url segments) wherever it stands. Never adds a
    quote or backslash, so redacting a serialised JSON line keeps it valid JSON.
    """
    lowered = text.lower()
    if not any(s in lowered for s in _MAYBE_SECRET):
        return text
    text = _SECRET_QUERY_RE.sub(_KEEP_AND_REDACT, text)
    text = _AUTH_HEADER_RE.sub(_KEEP_AND_REDACT, text)
    text = _BEARER_RE.sub(_KEEP_AND_REDACT, text)
    return _JWT_RE.sub(REDACTED, text)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message (and exception text) with :func:`redact` applied.

    Installed on the root handler and on uvicorn's loggers by :func:`configure_logging`, so
    any handler (ours, or one a test or an operator adds to uvicorn's loggers) sees the
    redacted text. Always lets the record through.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: let the formatter report it as logging does
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(_PLAIN.formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


# Loggers that log URLs: uvicorn's handshake lines ("uvicorn.error") and access log.
REDACTED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


class _RedactingJsonFormatter(JsonFormatter):
    """The JSON line, redacted last: extra fields and tracebacks included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(level: str = "INFO") -> None:
    """One JSON object per line on stderr, each with the current request id; credentials
    (tokens in URLs, ``Authorization`` values, JWTs) never reach the output (:func:`redact`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _RedactingJsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(_RequestIdFilter())
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


class Metrics:
    """The app's Prometheus registry and the HTTP metrics every route reports."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "http_requests_total", "HTTP requests handled",
            ["method", "route", "status"], registry=self.registry,
        )
        self.http_latency = Histogram(
            "http_request_duration_seconds", "HTTP request latency",
            ["method", "route"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )


def observe_many(histogram: Histogram, observations: Iterable[tuple[float, int]]) -> None:
    """`histogram.observe(value)`, `count` times, for each (value, count): one lock per
    bucket touched and one for the sum, instead of two per observation. The indexer observes
    every fix it files. It writes the client's bucket counters itself (non-cumulative, as
    `observe` keeps them); tests/unit/api/test_observability.py checks the result equals
    `observe`'s, so a client that changes them fails there."""
    bounds: list[float] = histogram._upper_bounds
    per_bucket: dict[int, int] = {}
    total = 0.0
    for value, count in observations:
        i = bisect_left(bounds, value)  # the first bound >= value, as `observe` picks
        per_bucket[i] = per_bucket.get(i, 0) + count
        total += value * count
    if not per_bucket:
        return
    histogram._sum.inc(total)
    for i, count in per_bucket.items():
        histogram._buckets[i].inc(count)


def _route_label(scope: Scope) -> str:
    handler = scope.get("route_handler")
    paths = getattr(handler, "paths", None)
    if paths:
        # The template, not the concrete path: ids must not explode label cardinality.
        return str(sorted(paths)[0])
    return "unmatched"


def request_context_middleware(metrics: Metrics) -> Any:
    """ASGI middleware factory: request id in/out, JSON access log, HTTP metrics."""

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                rid = _incoming_request_id(scope) or uuid.uuid4().hex
                token = _request_id.set(rid)
                try:
                    await app(scope, receive, send)
                finally:
                    _request_id.reset(token)
                return
            rid = _incoming_request_id(scope) or uuid.uuid4().hex
            token = _request_id.set(rid)
            status = 500
            started = time.perf_counter()

            async def send_wrapper(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    headers = list(message.get("headers", []))
                    headers.append((REQUEST_ID_HEADER, rid.encode()))
                    message = {**message, "headers": headers}
                await send(message)

            try:
                await app(scope, receive, send_wrapper)
            finally:
                elapsed = time.perf_counter() - started
                route = _route_label(scope)
                method = str(scope.get("method", "GET"))
                metrics.http_requests.labels(method, route, str(status)).inc()
                metrics.http_latency.labels(method, route).observe(elapsed)
                _request_id.reset(token)

        return middleware

    return factory


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER:
            rid = value.decode("latin-1")
            # Accept a caller's id only if it is short and printable (it lands in logs).
            if 0 < len(rid) <= 64 and rid.isprintable():
                return rid
    return None
