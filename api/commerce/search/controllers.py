"""/search: dishes and chefs by words, filters and the customer's position (public)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import QueryParameter

from api.commerce.deps import SearchServiceDep
from api.commerce.paging import PageQueryDep
from api.commerce.search.query import SearchRefused, search_query
from api.commerce.search.schemas import SearchKind, SearchResults
from api.problems import Problem

PriceCents = Annotated[int | None, QueryParameter(ge=0, le=10_000_000)]


class SearchController(Controller):
    """Public by design, like chef browsing: it shows only approved chefs and dishes on
    offer, never anyone's account data."""

    path = "/search"
    tags = ["search"]

    @get("", opt={"public": True},
         summary="Dishes and chefs matching words (typos forgiven), filtered, ranked, paged")
    async def search(
        self, search_service: SearchServiceDep, paging: PageQueryDep,
        q: Annotated[str, QueryParameter(min_length=1, max_length=100)],
        kind: Annotated[SearchKind, QueryParameter(name="type")] = "all",
        dietary: Annotated[str | None, QueryParameter(max_length=200)] = None,
        min_price_cents: PriceCents = None, max_price_cents: PriceCents = None,
        lat: Annotated[float | None, QueryParameter(ge=-90, le=90)] = None,
        lng: Annotated[float | None, QueryParameter(ge=-180, le=180)] = None,
    ) -> SearchResults:
        try:
            query = search_query(q, dietary=dietary, min_price_cents=min_price_cents,
                                 max_price_cents=max_price_cents, lat=lat, lng=lng)
        except SearchRefused as exc:
            raise Problem(400, str(exc), code="bad_search") from None
        return await search_service.search(query, kind, paging)
