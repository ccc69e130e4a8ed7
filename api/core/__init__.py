"""Core's HTTP and WebSocket edge: ingest, fleet, delivery, routing, tracking, console."""

from __future__ import annotations

from api.parts import Parts


def core_parts() -> Parts:
    """Everything core serves and runs besides /health and /metrics."""
    return Parts()
