"""Which service owns each public path: the one routing table, as data.

The embedded gateway (`api/gateway/app.py`) matches requests against it and
`api/gateway/nginx.py` renders the same table as nginx ``location`` blocks for
``docker-compose.yml`` (`deploy/nginx.conf`, checked against it by a test), so the two
entry points cannot drift apart. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Upstream = Literal["core", "commerce"]
Kind = Literal["api", "ws", "page"]
"""``api``: the public JSON API (rate-limited per IP and per user); ``ws``: WebSocket
upgrades (rate-limited per IP on opening); ``page``: static files and service documents."""


@dataclass(frozen=True, slots=True)
class Route:
    pattern: str
    """A regular expression anchored at the path's start (``re`` and nginx PCRE alike)."""
    upstream: Upstream
    kind: Kind
    upload: bool = False
    """Takes file uploads: bodies up to ``GATEWAY_UPLOAD_MAX_BYTES`` instead of
    ``GATEWAY_BODY_MAX_BYTES``."""


ROUTES: tuple[Route, ...] = (
    # Core: GPS, dispatch, tracking, routing, the console and every socket.
    Route(r"^/api/v1/orders/[^/]+/(track|share)$", "core", "api"),
    Route(r"^/api/v1/track/", "core", "api"),  # a share link's order (the token is the key)
    Route(r"^/api/v1/delivery/(availability|hint|locations|offers|orders)(/|$)", "core", "api"),
    Route(r"^/api/v1/(fleet|routing|console)(/|$)", "core", "api"),
    Route(r"^/ws/", "core", "ws"),
    Route(r"^/(console|kitchen|courier|track|apps)(/|$)", "core", "page"),  # the people's apps
    # Commerce's photo uploads: the larger body limit (docs/photos.md).
    Route(r"^/api/v1/(chef/photos|chef/menu/[^/]+/photo|orders/[^/]+/proof)$", "commerce", "api",
          upload=True),
    # Commerce: everything else of the public API (accounts, chefs, menus, cart, orders,
    # payments, reviews, favourites, search, admin; /delivery/profile and /earnings).
    Route(r"^/api/v1/", "commerce", "api"),
    Route(r"^/schema(-ui)?(/|$)", "commerce", "page"),  # API docs and their assets
)
"""First match wins: the specific core paths come before commerce's catch-all."""

_COMPILED = tuple((re.compile(r.pattern), r) for r in ROUTES)


def route_for(path: str) -> Route | None:
    """The route owning ``path``, or None when no service serves it (the gateway's 404)."""
    for regex, route in _COMPILED:
        if regex.match(path):
            return route
    return None


__all__ = ["ROUTES", "Kind", "Route", "Upstream", "route_for"]
