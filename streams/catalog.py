"""Every NATS subject and JetStream stream, declared once, as data.

All names carry the deployment namespace (``HOMECHEF_NAMESPACE``): subjects are prefixed
``<ns>.`` and streams ``<NS>_``, so test runs and tenants never see each other's traffic.
"""

from __future__ import annotations

import msgspec

DAY_S = 24 * 3600


class StreamSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A JetStream stream: its base name, subject patterns (without namespace) and retention."""

    name: str
    subjects: tuple[str, ...]
    max_age_s: float
    duplicate_window_s: float = 120.0
    description: str = ""


ORDERS = StreamSpec(
    name="ORDERS", subjects=("order.>",), max_age_s=7 * DAY_S,
    description="order.created / order.status from commerce (outbox relay)",
)
DISPATCH = StreamSpec(
    name="DISPATCH", subjects=("dispatch.>",), max_age_s=7 * DAY_S,
    description="dispatch.assigned / picked_up / delivered / unassigned from core",
)
LOCATIONS = StreamSpec(
    name="LOCATIONS", subjects=("loc.>",), max_age_s=DAY_S, duplicate_window_s=10.0,
    description="accepted courier GPS fixes, kept 24 h so the index can be rebuilt",
)
STREAMS: tuple[StreamSpec, ...] = (ORDERS, DISPATCH, LOCATIONS)


class Names:
    """Namespaced subject and stream names for one deployment."""

    __slots__ = ("ns",)

    def __init__(self, namespace: str) -> None:
        self.ns = namespace

    def stream(self, spec: StreamSpec) -> str:
        return f"{self.ns.upper()}_{spec.name}"

    def stream_subjects(self, spec: StreamSpec) -> list[str]:
        return [f"{self.ns}.{s}" for s in spec.subjects]

    # -- subjects --------------------------------------------------------------------------
    def location(self, region: str, courier_id: str) -> str:
        """``loc.<res-4 region>.<courier_id>``: one courier's accepted fixes."""
        return f"{self.ns}.loc.{region}.{courier_id}"

    def location_batch(self, region: str) -> str:
        """``loc.<res-4 region>._many``: several couriers' fixes (`CourierLocatedMany`)."""
        return f"{self.ns}.loc.{region}._many"

    def locations_all(self) -> str:
        return f"{self.ns}.loc.>"

    def locations_in_region(self, region: str) -> str:
        return f"{self.ns}.loc.{region}.*"

    def order_event(self, kind: str, order_id: str) -> str:
        """``order.<kind>.<order_id>`` for kind in created / status."""
        return f"{self.ns}.order.{kind}.{order_id}"

    def order_events_of(self, order_id: str) -> str:
        return f"{self.ns}.order.*.{order_id}"

    def orders_all(self) -> str:
        return f"{self.ns}.order.>"

    def dispatch_event(self, kind: str, order_id: str) -> str:
        """``dispatch.<kind>.<order_id>`` for kind in assigned / picked_up / delivered / ..."""
        return f"{self.ns}.dispatch.{kind}.{order_id}"

    def dispatch_all(self) -> str:
        return f"{self.ns}.dispatch.>"

    def courier_inbox(self, courier_id: str) -> str:
        """Core-plain (no JetStream) subject for pushing offers to a courier's socket."""
        return f"{self.ns}.courier.{courier_id}"

    def chat_event(self, order_id: str) -> str:
        """Core-plain subject of an order's live chat (messages and read receipts)."""
        return f"{self.ns}.chat.{order_id}"

    def chat_all(self) -> str:
        return f"{self.ns}.chat.*"

    def consumer(self, name: str) -> str:
        """Durable consumer names are namespaced too (they live inside the stream)."""
        return f"{self.ns}_{name}"
