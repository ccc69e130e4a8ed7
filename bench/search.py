"""Benchmark GET /api/v1/search over 10,000 dishes beside a baseline: an ILIKE scan.

Seeds a throw-away database with approved chefs around one city and dishes whose names,
categories, descriptions and dietary tags are drawn from a fixed vocabulary (seeded), then
runs a mix of queries one at a time:

- one word, two words, a misspelt word (a letter dropped), a dietary filter, a price cap,
  each half of the time with the customer's position (only chefs that deliver there).

Figures (p50/p99, ms):
- ``endpoint``: the whole request through the commerce app (ASGI in-process: routing,
  validation, two statements in one read-only transaction, JSON) — the figure the target
  (p99 ≤ 50 ms) is about;
- ``fts sql``: the dish statement alone (`api/commerce/search/services.py`);
- ``ilike sql`` (baseline): the same filters with ``name ILIKE '%word%' OR description ILIKE
  '%word%'`` for every word, no index can serve it, no ranking, no typo tolerance.

    DATABASE_URL=... REDIS_URL=... NATS_URL=... python -m bench.search
    python -m bench.search --dishes 10000 --chefs 400 --queries 500 --seed 1
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import secrets
import statistics
import sys
import time
import uuid
from typing import Any

import asyncpg
import httpx

from api.app import build_app
from api.commerce.parts import commerce_parts
from api.commerce.search.query import box_around, search_query
from api.commerce.search.services import DISHES_SQL, SEARCH_SETTINGS_SQL
from api.migrate import migrate
from api.settings import ServerSettings, Settings, StoreSettings
from bench.orders import FAST, _db_url, _drop_namespace, _lifespan, _pct

LAT, LNG = 12.9716, 77.5946
CUISINES = ["Indian", "Italian", "Chinese", "Mexican", "Thai", "Japanese", "Lebanese",
            "Greek", "French", "Korean", "Ethiopian", "Vietnamese"]
BASES = ["chicken", "paneer", "tikka", "masala", "biryani", "dosa", "idli", "sambar",
         "lasagne", "risotto", "pasta", "pizza", "ramen", "sushi", "taco", "burrito",
         "curry", "dal", "naan", "kebab", "falafel", "hummus", "salad", "soup", "noodles",
         "dumplings", "bao", "pho", "tofu", "lamb", "prawn", "mushroom", "spinach", "lentil",
         "gnocchi", "enchilada", "quesadilla", "katsu", "teriyaki", "bibimbap", "kimchi",
         "moussaka", "souvlaki", "ratatouille", "crepe", "injera", "tagine", "shawarma"]
ADJECTIVES = ["spicy", "smoky", "crispy", "creamy", "grilled", "roasted", "tangy", "sweet",
              "fiery", "herbed", "garlic", "lemon", "butter", "coconut", "ginger", "sesame"]
FILLER = ["slow", "cooked", "fresh", "home", "style", "served", "with", "rice", "bread",
          "sauce", "family", "recipe", "seasonal", "vegetables", "house", "special",
          "topped", "herbs", "pickled", "onions", "yogurt", "chutney", "broth", "toasted"]
TAGS = ["vegetarian", "vegan", "gluten-free", "halal", "dairy-free", "nut-free"]
ALL_DAY = {d: {"open": "00:00", "close": "24:00"} for d in (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")}


async def _seed(db: asyncpg.Pool, rng: random.Random, chefs: int, dishes: int) -> None:
    """Chefs within ~8 km of the city centre, dishes spread over them."""
    users = [(uuid.UUID(int=rng.getrandbits(128)), f"chef{i}@bench.example") for i in
             range(chefs)]
    await db.executemany("INSERT INTO users (id, email, password_hash, role) "
                         "VALUES ($1, $2, 'x', 'chef')", users)
    chef_rows = []
    for i, (user_id, _) in enumerate(users):
        cuisine = CUISINES[i % len(CUISINES)]
        chef_rows.append((
            uuid.UUID(int=rng.getrandbits(128)), user_id,
            f"{rng.choice(ADJECTIVES).title()} {cuisine} Kitchen {i}",
            " ".join(rng.choices(FILLER, k=10)), [cuisine],
            LAT + rng.uniform(-0.07, 0.07), LNG + rng.uniform(-0.07, 0.07),
            rng.choice([3.0, 5.0, 8.0]), rng.uniform(3.5, 5.0)))
    await db.executemany(
        """INSERT INTO chef_profiles (id, user_id, business_name, description, cuisines,
               latitude, longitude, service_radius, rating, status, is_online,
               accepting_orders, operating_hours)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,'approved',true,true,$10::jsonb)""",
        [(*r, '{"monday": {"open": "00:00", "close": "24:00"}}') for r in chef_rows])
    item_rows = []
    for _ in range(dishes):
        chef = rng.choice(chef_rows)
        name = f"{rng.choice(ADJECTIVES).title()} {rng.choice(BASES).title()}"
        if rng.random() < 0.5:
            name += f" {rng.choice(BASES).title()}"
        item_rows.append((
            chef[0], name, " ".join(rng.choices(FILLER + BASES, k=12)),
            rng.randrange(400, 3000), rng.choice(["mains", "starters", "sides", "desserts"]),
            rng.sample(TAGS, k=rng.choice([0, 0, 1, 2]))))
    await db.executemany(
        """INSERT INTO menu_items (chef_id, name, description, price_cents, category,
               dietary_tags) VALUES ($1,$2,$3,$4,$5,$6)""", item_rows)
    await db.execute("ANALYZE")


def _queries(rng: random.Random, n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            params: dict[str, Any] = {"q": rng.choice(BASES)}
        elif kind == 1:
            params = {"q": f"{rng.choice(ADJECTIVES)} {rng.choice(BASES)}"}
        elif kind == 2:
            word = rng.choice([b for b in BASES if len(b) >= 5])
            cut = rng.randrange(1, len(word) - 1)
            params = {"q": word[:cut] + word[cut + 1:]}
        elif kind == 3:
            params = {"q": rng.choice(BASES), "dietary": rng.choice(TAGS)}
        else:
            params = {"q": rng.choice(BASES), "max_price_cents": 1500}
        if rng.random() < 0.5:
            params |= {"lat": LAT + rng.uniform(-0.03, 0.03),
                       "lng": LNG + rng.uniform(-0.03, 0.03)}
        out.append(params)
    return out


ILIKE_SQL = """
SELECT m.id, m.name, c.business_name, m.price_cents
FROM menu_items m JOIN chef_profiles c ON c.id = m.chef_id
WHERE c.status = 'approved' AND m.deleted_at IS NULL AND m.is_available
  AND (SELECT bool_and(m.name ILIKE '%' || w || '%' OR m.description ILIKE '%' || w || '%')
       FROM unnest($1::text[]) w)
  AND m.price_cents BETWEEN $2 AND $3
  AND (cardinality($4::text[]) = 0 OR m.dietary_tags @> $4::text[])
  AND ($5::float8 IS NULL OR 2 * 6371008.8 * asin(least(1.0, sqrt(
        power(sin(radians(c.latitude - $5) / 2), 2) + cos(radians($5)) * cos(radians(c.latitude))
        * power(sin(radians(c.longitude - $6) / 2), 2)))) <= c.service_radius * 1000)
ORDER BY m.name, m.id LIMIT 20"""
"""The baseline: what a search without text indexes does (the old chef-name ILIKE, extended
to dishes)."""


def _args_of(p: dict[str, Any]) -> tuple[Any, ...]:
    q = search_query(p["q"], dietary=p.get("dietary"), min_price_cents=None,
                     max_price_cents=p.get("max_price_cents"), lat=p.get("lat"),
                     lng=p.get("lng"))
    box = box_around(q.lat, q.lng) if q.lat is not None and q.lng is not None else None
    return (q.text, q.lat, q.lng, box and box.lat_lo, box and box.lat_hi, box and box.lng_lo,
            box and box.lng_hi, list(q.dietary), q.min_price_cents, q.max_price_cents, 20, 0,
            q.fuzzy)


async def _time_sql(db: asyncpg.Pool, queries: list[dict[str, Any]],
                    fts: bool) -> tuple[list[float], float]:
    lat: list[float] = []
    hits = 0
    async with db.acquire() as conn, conn.transaction(readonly=True):
        await conn.execute(SEARCH_SETTINGS_SQL)  # as the service does
        for p in queries:
            t0 = time.perf_counter()
            if fts:
                rows = await conn.fetch(DISHES_SQL, *_args_of(p))
            else:
                a = _args_of(p)
                rows = await conn.fetch(ILIKE_SQL, a[0].split(), a[8], a[9], a[7], a[1], a[2])
            lat.append((time.perf_counter() - t0) * 1000)
            hits += len(rows)
    return lat, hits / len(queries)


async def run(args: argparse.Namespace) -> None:
    server = os.environ.get("DATABASE_URL")
    redis_url, nats_url = os.environ.get("REDIS_URL"), os.environ.get("NATS_URL")
    if not (server and redis_url and nats_url):
        sys.exit("set DATABASE_URL, REDIS_URL and NATS_URL (e.g. from `homechef up`)")
    name = f"bench_search_{secrets.token_hex(4)}"
    namespace = "b" + secrets.token_hex(4)
    admin_conn = await asyncpg.connect(server)
    await admin_conn.execute(f'CREATE DATABASE "{name}"')
    url = _db_url(server, name)
    rng = random.Random(args.seed)
    try:
        await migrate(url)
        db = await asyncpg.create_pool(url, min_size=1, max_size=2)
        t0 = time.perf_counter()
        await _seed(db, rng, args.chefs, args.dishes)
        print(f"seeded {args.chefs} chefs, {args.dishes} dishes in "
              f"{time.perf_counter() - t0:.1f} s")
        queries = _queries(rng, args.queries)
        settings = Settings(
            stores=StoreSettings(database_url=url, redis_url=redis_url, nats_url=nats_url),
            server=ServerSettings(jwt_secret="bench-" + secrets.token_hex(24),
                                  namespace=namespace))
        app = build_app("commerce", "bench", settings,
                        functools.partial(commerce_parts, config=FAST))
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with _lifespan(app), httpx.AsyncClient(transport=transport,
                                                     base_url="http://commerce") as client:
            for p in queries[:50]:  # warm-up: plans, pool, caches
                await client.get("/api/v1/search", params=p)
            endpoint: list[float] = []
            hits = 0
            errors = 0
            for p in queries:
                t0 = time.perf_counter()
                r = await client.get("/api/v1/search", params=p)
                endpoint.append((time.perf_counter() - t0) * 1000)
                errors += r.status_code != 200
                hits += len(r.json().get("dishes", [])) if r.status_code == 200 else 0
        fts, fts_hits = await _time_sql(db, queries, fts=True)
        ilike, ilike_hits = await _time_sql(db, queries[:args.baseline_queries], fts=False)
        await db.close()
        print(f"{'':<12} {'queries':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
              f"{'dishes/answer':>14}")
        for label, lat, per in (("endpoint", endpoint, hits / len(queries)),
                                ("fts sql", fts, fts_hits), ("ilike sql", ilike, ilike_hits)):
            print(f"{label:<12} {len(lat):>8} {_pct(lat, .5):>8.2f} {_pct(lat, .99):>8.2f} "
                  f"{statistics.fmean(lat):>8.2f} {per:>14.1f}")
        print(f"ilike / fts (sql, p50): {_pct(ilike, .5) / _pct(fts, .5):.1f}x; "
              f"endpoint errors: {errors}; load average (1 min) {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} cores")
    finally:
        await admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin_conn.close()
        await _drop_namespace(namespace, redis_url, nats_url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dishes", type=int, default=10_000)
    parser.add_argument("--chefs", type=int, default=400)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--baseline-queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
