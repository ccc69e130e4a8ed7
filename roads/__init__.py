"""Road network: OSRM data built from an OpenStreetMap extract, and travel times over it.

- `roads.profiles`: which OSRM profile each vehicle rides (pure data).
- `roads.manifest`: what a built road folder holds (`manifest.json`).
- `roads.build`: `homechef roads build`, OSRM's extract/partition/customize (or contract)
  run from the `osrm-bindings` wheel.
- `roads.model`: `RoadTravelModel`, the `geo.travel.TravelModel` over in-process OSRM.

This package reads files and spawns the OSRM tools, so it is not part of the pure core;
`geo`, `routing` and `dispatch` never import it (docs/adr/0021-roads-package.md).
"""
