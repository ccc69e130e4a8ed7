"""Production's dispatch settings as the lab runs them (`homechef lab`, bench.lab_day).

The round parameters and the prep prediction come from the same functions `Dispatcher`
uses (`round_params`, `prep_params`), so the lab runs the policy production would run with
these settings; the loops' settings (round period, offer TTL, search radius) come along.
"""

from __future__ import annotations

from api.core.dispatch.service import prep_params, reposition_params, round_params
from api.settings import DispatchSettings
from geo.travel import TravelModel
from lab.engine import LabDispatch

__all__ = ["lab_dispatch"]


def lab_dispatch(d: DispatchSettings, travel: TravelModel) -> LabDispatch:
    """Production's dispatch under settings `d`, dispatch's travel model `travel`."""
    return LabDispatch(params=round_params(d, travel), round_s=d.round_s,
                       offer_ttl_s=d.offer_ttl_s, radius_m=d.radius_m,
                       stack_candidates=d.stack_candidates,
                       max_orders_per_round=d.max_orders_per_round, prep=prep_params(d),
                       reposition=reposition_params(d))
