"""Which exceptions count as a store outage (503 + Retry-After) and which stay a 500."""

from __future__ import annotations

import asyncpg
import nats.errors
import nats.js.errors
import pytest
import redis.exceptions

from api.problems import EXCEPTION_HANDLERS, outage_store, store_unavailable_handler

# (exception, the store it reports, or None for "not an outage: a 500")
CASES: list[tuple[Exception, str | None]] = [
    (redis.exceptions.ConnectionError("refused"), "redis"),
    (redis.exceptions.TimeoutError("read timed out"), "redis"),
    (redis.exceptions.BusyLoadingError("loading"), "redis"),
    (redis.exceptions.MaxConnectionsError("pool exhausted"), "redis"),
    (redis.exceptions.ReadOnlyError("replica"), "redis"),
    (nats.errors.NoServersError(), "nats"),
    (nats.errors.TimeoutError(), "nats"),
    (nats.errors.NoRespondersError(), "nats"),
    (nats.errors.ConnectionClosedError(), "nats"),
    (nats.js.errors.ServiceUnavailableError(), "nats"),
    (asyncpg.CannotConnectNowError("starting up"), "postgres"),
    (asyncpg.ConnectionDoesNotExistError("closed"), "postgres"),
    (asyncpg.InterfaceError("connection is closed"), "postgres"),
    (asyncpg.TooManyConnectionsError("full"), "postgres"),
    (asyncpg.InternalClientError("cannot switch to state 11; another operation (2) is in "
                                 "progress"), "postgres"),
    (ConnectionRefusedError(111, "refused"), "store"),
    (TimeoutError(), "store"),
    # Genuine bugs and bad input stay 500s.
    (asyncpg.DataError("invalid input for query argument $1"), None),
    (redis.exceptions.ResponseError("WRONGTYPE"), None),
    (redis.exceptions.NoScriptError("NOSCRIPT"), None),
    (asyncpg.UniqueViolationError("duplicate"), None),
    (nats.js.errors.NotFoundError(), None),
    (ValueError("bug"), None),
    (KeyError("bug"), None),
]


@pytest.mark.parametrize(("exc", "store"), CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_outage_classification(exc: Exception, store: str | None) -> None:
    """A store that cannot be reached (refused, timed out, loading, full, shutting down) is an
    outage of that store; an error in what was asked of it (a bug) is not."""
    assert outage_store(exc) == store


@pytest.mark.parametrize(("exc", "store"), CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_outages_are_registered_once_for_both_apps(exc: Exception, store: str | None) -> None:
    """The most specific registered handler of every outage is the 503 handler, and of every
    non-outage something else (so both apps share one mapping, resolved by MRO)."""
    handler = next(EXCEPTION_HANDLERS[c] for c in type(exc).__mro__ if c in EXCEPTION_HANDLERS)
    assert (handler is store_unavailable_handler) == (store is not None)
