"""Turning asyncpg records into response Structs (one place, so every domain does it alike)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import asyncpg
import msgspec

from api.commerce.paging import Page, PageQuery

S = TypeVar("S", bound=msgspec.Struct)


def one(struct: type[S], row: asyncpg.Record | dict[str, Any]) -> S:
    return msgspec.convert(dict(row), struct)


def many(struct: type[S], rows: Iterable[asyncpg.Record]) -> list[S]:
    return [msgspec.convert(dict(r), struct) for r in rows]


def page_of(struct: type[S], rows: Sequence[asyncpg.Record], q: PageQuery,
            total: int | None = None) -> Page[S]:
    """A page from rows that carry ``count(*) OVER () AS total`` (or an explicit total)."""
    if total is None:
        total = int(rows[0]["total"]) if rows else 0
    return Page(data=many(struct, rows), total=total, page=q.page, limit=q.limit)
