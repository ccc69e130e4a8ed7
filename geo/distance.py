"""Great-circle distances on a spherical Earth (the model every other module uses)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG), metres


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Distance in metres between two points given in degrees."""
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    # min() guards against a > 1 from rounding for antipodal points.
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def haversine_matrix_m(
    lat_a: npt.ArrayLike, lng_a: npt.ArrayLike, lat_b: npt.ArrayLike, lng_b: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Pairwise distances in metres: rows are points A, columns are points B."""
    la = np.radians(np.asarray(lat_a, dtype=np.float64))[:, None]
    ga = np.radians(np.asarray(lng_a, dtype=np.float64))[:, None]
    lb = np.radians(np.asarray(lat_b, dtype=np.float64))[None, :]
    gb = np.radians(np.asarray(lng_b, dtype=np.float64))[None, :]
    a = np.sin((lb - la) / 2) ** 2 + np.cos(la) * np.cos(lb) * np.sin((gb - ga) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))
