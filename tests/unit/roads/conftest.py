from __future__ import annotations

import pytest

from roads.model import RoadTravelModel
from tests.conftest import BuiltRoads


@pytest.fixture(scope="session")
def road_model(monaco_roads: BuiltRoads) -> RoadTravelModel:
    assert monaco_roads.exit_code == 0, monaco_roads.stderr
    return RoadTravelModel.open(monaco_roads.directory)
