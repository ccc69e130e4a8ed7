"""The dispatch lab: whole city days on a virtual clock, through the production planner.

Pure (no I/O, no wall clock): `scenario` (a day as data, presets), `city` (the seeded day:
chefs, customers, couriers, orders with their real prep times), `engine` (the discrete-event
simulation calling `dispatch.round.plan_round`), `kpis` (the day's figures). The CLI adapter
is `homechef lab` (`api/cli.py`), the plot `api/lab_plot.py`; docs/lab.md.
"""
