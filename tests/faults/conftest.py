"""One system of the fault tests' own for the session (its stores and services are killed
and restarted by the tests; nothing else shares them)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from api.simulator.drill import Rig


@pytest.fixture(scope="session")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    system = Rig(tmp_path_factory.mktemp("faults"))
    try:
        await system.start()
        yield system
    finally:
        await system.stop()
