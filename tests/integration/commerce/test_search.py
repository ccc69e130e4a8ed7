"""GET /search: words over dishes and chefs (name > cuisine > description), typos forgiven,
dietary and price filters, only chefs that deliver to the customer, ranked and paged.

The city is in Paris, far from every other test's chefs (Bangalore), and every query gives
the customer's position there, so other tests' data never shows."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.commerce.conftest import Api

V1 = "/api/v1"
LAT, LNG = 48.8566, 2.3522
HERE = {"lat": LAT, "lng": LNG}


class City:
    def __init__(self, chefs: dict[str, dict[str, Any]], dishes: dict[str, dict[str, Any]]):
        self.chefs = chefs
        self.dishes = dishes

    def name_of(self, dish_id: str) -> str:
        return next(k for k, v in self.dishes.items() if v["id"] == dish_id)


@pytest.fixture(scope="module")
async def city(api: Api) -> City:
    admin = await api.admin()
    chefs = {
        "roma": await api.chef(admin, business_name="Trattoria Roma", cuisines=["Italian"],
                               description="Family recipes", latitude=LAT + 0.01,
                               longitude=LNG, service_radius=5),
        "delhi": await api.chef(admin, business_name="Delhi Darbar", cuisines=["Indian"],
                                description="Slow-cooked curries and an italian-style naan",
                                latitude=LAT - 0.01, longitude=LNG, service_radius=5),
        # 0.1° north is ~11 km away: it does not deliver to the customer (radius 3 km).
        "far": await api.chef(admin, business_name="Italian Faraway", cuisines=["Italian"],
                              latitude=LAT + 0.1, longitude=LNG, service_radius=3),
    }
    dishes = {
        "salad": await api.menu_item(chefs["delhi"], 800, name="Italian Salad",
                                     category="starters", dietary_tags=["Vegan"]),
        "lasagne": await api.menu_item(chefs["roma"], 1500, name="Lasagne",
                                       description="Beef ragu", dietary_tags=[]),
        "biryani": await api.menu_item(chefs["delhi"], 1400, name="Chicken Biryani",
                                       description="Served with raita, an italian touch",
                                       dietary_tags=[]),
        "butter": await api.menu_item(chefs["delhi"], 1300, name="Butter Chicken",
                                      dietary_tags=[]),
        "dal": await api.menu_item(chefs["delhi"], 700, name="Dal Tadka",
                                   dietary_tags=["vegan", "gluten-free"]),
        "far_pasta": await api.menu_item(chefs["far"], 900, name="Italian Pasta"),
    }
    return City(chefs, dishes)


async def _search(api: Api, **params: Any) -> dict[str, Any]:
    r = await api.client.get(f"{V1}/search", params={**HERE, **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_ranks_name_over_cuisine_over_description(api: Api, city: City) -> None:
    """"italian": the dish named so first, then the Italian chef's dish, then the dish that
    only says it in its description; the chef out of range is nowhere; chefs named or
    cooking Italian are listed with their distance."""
    body = await _search(api, q="italian")
    assert [city.name_of(d["id"]) for d in body["dishes"]] == ["salad", "lasagne", "biryani"]
    assert body["dish_total"] == 3
    scores = [d["score"] for d in body["dishes"]]
    assert scores == sorted(scores, reverse=True)
    assert body["dishes"][1]["chef_name"] == "Trattoria Roma"
    assert 1000 < body["dishes"][1]["distance_m"] < 1200  # 0.01° of latitude ≈ 1.11 km
    chef_ids = [c["id"] for c in body["chefs"]]
    assert chef_ids[0] == city.chefs["roma"]["profile"]["id"]  # cuisine beats description
    assert city.chefs["far"]["profile"]["id"] not in chef_ids


async def test_typos_stemming_and_web_syntax(api: Api, city: City) -> None:
    """A misspelt name still finds the dish (trigrams); plural/singular match (stemming);
    `-word` excludes and quoted phrases must appear together."""
    body = await _search(api, q="biryni", type="dishes")
    assert [city.name_of(d["id"]) for d in body["dishes"]] == ["biryani"]
    assert body["chefs"] == []
    body = await _search(api, q="chickens -butter", type="dishes")
    assert [city.name_of(d["id"]) for d in body["dishes"]] == ["biryani"]
    body = await _search(api, q='"butter chicken"', type="dishes")
    assert [city.name_of(d["id"]) for d in body["dishes"]] == ["butter"]


async def test_dietary_price_distance_and_paging(api: Api, city: City) -> None:
    """Dietary tags must all be carried (any case); the price range bounds dishes and, for
    chefs, requires such a dish; a customer outside every radius finds nothing; pages
    split the ranked list."""
    body = await _search(api, q="salad or dal", dietary="VEGAN")
    assert {city.name_of(d["id"]) for d in body["dishes"]} == {"salad", "dal"}
    body = await _search(api, q="dal or salad", dietary="vegan,gluten-free")
    assert [city.name_of(d["id"]) for d in body["dishes"]] == ["dal"]
    body = await _search(api, q="italian", max_price_cents=1000)
    assert [city.name_of(d["id"]) for d in body["dishes"]] == ["salad"]
    assert [c["id"] for c in body["chefs"]] == [city.chefs["delhi"]["profile"]["id"]]
    body = await _search(api, q="italian", lat=LAT + 0.1, lng=LNG)
    assert [city.name_of(d["id"]) for d in body["dishes"]] == ["far_pasta"]
    first = await _search(api, q="italian", type="dishes", limit=2)
    second = await _search(api, q="italian", type="dishes", limit=2, page=2)
    assert [d["id"] for d in first["dishes"] + second["dishes"]] == [
        city.dishes[k]["id"] for k in ("salad", "lasagne", "biryani")]
    assert second["dish_total"] == 3


async def test_unavailable_and_deleted_dishes_are_not_found(api: Api, city: City) -> None:
    """A dish marked unavailable or deleted drops out; renaming a dish re-indexes it."""
    chef = city.chefs["roma"]
    extra = await api.menu_item(chef, 1100, name="Risotto Nero")
    assert len((await _search(api, q="risotto", type="dishes"))["dishes"]) == 1
    r = await api.client.put(f"{V1}/chef/menu/{extra['id']}", headers=chef["headers"],
                             json={"is_available": False})
    assert r.status_code == 200, r.text
    assert (await _search(api, q="risotto", type="dishes"))["dishes"] == []
    r = await api.client.put(f"{V1}/chef/menu/{extra['id']}", headers=chef["headers"],
                             json={"is_available": True, "name": "Gnocchi"})
    assert r.status_code == 200, r.text
    assert (await _search(api, q="risotto", type="dishes"))["dishes"] == []
    assert len((await _search(api, q="gnocchi", type="dishes"))["dishes"]) == 1
    r = await api.client.delete(f"{V1}/chef/menu/{extra['id']}", headers=chef["headers"])
    assert r.status_code == 204, r.text
    assert (await _search(api, q="gnocchi", type="dishes"))["dishes"] == []


@pytest.mark.parametrize("params", [
    {"lat": LAT},
    {"q": "dal", "lat": LAT},
    {"q": "   "},
    {"q": "dal", "min_price_cents": 500, "max_price_cents": 100},
    {"q": "dal", "lat": 95, "lng": 0},
    {"q": "dal", "type": "users"},
    {"q": "x" * 101},
], ids=["no-q", "lat-only", "blank-q", "min-above-max", "lat-out-of-range", "bad-type",
        "q-too-long"])
async def test_bad_searches_are_400_problems(api: Api, params: dict[str, Any]) -> None:
    """Contradictory or malformed parameters are 400 problem+json, never a 500."""
    r = await api.client.get(f"{V1}/search", params=params)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
