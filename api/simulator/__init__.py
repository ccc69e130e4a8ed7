"""The demo city: seeded chefs, couriers and customers driving core and commerce over their
public APIs (`homechef simulate`, `homechef up --demo`).

Pure parts: `city` (seeded generation, order stream), `movement` (legs at vehicle speed),
`kpis` (percentiles, lateness, double assignments). Async parts: `clients`, `agents`, `run`.
"""
