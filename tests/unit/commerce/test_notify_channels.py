"""Pure parts of the notification channels: the retry backoff, which push subscriptions
are accepted, and the VAPID key kept under DATA_DIR (or given)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from api.commerce.notifications.deliveries import retry_delay_s
from api.commerce.notifications.sinks import PushTarget
from api.commerce.notifications.webpush import (
    application_server_key,
    check_subscription,
    load_vapid,
)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# Fixed keys: parameter ids must be the same in every pytest-xdist worker.
POINT = _b64(ec.derive_private_key(20_260_101, ec.SECP256R1()).public_key().public_bytes(
    serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))
AUTH = _b64(bytes(range(16)))


def test_backoff_doubles_up_to_its_cap() -> None:
    """5 s, 10 s, 20 s ... never above the cap, whatever the attempt count."""
    assert [retry_delay_s(n, 5, 60) for n in range(1, 6)] == [5, 10, 20, 40, 60]
    assert retry_delay_s(10_000, 5, 1800) == 1800


@pytest.mark.parametrize(("endpoint", "p256dh", "auth", "loopback", "ok"), [
    ("https://fcm.googleapis.com/fcm/send/abc", POINT, AUTH, False, True),
    ("https://updates.push.services.mozilla.com/wpush/v2/x", POINT, AUTH, False, True),
    ("http://fcm.googleapis.com/fcm/send/abc", POINT, AUTH, False, False),  # not https
    ("https://127.0.0.1/x", POINT, AUTH, False, False),                     # loopback
    ("https://192.168.1.10/x", POINT, AUTH, False, False),                  # private
    ("https://printer.local/x", POINT, AUTH, False, False),
    ("http://127.0.0.1:9000/x", POINT, AUTH, True, True),                   # allowed in tests
    ("http://10.0.0.1/x", POINT, AUTH, True, False),                        # still private
    ("https://fcm.googleapis.com/x", _b64(b"\x04" + b"\x01" * 64), AUTH, False, False),
    ("https://fcm.googleapis.com/x", POINT, _b64(b"short"), False, False),
    ("https://[::1/x", POINT, AUTH, False, False),                          # not a URL
    ("https://[2001:4860::1]/x", POINT, AUTH, False, True),                 # a public IPv6
])
def test_only_public_https_endpoints_with_real_keys(endpoint: str, p256dh: str, auth: str,
                                                    loopback: bool, ok: bool) -> None:
    """Commerce POSTs to a subscription's endpoint: a public https host, or loopback only
    where allowed; the keys must be a point on P-256 and a 16-byte secret."""
    target = PushTarget(endpoint=endpoint, p256dh=p256dh, auth=auth)
    assert (check_subscription(target, allow_loopback=loopback) is None) == ok


def test_the_vapid_key_is_made_once_and_kept(tmp_path: Path) -> None:
    """A second load reads the same key (browsers subscribed with it stay reachable); the
    file is private; a given key wins over the file."""
    first = load_vapid(tmp_path / "data")
    again = load_vapid(tmp_path / "data")
    assert application_server_key(first) == application_server_key(again)
    assert (tmp_path / "data" / "vapid_private.pem").stat().st_mode & 0o777 == 0o600
    raw = first.private_key.private_numbers().private_value.to_bytes(32, "big")
    given = load_vapid(tmp_path / "other", _b64(raw))
    assert application_server_key(given) == application_server_key(first)
    assert not (tmp_path / "other").exists()
