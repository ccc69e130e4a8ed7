"""Identity shared by core and commerce: JWTs per the seed's §7.2 and role guards.

Every route is authenticated unless it opts out with ``opt={"public": True}``; routes then
declare the roles they admit with ``guards=[roles(...)]``. Core trusts a valid token's
``sub``/``role`` and never calls commerce to accept it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, cast

import jwt
import msgspec
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.base import DefineMiddleware
from litestar.types import Guard, Message, Receive, Scope, Send

ISSUER = "homechef-api"
WS_BEARER_SUBPROTOCOL = "bearer"
"""A WebSocket client offers the subprotocols ``["bearer", <access token>]``; the server
accepts with ``bearer`` (browsers cannot set ``Authorization`` on a WebSocket)."""
ACCESS_TOKEN_TTL_S = 15 * 60
PUBLIC_OPT_KEY = "public"


class Role(StrEnum):
    CUSTOMER = "customer"
    CHEF = "chef"
    DELIVERY = "delivery"
    ADMIN = "admin"
    FLEET_MANAGER = "fleet_manager"


class Claims(msgspec.Struct, frozen=True, kw_only=True):
    """The access token's payload (seed §7.2)."""

    sub: str
    role: Role
    email: str = ""
    name: str = ""
    """How staff screens name the user (first name and last initial); core shows it in the
    fleet console instead of the id."""
    permissions: list[str] = msgspec.field(default_factory=list)
    iat: int
    exp: int
    iss: str = ISSUER
    jti: str = ""


class Identity(msgspec.Struct, frozen=True):
    """Who is calling: the authenticated user id and role."""

    user_id: str
    role: Role
    email: str = ""
    name: str = ""


class TokenCodec:
    """Signs and verifies access tokens (HS256 with the shared secret; RS256 with a key pair)."""

    def __init__(
        self,
        secret: str | None = None,
        *,
        private_key: str | None = None,
        public_key: str | None = None,
        ttl_s: int = ACCESS_TOKEN_TTL_S,
        leeway_s: int = 10,
    ) -> None:
        if public_key:
            self._alg = "RS256"
            self._sign_key: str | None = private_key
            self._verify_key = public_key
        elif secret:
            self._alg = "HS256"
            self._sign_key = secret
            self._verify_key = secret
        else:
            raise ValueError("a JWT secret or an RS256 public key is required")
        self.ttl_s = ttl_s
        self.leeway_s = leeway_s

    def issue(
        self,
        user_id: str,
        role: Role | str,
        *,
        email: str = "",
        name: str = "",
        permissions: list[str] | None = None,
        now_s: int | None = None,
        ttl_s: int | None = None,
    ) -> str:
        if self._sign_key is None:
            raise ValueError("this codec only verifies (no private key)")
        iat = int(time.time()) if now_s is None else now_s
        claims = Claims(
            sub=user_id, role=Role(role), email=email, name=name,
            permissions=permissions or [],
            iat=iat, exp=iat + (self.ttl_s if ttl_s is None else ttl_s),
            jti=uuid.uuid4().hex,
        )
        return jwt.encode(msgspec.to_builtins(claims), self._sign_key, algorithm=self._alg)

    def verify(self, token: str) -> Claims:
        """Decode and check signature, expiry and issuer; raise NotAuthorizedException."""
        try:
            payload = jwt.decode(
                token, self._verify_key, algorithms=[self._alg], issuer=ISSUER,
                leeway=self.leeway_s, options={"require": ["sub", "role", "exp", "iat", "iss"]},
            )
            return msgspec.convert(payload, Claims)
        except jwt.ExpiredSignatureError:
            raise NotAuthorizedException("token expired") from None
        except (jwt.InvalidTokenError, msgspec.ValidationError) as exc:
            raise NotAuthorizedException(f"invalid token: {exc}") from None


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The caller's access token, from (first found wins):

    1. ``Authorization: Bearer <token>``;
    2. a WebSocket's ``Sec-WebSocket-Protocol: bearer, <token>`` (see `subprotocol_token`);
    3. ``?token=<token>``: the old WebSocket form, kept for compatibility. Logs never show it
       (api/observability.py redacts it), but proxies' logs might: prefer 1 or 2.
    """
    header = connection.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    token = subprotocol_token(connection.scope)
    if token is not None:
        return token
    token = connection.query_params.get("token")
    return token or None


def subprotocol_token(scope: Scope) -> str | None:
    """The token a WebSocket client offered as the subprotocol after ``bearer``, if any."""
    if scope["type"] != "websocket":
        return None
    offered = cast("Sequence[str]", scope.get("subprotocols") or ())
    for i, name in enumerate(offered[:-1]):
        if name == WS_BEARER_SUBPROTOCOL and offered[i + 1]:
            return offered[i + 1]
    return None


class JWTAuthMiddleware(AbstractAuthenticationMiddleware):
    """Authenticates every HTTP and WebSocket connection not marked public.

    A socket authenticated by its ``bearer`` subprotocol is accepted with that subprotocol
    (a client that offers subprotocols fails the handshake unless the server picks one), so
    handlers just call ``socket.accept()``.
    """

    def __init__(self, app: Any, codec: TokenCodec, **kwargs: Any) -> None:
        super().__init__(app, exclude_from_auth_key=PUBLIC_OPT_KEY, exclude=["^/schema"], **kwargs)
        self.codec = codec

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if subprotocol_token(scope) is not None:
            send = _accept_with_bearer(send)
        await super().__call__(scope, receive, send)

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        token = bearer_token(connection)
        if token is None:
            raise NotAuthorizedException("missing bearer token")
        claims = self.codec.verify(token)
        return AuthenticationResult(
            user=Identity(claims.sub, claims.role, claims.email, claims.name), auth=claims
        )


def _accept_with_bearer(send: Send) -> Send:
    """``send`` that picks the ``bearer`` subprotocol when the handler accepts with none."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "websocket.accept" and not message.get("subprotocol"):
            message = {**message, "subprotocol": WS_BEARER_SUBPROTOCOL}
        await send(message)

    return wrapped


def auth_middleware(codec: TokenCodec) -> DefineMiddleware:
    return DefineMiddleware(JWTAuthMiddleware, codec=codec)


def roles(*allowed: Role) -> Guard:
    """Guard admitting only the given roles (403 otherwise)."""
    allowed_set = frozenset(allowed)

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        user = connection.scope.get("user")
        if not isinstance(user, Identity):
            raise NotAuthorizedException("authentication required")
        if user.role not in allowed_set:
            raise PermissionDeniedException(
                f"role {user.role.value!r} may not do this "
                f"(allowed: {', '.join(sorted(r.value for r in allowed_set))})"
            )

    guard.allowed_roles = allowed_set  # type: ignore[attr-defined]  # read by route-audit test
    return guard


def identity_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Identity:
    user = connection.scope.get("user")
    if not isinstance(user, Identity):
        raise NotAuthorizedException("authentication required")
    return user


ALL_ROLES = tuple(Role)
STAFF = (Role.ADMIN, Role.FLEET_MANAGER)


IdentityDep = NamedDependency[Identity]
"""A handler parameter named ``identity`` gets the caller's verified identity."""
