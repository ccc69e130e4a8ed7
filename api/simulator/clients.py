"""HTTP as a real app speaks it: a transport that retries what an outage interrupts, accounts
against commerce (register / log in / refresh), and how their tokens authenticate a socket."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
    wait_exponential,
    wait_random,
)
from websockets.typing import Subprotocol

from api.auth import WS_BEARER_SUBPROTOCOL

V1 = "/api/v1"
REFRESH_AFTER_S = 600.0
"""Access tokens live 15 min; refresh well before, so long demo runs keep working."""


log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({502, 503, 504})
"""The server (or a proxy) says it did not do the work: a store or the service is down."""
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
REPLAYABLE = {"homechef_replayable": True}
"""Request extensions of a POST that is safe to send twice (logging in, confirming a payment)."""
_ATTEMPTS = 5
_PAUSE_S = 1.0


class SimulatorError(RuntimeError):
    """The system refused something the simulator needs (the message says what)."""


def _replayable(request: httpx.Request) -> bool:
    """May this request be sent again when the first attempt's outcome is unknown (the
    connection broke after it was sent)? Idempotent methods, and POSTs that carry an
    Idempotency-Key (the server answers a replay with the first result)."""
    return (request.method in _SAFE_METHODS or "idempotency-key" in request.headers
            or bool(request.extensions.get("homechef_replayable")))


class RetryingTransport(httpx.AsyncBaseTransport):
    """Retries, as a mobile app does, what an outage interrupts: a connection refused or a
    connect timeout (the request never arrived) and a 502/503/504 (the server did not do it),
    honouring Retry-After; a connection lost after sending only for replayable requests.
    Gives up after `budget_s` and returns (or raises) the last outcome, so callers see the
    real error. Everything else (4xx, other 5xx) is returned at once."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None, *,
                 budget_s: float = 60.0, first_wait_s: float = 0.2, max_wait_s: float = 4.0,
                 limits: httpx.Limits | None = None) -> None:
        self.inner = inner or httpx.AsyncHTTPTransport(
            limits=limits or httpx.Limits(max_connections=100, max_keepalive_connections=100))
        self.budget_s = budget_s
        self.max_wait_s = max_wait_s
        self._backoff = (wait_exponential(multiplier=first_wait_s, max=max_wait_s)
                         + wait_random(0, first_wait_s))
        self.retries = 0
        """Requests sent again (a figure the fault tests print)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        broken: tuple[type[BaseException], ...] = (
            (httpx.TransportError,) if _replayable(request)
            else (httpx.ConnectError, httpx.ConnectTimeout))
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(broken) | retry_if_result(_unavailable),
            stop=stop_after_delay(self.budget_s), wait=self._wait,
            before_sleep=self._count, retry_error_callback=_last_outcome)
        response: httpx.Response = await retrying(self._once, request)
        return response

    async def _once(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if _unavailable(response):
            await response.aread()  # frees the connection; the body is kept for the caller
        return response

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            after = outcome.result().headers.get("retry-after", "")
            if after.isdigit():
                return min(float(after), self.max_wait_s)
        return float(self._backoff(state))

    def _count(self, state: RetryCallState) -> None:
        self.retries += 1
        if state.attempt_number in (1, 10, 50):
            outcome = state.outcome
            what = (repr(outcome.exception()) if outcome is not None and outcome.failed
                    else f"{outcome.result().status_code if outcome else '?'}")
            log.info("retrying %s %s after %s (attempt %d)", state.args[0].method,
                     state.args[0].url.path, what, state.attempt_number)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _unavailable(response: httpx.Response) -> bool:
    return response.status_code in RETRYABLE_STATUS


def _last_outcome(state: RetryCallState) -> httpx.Response:
    """Out of budget: the last response, or the last error raised again."""
    assert state.outcome is not None
    response: httpx.Response = state.outcome.result()
    return response


def expect(r: httpx.Response, *codes: int) -> Any:
    if r.status_code not in codes:
        raise SimulatorError(f"{r.request.method} {r.request.url.path} -> {r.status_code}: "
                             f"{r.text[:300]}")
    return r.json()


def socket_auth(token: str) -> list[Subprotocol]:
    """The subprotocols that authenticate a socket with ``token`` (``bearer`` then the token,
    see api/auth.py): the token never goes in the URL, where access logs would keep it."""
    return [Subprotocol(WS_BEARER_SUBPROTOCOL), Subprotocol(token)]


class Account:
    """A logged-in user: bearer headers, refreshed through /auth/refresh when old."""

    def __init__(self, commerce: httpx.AsyncClient, pair: dict[str, Any]) -> None:
        self.commerce = commerce
        self.user_id: str = pair["user"]["id"]
        self.role: str = pair["user"]["role"]
        self._set(pair)

    def _set(self, pair: dict[str, Any]) -> None:
        self.access_token: str = pair["access_token"]
        self.refresh_token: str = pair["refresh_token"]
        self.issued = time.monotonic()

    async def token(self) -> str:
        if time.monotonic() - self.issued > REFRESH_AFTER_S:
            r = await self.commerce.post(f"{V1}/auth/refresh",
                                         json={"refresh_token": self.refresh_token})
            self._set(expect(r, 200))
        return self.access_token

    async def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token()}"}

    @classmethod
    async def register(cls, commerce: httpx.AsyncClient, email: str, password: str, role: str,
                       first_name: str) -> Account:
        """Register; when the connection broke after sending (did it register?), send it
        again and log in if the e-mail is taken by then."""
        body = {"email": email, "password": password, "role": role, "first_name": first_name}
        for attempt in range(_ATTEMPTS):
            try:
                r = await commerce.post(f"{V1}/auth/register", json=body)
            except httpx.TransportError:
                if attempt + 1 == _ATTEMPTS:
                    raise
                await asyncio.sleep(_PAUSE_S)
                continue
            if r.status_code == 409 and attempt > 0:
                return await cls.login(commerce, email, password)
            return cls(commerce, expect(r, 201))
        raise AssertionError("unreachable: the last attempt returns or raises")

    @classmethod
    async def login(cls, commerce: httpx.AsyncClient, email: str, password: str) -> Account:
        r = await commerce.post(f"{V1}/auth/login", json={"email": email, "password": password},
                                extensions=REPLAYABLE)
        return cls(commerce, expect(r, 200))
