"""The commerce service's configuration and its ports (payments, messages, social, hooks).

One ``Commerce`` object per app, kept on ``app.state.commerce`` and injected into handlers;
tests and deployments swap adapters by passing them to ``commerce_parts``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import msgspec
from litestar.datastructures import State
from litestar.di import NamedDependency

from api.commerce.accounts.passwords import Argon2Params, Passwords
from api.commerce.accounts.social import SocialProvider
from api.commerce.chefs.index import ChefIndexHook, ChefIndexState
from api.commerce.notifications.sinks import LoggingSink, MessageSink
from api.commerce.payments.provider import PaymentProvider, SandboxProvider
from dispatch.promise import promised_after_ride, promised_at
from geo.travel import Vehicle
from roads.model import RoadTravelModel


class CommerceConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Tunables of the commerce service; every limit and TTL is finite."""

    refresh_ttl_s: int = 30 * 24 * 3600
    """Lifetime of a refresh token (rotated on every use)."""
    reset_ttl_s: int = 3600
    """Lifetime of a password-reset token."""
    otp_ttl_s: int = 300
    """Lifetime of a phone OTP code."""
    otp_max_attempts: int = 5
    login_window_s: int = 15 * 60
    """Window of the failed-login counters."""
    login_max_failures_per_account: int = 5
    login_max_failures_per_ip: int = 50
    outbox_batch: int = 200
    outbox_poll_s: float = 0.5
    """Relay poll interval when no local commit woke it."""
    currency: str = "usd"
    courier_speed_kmh: float = 20.0
    """Straight-line speed used for the promised delivery time without road data (and where
    the roads cannot join the chef and the address)."""
    handoff_buffer_min: int = 10
    schedule_max_ahead_days: int = 7
    """How far ahead an order may be scheduled."""
    favorites_max: int = 200
    """Saved chefs, and saved dishes, per customer (GET /users/me/favorites lists them all)."""
    commission_percent: int = 15
    """The platform's share of a delivered order's menu revenue (the chef earns the rest)."""
    courier_fee_share_percent: int = 100
    """The courier's share of the delivery fee (tips go to the courier whole); the rest is
    the platform's."""
    payout_currency: str = "usd"
    payout_check_s: float = 3600.0
    """How often the weekly-payouts worker looks for last week's run (it runs it once)."""
    argon2: Argon2Params = msgspec.field(default_factory=Argon2Params)
    """Password hashing cost (tests lower it; production keeps the defaults)."""


@dataclass
class Commerce:
    config: CommerceConfig
    payments: PaymentProvider
    messages: MessageSink
    social: Mapping[str, SocialProvider]
    chef_index_hooks: Sequence[ChefIndexHook]
    passwords: Passwords
    outbox_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    notify_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    """Set after a commit that queued notification deliveries (wakes the delivery worker)."""
    push_public_key: str = ""
    """The VAPID public key browsers subscribe with (base64url)."""
    roads: RoadTravelModel | None = None
    """The road model when ``ROADS`` is set: promised times ride the roads."""

    def committed(self) -> None:
        """A transaction that wrote outbox events or notification deliveries committed:
        wake the relay and the delivery worker."""
        self.outbox_wakeup.set()
        self.notify_wakeup.set()

    def promise(self, ready: datetime, chef: tuple[float, float],
                address: tuple[float, float], distance_m: float) -> datetime:
        """The delivery time promised to the customer for food ready at `ready`: the ride
        from the chef to the address by bike (dispatch's slowest vehicle) along the roads
        when there are roads and they join the two, else the straight-line distance at
        `courier_speed_kmh`; plus the hand-off buffer, whole minutes."""
        config = self.config
        if self.roads is not None:
            ride_s = self.roads.travel_s(*chef, *address, Vehicle.BIKE)
            if math.isfinite(ride_s):
                return promised_after_ride(ready, ride_s, config.handoff_buffer_min)
        return promised_at(ready, distance_m, config.courier_speed_kmh,
                           config.handoff_buffer_min)

    async def chef_changed(self, state: ChefIndexState | None) -> None:
        """Tell every index hook about a chef whose indexable state committed."""
        if state is None:
            return
        for hook in self.chef_index_hooks:
            await hook(state)


def default_commerce(
    *,
    config: CommerceConfig | None = None,
    payments: PaymentProvider | None = None,
    messages: MessageSink | None = None,
    social: Mapping[str, SocialProvider] | None = None,
    chef_index_hooks: Sequence[ChefIndexHook] = (),
    roads: RoadTravelModel | None = None,
) -> Commerce:
    config = config or CommerceConfig()
    return Commerce(
        config=config,
        passwords=Passwords(config.argon2),
        payments=payments or SandboxProvider(),
        messages=messages or LoggingSink(),
        social=dict(social or {}),
        chef_index_hooks=list(chef_index_hooks),
        roads=roads,
    )


def provide_commerce(state: State) -> Commerce:
    commerce: Commerce = state.commerce
    return commerce


CommerceDep = NamedDependency[Commerce]
