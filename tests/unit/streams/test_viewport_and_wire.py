"""Console viewports and the client wire format (the seed's §8.2 shapes)."""

from __future__ import annotations

import json

import h3
import msgspec
import pytest

from streams.viewport import ViewportError, viewport_cells
from streams.wire import (
    DeliveryLocation,
    DeliveryLocationPayload,
    OrderStatusPayload,
    OrderStatusUpdate,
    Ping,
    Point,
    Subscribe,
    SubscribePayload,
    decode_client,
    encode,
    eta_text,
    iso_utc,
)

CELL = h3.latlng_to_cell(12.97, 77.59, 7)

BAD: list[tuple[SubscribePayload, str]] = [
    (SubscribePayload(), "bad_viewport"),
    (SubscribePayload(cells=[CELL], bbox=(0, 0, 1, 1)), "bad_viewport"),
    (SubscribePayload(cells=["zz"]), "bad_cell"),
    (SubscribePayload(cells=[h3.latlng_to_cell(12.97, 77.59, 9)]), "bad_cell"),
    (SubscribePayload(bbox=(1, 0, 0, 1)), "bad_bbox"),
    (SubscribePayload(bbox=(0, 0, 1, 91)), "bad_bbox"),
    (SubscribePayload(bbox=(0, 0, float("nan"), 1)), "bad_bbox"),
    (SubscribePayload(bbox=(-10, -10, 10, 10)), "viewport_too_large"),
]


@pytest.mark.parametrize(("payload", "reason"), BAD)
def test_bad_viewports_are_refused(payload: SubscribePayload, reason: str) -> None:
    """Exactly one of cells / bbox; cells must be res-7; bboxes well-formed and bounded."""
    with pytest.raises(ViewportError) as info:
        viewport_cells(payload, max_cells=5000)
    assert info.value.reason == reason


def test_bbox_covers_every_cell_it_touches() -> None:
    """Every res-7 cell containing a point of the bbox (corners included) is in view."""
    bbox = (77.55, 12.95, 77.62, 12.99)
    cells = viewport_cells(SubscribePayload(bbox=bbox), max_cells=5000)
    for lat in (12.95, 12.97, 12.99):
        for lng in (77.55, 77.585, 77.62):
            assert h3.latlng_to_cell(lat, lng, 7) in cells
    assert len(cells) < 200


def test_cells_are_taken_as_given() -> None:
    assert viewport_cells(SubscribePayload(cells=[CELL]), 10) == frozenset({CELL})


@pytest.mark.parametrize(("eta_s", "text"), [(0, "0 mins"), (1, "1 min"), (60, "1 min"),
                                             (61, "2 mins"), (600, "10 mins")])
def test_eta_text_rounds_minutes_up(eta_s: float, text: str) -> None:
    assert eta_text(eta_s) == text


def test_messages_have_the_seed_shapes() -> None:
    """type + payload with camelCase keys; ids on status updates; eta_s keeps its name."""
    status = json.loads(encode(OrderStatusUpdate(id=7, payload=OrderStatusPayload(
        order_id="o1", status="preparing", timestamp=iso_utc(1_704_110_400_000),
        estimated_time=iso_utc(1_704_112_200_000)))))
    assert status == {"type": "ORDER_STATUS_UPDATE", "id": 7, "payload": {
        "orderId": "o1", "status": "preparing", "timestamp": "2024-01-01T12:00:00Z",
        "estimatedTime": "2024-01-01T12:30:00Z"}}
    loc = json.loads(encode(DeliveryLocation(payload=DeliveryLocationPayload(
        order_id="o1", delivery_id="c1", location=Point(12.9716, 77.5946), eta="10 mins",
        eta_s=600, timestamp="2024-01-01T12:00:00Z", ts=1))))
    assert loc["type"] == "DELIVERY_LOCATION"
    assert loc["payload"]["location"] == {"lat": 12.9716, "lng": 77.5946}
    assert loc["payload"]["deliveryId"] == "c1"
    assert (loc["payload"]["eta"], loc["payload"]["eta_s"]) == ("10 mins", 600)


def test_client_messages_decode_by_type() -> None:
    sub = decode_client(b'{"type":"SUBSCRIBE","payload":{"bbox":[1,2,3,4]}}')
    assert isinstance(sub, Subscribe)
    assert sub.payload.bbox == (1, 2, 3, 4)
    assert isinstance(decode_client(b'{"type":"PING"}'), Ping)
    with pytest.raises(msgspec.DecodeError):
        decode_client(b'{"type":"HELLO"}')
