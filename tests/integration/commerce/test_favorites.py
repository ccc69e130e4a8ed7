"""Favourites (seed §3.4): a customer saves approved chefs and dishes on offer, lists them,
removes them; unknown ids are 404 problems and nobody sees another customer's list."""

from __future__ import annotations

import functools
import uuid

import msgspec
from litestar.testing import AsyncTestClient

from api.app import build_app
from api.commerce.parts import commerce_parts
from tests.integration.commerce.conftest import FAST, Api

V1 = "/api/v1"
FAV = f"{V1}/users/me/favorites"


async def test_save_list_and_remove(api: Api) -> None:
    """PUT saves (twice is once), GET lists newest first with the public chef and dish
    shapes, DELETE forgets; a dish deleted from the menu and a suspended chef drop out of
    the list."""
    admin = await api.admin()
    chef = await api.chef(admin)
    other_chef = await api.chef(admin, business_name="Second Kitchen")
    dosa = await api.menu_item(chef, 900, name="Dosa")
    idli = await api.menu_item(chef, 500, name="Idli")
    me = (await api.register("customer"))["headers"]
    for path in (f"chefs/{chef['profile']['id']}", f"chefs/{other_chef['profile']['id']}",
                 f"dishes/{dosa['id']}", f"dishes/{idli['id']}", f"dishes/{idli['id']}"):
        r = await api.client.put(f"{FAV}/{path}", headers=me)
        assert r.status_code == 204, r.text
    body = (await api.client.get(FAV, headers=me)).json()
    assert [c["chef"]["id"] for c in body["chefs"]] == [other_chef["profile"]["id"],
                                                        chef["profile"]["id"]]
    assert [d["dish"]["id"] for d in body["dishes"]] == [idli["id"], dosa["id"]]
    assert body["dishes"][0]["chef_name"] == "Meena's Kitchen"
    assert body["dishes"][0]["dish"]["price_cents"] == 500

    r = await api.client.delete(f"{V1}/chef/menu/{idli['id']}", headers=chef["headers"])
    assert r.status_code == 204, r.text
    r = await api.client.put(f"{V1}/admin/chefs/{other_chef['profile']['id']}/verify",
                             json={"status": "suspended"}, headers=admin["headers"])
    assert r.status_code == 200, r.text
    body = (await api.client.get(FAV, headers=me)).json()
    assert [c["chef"]["id"] for c in body["chefs"]] == [chef["profile"]["id"]]
    assert [d["dish"]["id"] for d in body["dishes"]] == [dosa["id"]]

    r = await api.client.delete(f"{FAV}/chefs/{chef['profile']['id']}", headers=me)
    assert r.status_code == 204
    r = await api.client.delete(f"{FAV}/dishes/{dosa['id']}", headers=me)
    assert r.status_code == 204
    assert (await api.client.get(FAV, headers=me)).json() == {"chefs": [], "dishes": []}


async def test_refusals(api: Api) -> None:
    """Unknown, unapproved or deleted targets are 404 problem+json on PUT; forgetting what
    is not saved is 404; another customer's favourites are neither listed nor removable."""
    admin = await api.admin()
    chef = await api.chef(admin)
    pending = await api.chef(approve=False)
    dish = await api.menu_item(chef, 700, name="Vada")
    alice = (await api.register("customer"))["headers"]
    bob = (await api.register("customer"))["headers"]
    for path in (f"chefs/{uuid.uuid4()}", f"dishes/{uuid.uuid4()}",
                 f"chefs/{pending['profile']['id']}", f"chefs/{dish['id']}"):
        r = await api.client.put(f"{FAV}/{path}", headers=alice)
        assert r.status_code == 404, path
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "urn:homechef:problem:not_found"
    r = await api.client.put(f"{FAV}/chefs/not-a-uuid", headers=alice)
    assert r.status_code in (400, 404)

    assert (await api.client.put(f"{FAV}/dishes/{dish['id']}", headers=alice)).status_code == 204
    assert (await api.client.get(FAV, headers=bob)).json() == {"chefs": [], "dishes": []}
    r = await api.client.delete(f"{FAV}/dishes/{dish['id']}", headers=bob)
    assert r.status_code == 404
    assert [d["dish"]["id"] for d in (await api.client.get(FAV, headers=alice)).json()[
        "dishes"]] == [dish["id"]]
    r = await api.client.delete(f"{FAV}/chefs/{chef['profile']['id']}", headers=alice)
    assert r.status_code == 404
    r = await api.client.get(FAV, headers=chef["headers"])
    assert r.status_code == 403


async def test_each_kind_is_capped(api: Api) -> None:
    """Past `favorites_max` of a kind a new favourite is 409; saving one already saved, or
    another kind, still works."""
    admin = await api.admin()
    first, second = await api.chef(admin), await api.chef(admin)
    dish = await api.menu_item(first, 600, name="Upma")
    capped = msgspec.structs.replace(FAST, favorites_max=1)
    app = build_app("commerce", "capped", api.settings,
                    functools.partial(commerce_parts, config=capped))
    me = (await api.register("customer"))["headers"]
    async with AsyncTestClient(app) as client:
        r = await client.put(f"{FAV}/chefs/{first['profile']['id']}", headers=me)
        assert r.status_code == 204
        r = await client.put(f"{FAV}/chefs/{second['profile']['id']}", headers=me)
        assert r.status_code == 409
        assert r.json()["type"] == "urn:homechef:problem:too_many_favorites"
        assert (await client.put(f"{FAV}/chefs/{first['profile']['id']}",
                                 headers=me)).status_code == 204
        assert (await client.put(f"{FAV}/dishes/{dish['id']}", headers=me)).status_code == 204
