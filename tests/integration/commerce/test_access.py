"""Access control: the seed's §7.3 permissions matrix, cell by cell for every role, a route
audit (every route is public or declares its roles), and IDOR probes on every resource with
an id (another user's resource is 404, never 403 and never data)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from api.auth import Role, TokenCodec
from tests.integration.commerce.conftest import Api

V1 = "/api/v1"
PUBLIC = "public"
C, CH, D, A, FM = (Role.CUSTOMER, Role.CHEF, Role.DELIVERY, Role.ADMIN, Role.FLEET_MANAGER)
ROLES = (C, CH, D, A, FM)
X = "00000000-0000-0000-0000-000000000001"  # an id that exists nowhere

# (§7.3 row, method, path, roles admitted). The seed's matrix has no fleet_manager column:
# fleet managers get only what every user has (own profile); their console is core's.
# "Delivery Tasks" (delivery RW, chef R) are core's /delivery/orders and /delivery/offers;
# commerce exposes the chef's read view through /chef/orders (delivery_id, timestamps).
# "Browse Chefs" is public by the lead's decision (the seed lists delivery as "-").
MATRIX: list[tuple[str, str, str, frozenset[Role] | str]] = [
    ("Browse Chefs", "GET", "/chefs", PUBLIC),
    ("Browse Chefs", "GET", "/search?q=dosa", PUBLIC),
    ("Browse Chefs", "GET", f"/chefs/{X}", PUBLIC),
    ("Browse Chefs", "GET", f"/chefs/{X}/reviews", PUBLIC),
    ("Menu Items (R)", "GET", f"/chefs/{X}/menu", PUBLIC),
    ("Own Profile", "GET", "/users/me", frozenset(ROLES)),
    ("Own Profile", "PUT", "/users/me", frozenset(ROLES)),
    ("Own Profile", "GET", "/users/me/addresses", frozenset(ROLES)),
    ("Own Profile", "POST", "/users/me/addresses", frozenset(ROLES)),
    ("Own Profile", "PUT", f"/users/me/addresses/{X}", frozenset(ROLES)),
    ("Own Profile", "DELETE", f"/users/me/addresses/{X}", frozenset(ROLES)),
    ("Own Profile", "GET", "/users/me/notifications", frozenset(ROLES)),
    ("Own Profile", "PUT", "/users/me/notifications/1/read", frozenset(ROLES)),
    ("Own Profile", "GET", "/users/me/notification-preferences", frozenset(ROLES)),
    ("Own Profile", "PUT", "/users/me/notification-preferences", frozenset(ROLES)),
    ("Own Profile", "GET", "/users/me/push-subscriptions", frozenset(ROLES)),
    ("Own Profile", "GET", "/users/me/push-subscriptions/key", frozenset(ROLES)),
    ("Own Profile", "POST", "/users/me/push-subscriptions", frozenset(ROLES)),
    ("Own Profile", "DELETE", "/users/me/push-subscriptions/1", frozenset(ROLES)),
    ("Own Profile", "POST", "/auth/logout", frozenset(ROLES)),
    ("Own Profile", "POST", "/auth/send-otp", frozenset(ROLES)),
    ("Own Profile", "POST", "/auth/verify-otp", frozenset(ROLES)),
    ("Own Profile", "GET", "/delivery/profile", frozenset({D})),
    ("Own Profile", "PUT", "/delivery/profile", frozenset({D})),
    ("Own Orders", "POST", "/orders", frozenset({C})),
    ("Own Orders", "GET", "/orders", frozenset({C})),
    ("Own Orders", "GET", f"/orders/{X}", frozenset({C})),
    ("Own Orders", "PUT", f"/orders/{X}/cancel", frozenset({C})),
    ("Own Orders", "POST", f"/orders/{X}/review", frozenset({C})),
    ("Own Orders", "GET", "/reviews", frozenset({C})),
    ("Own Orders", "GET", "/cart", frozenset({C})),
    ("Own Orders", "POST", "/cart/items", frozenset({C})),
    ("Own Orders", "PUT", f"/cart/items/{X}", frozenset({C})),
    ("Own Orders", "DELETE", f"/cart/items/{X}", frozenset({C})),
    ("Own Orders", "DELETE", "/cart", frozenset({C})),
    ("Own Orders", "POST", "/payments/intent", frozenset({C})),
    ("Own Orders", "POST", "/payments/confirm", frozenset({C})),
    ("Own Orders", "GET", f"/payments/{X}", frozenset({C})),
    ("Own Orders", "GET", "/chef/orders", frozenset({CH})),
    ("Own Orders", "GET", f"/chef/orders/{X}", frozenset({CH})),
    ("Own Orders", "PUT", f"/chef/orders/{X}/status", frozenset({CH})),
    ("Own Orders", "GET", "/admin/orders", frozenset({A})),
    ("Own Orders", "GET", f"/admin/orders/{X}", frozenset({A})),
    ("Own Orders", "POST", f"/admin/payments/{X}/refund", frozenset({A})),
    ("Menu Items", "GET", "/chef/menu", frozenset({CH})),
    ("Menu Items", "POST", "/chef/menu", frozenset({CH, A})),
    ("Menu Items", "PUT", f"/chef/menu/{X}", frozenset({CH, A})),
    ("Menu Items", "DELETE", f"/chef/menu/{X}", frozenset({CH, A})),
    ("Chef Profile", "GET", "/chef/profile", frozenset({CH})),
    ("Chef Profile", "PUT", "/chef/profile", frozenset({CH})),
    ("Chef Profile", "PUT", "/chef/availability", frozenset({CH})),
    ("Chef Profile", "PUT", f"/admin/chefs/{X}", frozenset({A})),
    ("All Users", "GET", "/admin/users", frozenset({A})),
    ("All Users", "GET", f"/admin/users/{X}", frozenset({A})),
    ("All Users", "PUT", f"/admin/users/{X}", frozenset({A})),
    ("All Users", "DELETE", f"/admin/users/{X}", frozenset({A})),
    ("All Users", "GET", f"/admin/users/{X}/notification-preferences", frozenset({A})),
    ("All Chefs", "GET", "/admin/chefs", frozenset({A})),
    ("All Chefs", "PUT", f"/admin/chefs/{X}/verify", frozenset({A})),
    ("Platform Config", "GET", "/admin/promo-codes", frozenset({A})),
    ("Platform Config", "POST", "/admin/promo-codes", frozenset({A})),
    ("Platform Config", "PUT", f"/admin/promo-codes/{X}", frozenset({A})),
    ("Platform Config", "DELETE", f"/admin/promo-codes/{X}", frozenset({A})),
    ("Analytics (limited)", "GET", "/chef/earnings", frozenset({CH})),
    ("Analytics (limited)", "GET", "/chef/analytics", frozenset({CH})),
    ("Analytics (limited)", "GET", "/delivery/earnings", frozenset({D})),
    ("Analytics (full)", "GET", "/admin/dashboard", frozenset({A})),
    ("Analytics (full)", "GET", "/admin/analytics", frozenset({A})),
    # Seed §3.4: customers save chefs and dishes; their own list only.
    # Seed §8 chat: every role may ask; only the order's parties and staff get it (IDOR
    # probes: others 404).
    ("Own Orders", "GET", f"/orders/{X}/messages", frozenset(ROLES)),
    ("Own Orders", "POST", f"/orders/{X}/messages", frozenset(ROLES)),
    ("Own Orders", "PUT", f"/orders/{X}/messages/read", frozenset(ROLES)),
    ("Favourites", "GET", "/users/me/favorites", frozenset({C})),
    ("Favourites", "PUT", f"/users/me/favorites/chefs/{X}", frozenset({C})),
    ("Favourites", "DELETE", f"/users/me/favorites/chefs/{X}", frozenset({C})),
    ("Favourites", "PUT", f"/users/me/favorites/dishes/{X}", frozenset({C})),
    ("Favourites", "DELETE", f"/users/me/favorites/dishes/{X}", frozenset({C})),
    # Photos: chefs upload to their own kitchen and dishes; proof of delivery by the order's
    # courier, read by its customer, courier and staff (others 404); shop-window photos
    # are public like browsing.
    ("Photos", "POST", "/chef/photos", frozenset({CH})),
    ("Photos", "DELETE", f"/chef/photos/{X}", frozenset({CH})),
    ("Photos", "POST", f"/chef/menu/{X}/photo", frozenset({CH})),
    ("Photos", "POST", f"/orders/{X}/proof", frozenset({D})),
    ("Photos", "GET", f"/orders/{X}/proof", frozenset(ROLES)),
    ("Photos", "GET", f"/chefs/{X}/photos", PUBLIC),
    ("Photos", "GET", f"/photos/{X}", PUBLIC),
    # Payouts: chefs and couriers, their own money only; admins run the weeks.
    ("Payouts", "PUT", "/payouts/bank-account", frozenset({CH, D})),
    ("Payouts", "GET", "/payouts/bank-account", frozenset({CH, D})),
    ("Payouts", "GET", "/payouts/statement", frozenset({CH, D})),
    ("Payouts", "POST", "/payouts", frozenset({CH, D})),
    ("Payouts", "POST", "/admin/payouts/runs", frozenset({A})),
    ("Payouts", "GET", "/admin/payouts", frozenset({A})),
]
PUBLIC_AUTH = {"/auth/register", "/auth/login", "/auth/login/social", "/auth/refresh",
               "/auth/forgot-password", "/auth/reset-password"}


@pytest.fixture(scope="module")
async def users(api: Api) -> dict[Role, dict[str, str]]:
    """A real user per role (fleet managers have no self-registration: a token only)."""
    out = {r: (await api.register(r.value))["headers"] for r in (C, CH, D)}
    out[A] = (await api.admin())["headers"]
    out[FM] = api.as_role(FM.value)
    return out


@pytest.mark.parametrize("role", [*ROLES, None], ids=[*(r.value for r in ROLES), "anonymous"])
async def test_permissions_matrix(api: Api, users: dict[Role, dict[str, str]],
                                  role: Role | None) -> None:
    """Every cell: an admitted role is never refused (no 401/403); any other role is 403;
    without a token every non-public route is 401."""
    headers = users[role] if role else {}
    wrong = []
    for row, method, path, allowed in MATRIX:
        r = await api.client.request(method, V1 + path, headers=headers, json={})
        if allowed == PUBLIC or (role is not None and role in allowed):
            ok = r.status_code not in (401, 403) and r.status_code < 500
        else:
            ok = r.status_code == (403 if role else 401)
            ok = ok and r.headers["content-type"].startswith("application/problem+json")
        if not ok:
            wrong.append((row, method, path, r.status_code))
    assert wrong == []


def test_every_route_declares_its_roles(api: Api) -> None:
    """Each commerce route is public or guarded by roles(...); all appear in the matrix."""
    in_matrix = {(m, p.split("?")[0].replace(X, "{}").replace("/1/", "/{}/")
                  .replace("push-subscriptions/1", "push-subscriptions/{}"))
                 for _, m, p, _ in MATRIX}
    seen = set()
    for route in api.client.app.routes:
        if not route.path.startswith(V1):
            continue
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                path = route.path[len(V1):]
                norm = path
                for token in ("{chef_id:uuid}", "{address_id:uuid}", "{order_id:uuid}",
                              "{item_id:uuid}", "{cart_item_id:uuid}", "{payment_id:uuid}",
                              "{user_id:uuid}", "{promo_id:uuid}", "{notification_id:int}",
                              "{photo_id:uuid}", "{subscription_id:int}"):
                    norm = norm.replace(token, "{}")
                seen.add((method, norm))
                if handler.opt.get("public"):
                    assert path in PUBLIC_AUTH or path.startswith(
                        ("/chefs", "/search", "/photos")), path
                    continue
                guards = [g for layer in handler.ownership_layers for g in layer.guards or ()]
                assert any(hasattr(g, "allowed_roles") for g in guards), (method, path)
                assert (method, norm) in in_matrix, (method, norm)
    assert {(m, p) for m, p in in_matrix} <= seen


async def test_idor_probes_are_404(api: Api) -> None:
    """For every resource with an id, another user of the same role gets 404 (never the
    data, never 403) and nothing changes."""
    admin = await api.admin()
    chef, other_chef = await api.chef(admin), await api.chef(admin)
    item = await api.menu_item(chef, 2000)
    alice, bob = await api.register(), await api.register()
    addr = await api.address(alice)
    order = await api.order(alice, chef, [{"item": item, "quantity": 1}], addr)
    payment = await api.pay(alice, order["id"])
    r = await api.client.post(f"{V1}/cart/items", json={"menu_item_id": item["id"]},
                              headers=alice["headers"])
    line = r.json()["items"][0]["id"]
    r = await api.client.get(f"{V1}/users/me/notifications", headers=chef["headers"])
    note = r.json()["data"][0]["id"]
    b, oc = bob["headers"], other_chef["headers"]
    probes: list[tuple[str, str, dict[str, str], Any]] = [
        ("PUT", f"/users/me/addresses/{addr['id']}", b, {"label": "x"}),
        ("DELETE", f"/users/me/addresses/{addr['id']}", b, None),
        ("PUT", f"/cart/items/{line}", b, {"quantity": 5}),
        ("DELETE", f"/cart/items/{line}", b, None),
        ("GET", f"/orders/{order['id']}", b, None),
        ("PUT", f"/orders/{order['id']}/cancel", b, {}),
        ("POST", f"/orders/{order['id']}/review", b, {"rating": 1}),
        ("GET", f"/payments/{payment['id']}", b, None),
        ("POST", "/payments/intent", b, {"order_id": order["id"]}),
        ("POST", "/payments/confirm", b, {"payment_id": payment["id"],
                                          "payment_method": "pm_card_visa"}),
        ("GET", f"/chef/orders/{order['id']}", oc, None),
        ("PUT", f"/chef/orders/{order['id']}/status", oc, {"status": "accepted"}),
        ("PUT", f"/chef/menu/{item['id']}", oc, {"price_cents": 1}),
        ("DELETE", f"/chef/menu/{item['id']}", oc, None),
        ("PUT", f"/users/me/notifications/{note}/read", b, None),
    ]
    for method, path, headers, body in probes:
        r = await api.client.request(method, V1 + path, headers=headers, json=body)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert "order_number" not in r.text
        assert "total_cents" not in r.text
    # Referencing another's address in an order is refused as unknown.
    r = await api.client.post(f"{V1}/orders", headers=b, json={
        "chef_id": chef["profile"]["id"], "delivery_address_id": addr["id"],
        "items": [{"menu_item_id": item["id"], "quantity": 1}]})
    assert r.status_code == 422
    # Nothing changed for the owners.
    r = await api.client.get(f"{V1}/orders/{order['id']}", headers=alice["headers"])
    assert r.json()["status"] == "pending"
    r = await api.client.get(f"{V1}/cart", headers=alice["headers"])
    assert r.json()["items"][0]["quantity"] == 1
    r = await api.client.get(f"{V1}/users/me/addresses", headers=alice["headers"])
    assert r.json()["data"][0]["label"] == "Home"
    r = await api.client.get(f"{V1}/orders", headers=b)
    assert r.json()["total"] == 0
    r = await api.client.get(f"{V1}/reviews", headers=b)
    assert r.json()["total"] == 0


async def test_tokens_without_an_account_never_500(api: Api) -> None:
    """A valid token whose subject has no commerce account (a simulated courier id, or a
    uuid with no row) gets 4xx problem+json on every route of its role, never a 500."""
    for role in (C, CH, D, A):
        for sub in ("courier-sim-17", str(uuid.uuid4())):
            assert api.settings.server.jwt_secret
            token = TokenCodec(api.settings.server.jwt_secret).issue(sub, role)
            headers = {"Authorization": f"Bearer {token}"}
            for _, method, path, allowed in MATRIX:
                if allowed == PUBLIC or role not in allowed:
                    continue
                r = await api.client.request(method, V1 + path, headers=headers, json={})
                assert r.status_code < 500, (role, sub, method, path, r.text)
