"""Errors at the HTTP edge as RFC 9457 problem+json.

Domain code raises ``Problem`` (or Litestar's HTTP exceptions); anything unexpected becomes a
500 whose body reveals nothing but the request id, and is logged with its traceback.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from api.observability import current_request_id

log = logging.getLogger("homechef.http")

PROBLEM_JSON = "application/problem+json"


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


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    HTTPException: http_exception_handler,
    Exception: internal_error_handler,
}

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "MediaType", "Problem", "problem_body"]
