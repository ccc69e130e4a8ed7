"""Places in the Monaco extract (roads/data/monaco.osm.pbf, © OpenStreetMap contributors,
ODbL) where the roads and the straight line disagree; every point lies on a road.

- Port Hercule: `HARBOUR_SOUTH` (the outer jetty) and `HARBOUR_NORTH` (across the harbour
  mouth) are 289 m apart in a straight line but ~12 minutes apart by bike along the quays.
  `SAME_SIDE` is 455 m from `HARBOUR_SOUTH` in a straight line and ~5 minutes by road.
- Boulevard Charles III is a dual carriageway with one-way halves: `CHARLES_III_A` to
  `CHARLES_III_B` (240 m) by car goes round a loop (~45 s), back is direct (~16 s).
- `IN_THE_SEA`: 150 m off the coast (snapped to the nearest road); `FAR_OUT`: 20 km south,
  in the open sea, off the map.
"""

from __future__ import annotations

HARBOUR_SOUTH = (43.734329, 7.429712)
HARBOUR_NORTH = (43.736926, 7.429556)
SAME_SIDE = (43.732711, 7.424507)
CHARLES_III_A = (43.72956, 7.41337)
CHARLES_III_B = (43.73077, 7.41546)
IN_THE_SEA = (43.732, 7.430)
FAR_OUT = (43.55, 7.42)
