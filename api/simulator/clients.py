"""HTTP accounts against commerce (register / log in / refresh), as a real app holds them,
and how their tokens authenticate a socket."""

from __future__ import annotations

import time
from typing import Any

import httpx
from websockets.typing import Subprotocol

from api.auth import WS_BEARER_SUBPROTOCOL

V1 = "/api/v1"
REFRESH_AFTER_S = 600.0
"""Access tokens live 15 min; refresh well before, so long demo runs keep working."""


class SimulatorError(RuntimeError):
    """The system refused something the simulator needs (the message says what)."""


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
        r = await commerce.post(f"{V1}/auth/register", json={
            "email": email, "password": password, "role": role, "first_name": first_name})
        return cls(commerce, expect(r, 201))

    @classmethod
    async def login(cls, commerce: httpx.AsyncClient, email: str, password: str) -> Account:
        r = await commerce.post(f"{V1}/auth/login", json={"email": email, "password": password})
        return cls(commerce, expect(r, 200))
