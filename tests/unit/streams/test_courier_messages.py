"""The courier socket's messages, pinned byte for byte: what the courier app, the simulator
(api/simulator/agents.py) and the tests read. Payload keys are snake_case, every field is
present (``ready_at`` as null), ``type`` comes first. An offer's job (`CourierJob`: addresses,
names, payout, legs) comes first in its payload."""

from __future__ import annotations

from typing import get_args

import msgspec
import pytest

from streams.wire import (
    AssignedBy,
    CourierChatMessage,
    CourierChatMessagePayload,
    CourierChatRead,
    CourierChatReadPayload,
    CourierMessage,
    Offer,
    OfferExpired,
    OfferExpiredPayload,
    OfferPayload,
    OfferWithdrawn,
    OfferWithdrawnPayload,
    OrderAssigned,
    OrderAssignedPayload,
    OrderReady,
    OrderReadyPayload,
    OrderUnassigned,
    OrderUnassignedPayload,
    Point,
    WithdrawReason,
    decode_courier,
    encode,
)

CHEF, DOOR = Point(12.97, 77.59), Point(12.99, 77.61)
NO_JOB = (b'"pickup_address":"","dropoff_address":"","chef_name":"","customer_name":"",'
          b'"customer_phone_masked":"","instructions":"","items_count":0,"payout_cents":0,'
          b'"pickup_distance_m":null,"pickup_eta_s":null,"dropoff_distance_m":null,'
          b'"dropoff_eta_s":null,')

# (message sent, exact JSON on the wire)
TABLE: list[tuple[CourierMessage, bytes]] = [
    (Offer(payload=OfferPayload(offer_id="of1", order_id="o1", pickup=CHEF, dropoff=DOOR,
                                ready_at=1_704_110_400_000, expires_at=1_704_110_430_000)),
     b'{"type":"OFFER","payload":{' + NO_JOB + b'"offer_id":"of1","order_id":"o1",'
     b'"pickup":{"lat":12.97,"lng":77.59},"dropoff":{"lat":12.99,"lng":77.61},'
     b'"ready_at":1704110400000,"expires_at":1704110430000,"stacked":false}}'),
    (Offer(payload=OfferPayload(
        offer_id="of2", order_id="o2", pickup=CHEF, dropoff=DOOR, ready_at=None,
        expires_at=1_704_110_430_000, stacked=True, pickup_address="1 A St",
        dropoff_address="2 B Rd", chef_name="Meena", customer_name="Ada",
        customer_phone_masked="•••• 4567", instructions="Gate 3", items_count=2,
        payout_cents=650, pickup_distance_m=800, pickup_eta_s=257, dropoff_distance_m=2100,
        dropoff_eta_s=675)),
     b'{"type":"OFFER","payload":{"pickup_address":"1 A St","dropoff_address":"2 B Rd",'
     b'"chef_name":"Meena","customer_name":"Ada",'
     + '"customer_phone_masked":"•••• 4567",'.encode() +
     b'"instructions":"Gate 3","items_count":2,"payout_cents":650,'
     b'"pickup_distance_m":800,"pickup_eta_s":257,"dropoff_distance_m":2100,'
     b'"dropoff_eta_s":675,"offer_id":"of2","order_id":"o2",'
     b'"pickup":{"lat":12.97,"lng":77.59},"dropoff":{"lat":12.99,"lng":77.61},'
     b'"ready_at":null,"expires_at":1704110430000,"stacked":true}}'),
    (OfferExpired(payload=OfferExpiredPayload(offer_id="of1", order_id="o1")),
     b'{"type":"OFFER_EXPIRED","payload":{"offer_id":"of1","order_id":"o1"}}'),
    (OfferWithdrawn(payload=OfferWithdrawnPayload(order_id="o1",
                                                  reason=WithdrawReason.CANCELLED)),
     b'{"type":"OFFER_WITHDRAWN","payload":{"order_id":"o1","reason":"cancelled"}}'),
    (OrderReady(payload=OrderReadyPayload(order_id="o1", ready_at=1_704_110_400_000)),
     b'{"type":"ORDER_READY","payload":{"order_id":"o1","ready_at":1704110400000}}'),
    (OrderAssigned(payload=OrderAssignedPayload(order_id="o1", by=AssignedBy.FLEET,
                                                pickup=CHEF, dropoff=DOOR)),
     b'{"type":"ASSIGNED","payload":{"order_id":"o1","by":"fleet",'
     b'"pickup":{"lat":12.97,"lng":77.59},"dropoff":{"lat":12.99,"lng":77.61}}}'),
    (OrderUnassigned(payload=OrderUnassignedPayload(order_id="o1")),
     b'{"type":"UNASSIGNED","payload":{"order_id":"o1"}}'),
    (CourierChatMessage(payload=CourierChatMessagePayload(
        id=7, order_id="o1", sender_id="u1", sender_role="customer", body="Gate 3",
        created_at="2024-01-01T12:00:00+00:00")),
     b'{"type":"CHAT_MESSAGE","payload":{"id":7,"order_id":"o1","sender_id":"u1",'
     b'"sender_role":"customer","body":"Gate 3","created_at":"2024-01-01T12:00:00+00:00"}}'),
    (CourierChatRead(payload=CourierChatReadPayload(
        order_id="o1", reader_id="u1", reader_role="customer", last_read_id=7,
        read_at="2024-01-01T12:00:05+00:00")),
     b'{"type":"CHAT_READ","payload":{"order_id":"o1","reader_id":"u1",'
     b'"reader_role":"customer","last_read_id":7,"read_at":"2024-01-01T12:00:05+00:00"}}'),
]


@pytest.mark.parametrize(("message", "expect"), TABLE,
                         ids=[f"{type(m).__name__}-{i}" for i, (m, _) in enumerate(TABLE)])
def test_each_courier_message_encodes_to_its_exact_json(message: CourierMessage,
                                                        expect: bytes) -> None:
    """Each message encodes to exactly the bytes the courier app has always read, and a
    courier app decoding them gets the same message back."""
    assert encode(message) == expect
    assert decode_courier(expect) == message


def test_every_courier_message_type_is_pinned() -> None:
    """The table covers every member of the union (a new message needs its row)."""
    assert {type(m) for m, _ in TABLE} == set(get_args(CourierMessage))


def test_an_unknown_courier_message_type_is_refused() -> None:
    """A courier app decoding with this union refuses a type it does not know."""
    with pytest.raises(msgspec.ValidationError):
        decode_courier(b'{"type":"TELEPORT","payload":{}}')
