"""Benchmarks' access to real stores: the environment's URLs, else embedded servers."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from api.runtime import EmbeddedStores


@contextlib.asynccontextmanager
async def bench_stores() -> AsyncIterator[dict[str, str]]:
    """{"postgres", "redis", "nats"} URLs; embedded ones are started for unset variables."""
    env = {"postgres": os.environ.get("DATABASE_URL"), "redis": os.environ.get("REDIS_URL"),
           "nats": os.environ.get("NATS_URL")}
    stores = EmbeddedStores(Path(tempfile.mkdtemp(prefix="homechef-bench-")))
    urls: dict[str, str] = {}
    try:
        if not all(env.values()):
            urls = await stores.start(**{k: not v for k, v in env.items()})
        yield {k: v or urls[k] for k, v in env.items()}
    finally:
        await stores.stop()
        stores.remove_files()
