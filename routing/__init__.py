"""Pure routing: pickup-and-delivery with time windows (docs/routing.md).

- `routing.model`: immutable `Problem` (matrices, tasks, pairs, vehicles) and `Plan`.
- `routing.solver`: `solve(problem, time_limit_s, seed) -> Plan` on OR-Tools.
- `routing.insertion`: one courier's route — cheapest insertion of an order.
- `routing.reorder`: one courier's route in progress — cheapest order of its remaining stops.
- `routing.eta`: arrival times along a route (travel, waiting for food, service).
- `routing.feasibility`: independent checker of a plan against its problem.
- `routing.lilim`, `routing.cli`: Li & Lim benchmark reader and `homechef routing solve`.

Submodules are not imported here, so `routing.eta` or `routing.insertion` never pay for
loading OR-Tools.
"""
