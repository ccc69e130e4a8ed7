"""Search in PostgreSQL: one statement per list, each served by GIN indexes.

A row matches when its weighted document matches ``websearch_to_tsquery`` (every word, or
quoted phrases, ``or``, ``-word``; English stemming) or, for a query of plain words, when
the query is a close word-similarity match of its name (``pg_trgm``: "biryni" finds
"Chicken Biryani"). The full-text rank orders what the words found (name first, then
cuisine, then description); a near miss scores half its similarity. With a
customer position only chefs whose service radius covers it are considered: a box prefilter,
then the exact haversine distance.
"""

from __future__ import annotations

import asyncpg

from api.commerce.paging import PageQuery
from api.commerce.rows import many
from api.commerce.search import schemas as s
from api.commerce.search.query import SearchQuery, box_around
from api.resources import Resources

TYPO_SIMILARITY = 0.5
"""Least ``word_similarity`` of the query to a name for a near-miss match. pg_trgm's default
(0.6) misses one dropped letter in a short word ("biryni" / "biryani" is 0.57)."""

SEARCH_SETTINGS_SQL = (
    f"SELECT set_config('pg_trgm.word_similarity_threshold', '{TYPO_SIMILARITY}', true), "
    "set_config('plan_cache_mode', 'force_custom_plan', true)")
"""Run first in the search's transaction (``true``: for that transaction only). Custom plans:
asyncpg prepares each statement, and after five runs PostgreSQL may switch to a generic plan,
which cannot see that ``$13`` (typos on or off) or ``$2`` (a position or not) are constants,
so it cannot combine the two GIN indexes and scans the table (~40x slower at 10,000 dishes).
Planning each search costs about a millisecond instead."""

_DISTANCE = """CASE WHEN $2::float8 IS NULL THEN NULL ELSE
    2 * 6371008.8 * asin(least(1.0, sqrt(
        power(sin(radians(c.latitude - $2::float8) / 2), 2)
        + cos(radians($2::float8)) * cos(radians(c.latitude))
          * power(sin(radians(c.longitude - $3::float8) / 2), 2)))) END"""
"""Metres from the customer ($2, $3) to the chef ``c`` (geo.distance.haversine_m in SQL)."""

_CHEFS_THERE = f"""
    SELECT c.*, {_DISTANCE} AS distance_m FROM chef_profiles c
    WHERE c.status = 'approved'
      AND ($2::float8 IS NULL OR (c.latitude BETWEEN $4 AND $5
                                  AND c.longitude BETWEEN $6 AND $7))"""
"""Approved chefs, with their distance; near the customer's box when there is one."""

def _near_miss(document: str, name: str) -> str:
    """Score of a row found only by its name's similarity (a typo): half the similarity.
    Rows the full text found are ranked by it alone, which also spares computing trigrams
    for the many rows a common word matches."""
    return (f"CASE WHEN $13 AND NOT {document} @@ q.tsq "
            f"THEN 0.5 * word_similarity($1, {name}) ELSE 0 END")


_DELIVERS = "(n.distance_m IS NULL OR n.distance_m <= n.service_radius * 1000)"

_DISH_FITS = """m.deleted_at IS NULL AND m.is_available
    AND m.price_cents BETWEEN $9 AND $10
    AND (cardinality($8::text[]) = 0 OR ARRAY(SELECT lower(t) FROM unnest(m.dietary_tags) t)
                                        @> $8::text[])"""

DISHES_SQL = f"""
WITH q AS (SELECT websearch_to_tsquery('english', $1) AS tsq),
     near AS ({_CHEFS_THERE})
SELECT m.id, m.chef_id, n.business_name AS chef_name, m.name, m.description, m.price_cents,
       m.image_url, m.category, m.dietary_tags,
       (ts_rank(m.search, q.tsq, 1) + {_near_miss("m.search", "m.name")})::float8 AS score,
       round(n.distance_m)::int AS distance_m, count(*) OVER () AS total
FROM q, menu_items m JOIN near n ON n.id = m.chef_id
WHERE (m.search @@ q.tsq OR ($13 AND $1 <% m.name)) AND {_DISH_FITS} AND {_DELIVERS}
ORDER BY score DESC, n.distance_m NULLS LAST, m.id
LIMIT $11 OFFSET $12"""

CHEFS_SQL = f"""
WITH q AS (SELECT websearch_to_tsquery('english', $1) AS tsq),
     near AS ({_CHEFS_THERE})
SELECT n.id, n.business_name, n.description, n.cuisines, n.profile_image, n.rating,
       n.total_reviews, n.is_online, n.accepting_orders, n.delivery_fee_cents,
       (ts_rank(n.search, q.tsq, 1) + {_near_miss("n.search", "n.business_name")})::float8
           AS score,
       round(n.distance_m)::int AS distance_m, count(*) OVER () AS total
FROM q, near n
WHERE (n.search @@ q.tsq OR ($13 AND $1 <% n.business_name)) AND {_DELIVERS}
  AND ((cardinality($8::text[]) = 0 AND $9 = 0 AND $10 = {2**62})
       OR EXISTS (SELECT 1 FROM menu_items m WHERE m.chef_id = n.id AND {_DISH_FITS}))
ORDER BY score DESC, n.rating DESC, n.distance_m NULLS LAST, n.id
LIMIT $11 OFFSET $12"""
"""Chefs whose own document matches; with dietary or price filters, only chefs offering a
dish that passes them."""


class SearchService:
    def __init__(self, resources: Resources) -> None:
        self.db = resources.db

    async def search(self, query: SearchQuery, kind: s.SearchKind,
                     q: PageQuery) -> s.SearchResults:
        box = box_around(query.lat, query.lng) if query.lat is not None and \
            query.lng is not None else None
        args = (query.text, query.lat, query.lng,
                box.lat_lo if box else None, box.lat_hi if box else None,
                box.lng_lo if box else None, box.lng_hi if box else None,
                list(query.dietary), query.min_price_cents, query.max_price_cents,
                q.limit, q.offset, query.fuzzy)
        dishes: list[asyncpg.Record] = []
        chefs: list[asyncpg.Record] = []
        async with self.db.acquire() as conn, conn.transaction(readonly=True):
            await conn.execute(SEARCH_SETTINGS_SQL)
            if kind in ("all", "dishes"):
                dishes = await conn.fetch(DISHES_SQL, *args)
            if kind in ("all", "chefs"):
                chefs = await conn.fetch(CHEFS_SQL, *args)
        return s.SearchResults(
            dishes=many(s.DishHit, dishes), dish_total=_total(dishes),
            chefs=many(s.ChefHit, chefs), chef_total=_total(chefs), page=q.page,
            limit=q.limit)


def _total(rows: list[asyncpg.Record]) -> int:
    return int(rows[0]["total"]) if rows else 0
