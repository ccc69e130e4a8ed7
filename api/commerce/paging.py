"""Bounded pagination shared by every list endpoint: ``{data, total, page, limit}``."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.di import NamedDependency
from litestar.params import QueryParameter

T = TypeVar("T")

MAX_LIMIT = 100
DEFAULT_LIMIT = 20


class Page(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    """One page of a list (the seed's list shape)."""

    data: list[T]
    total: int
    page: int
    limit: int


class PageQuery(msgspec.Struct, frozen=True):
    """Validated page number and size (limit is capped at ``MAX_LIMIT``)."""

    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def provide_page(
    page: Annotated[int, QueryParameter(ge=1, le=100_000)] = 1,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> PageQuery:
    return PageQuery(page=page, limit=limit)


PageQueryDep = NamedDependency[PageQuery]
