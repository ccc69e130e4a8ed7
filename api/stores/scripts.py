"""Lua scripts called inside pipelines, on one Redis or a Redis Cluster alike."""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import ClusterPipeline
from redis.commands.core import AsyncScript


async def load_for(script: AsyncScript, client: Any) -> None:
    """Make `script` callable in `client` when it is a cluster pipeline. redis-py loads the
    scripts a plain pipeline needs before running it, not those a cluster pipeline needs:
    its EVALSHA fails with NOSCRIPT on a node that never ran the script (a new or promoted
    one). One SCRIPT LOAD (to every primary) per pipeline, before its calls are queued."""
    if isinstance(client, ClusterPipeline):
        await script.registered_client.script_load(script.script)
