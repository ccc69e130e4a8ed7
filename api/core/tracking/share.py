"""Share links of an order's tracking page: signed, expiring tokens (pure, no I/O).

A token names one order and when it expires, signed with HMAC-SHA256 under a key derived
from the JWT secret (a separate purpose, so a share token is never a bearer token and the
other way round). Nothing is stored: any core process checks any token, and a Redis that
lost its data loses no links. 128 bits of MAC make a token unguessable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from enum import StrEnum

__all__ = ["ShareKey", "ShareRefusal", "ShareRefused"]

_PURPOSE = b"homechef order share link v1"
_MAC_BYTES = 16


class ShareRefusal(StrEnum):
    INVALID = "share link not valid"
    EXPIRED = "share link expired"


class ShareRefused(Exception):
    def __init__(self, refusal: ShareRefusal) -> None:
        super().__init__(refusal.value)
        self.refusal = refusal


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ShareKey:
    """Issues and reads share tokens under one secret."""

    __slots__ = ("_key",)

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]

    def issue(self, order_id: str, expires_s: int) -> str:
        """A token for ``order_id`` valid until ``expires_s`` (epoch seconds)."""
        body = f"{order_id}.{expires_s}".encode()
        return f"{_b64(body)}.{_b64(self._mac(body))}"

    def read(self, token: str, now_s: float) -> tuple[str, int]:
        """(order id, expiry in epoch seconds) of a genuine, unexpired token; raises
        `ShareRefused` (INVALID: malformed or forged; EXPIRED)."""
        try:
            body_b64, mac_b64 = token.split(".")
            body, mac = _unb64(body_b64), _unb64(mac_b64)
        except (ValueError, binascii.Error):
            raise ShareRefused(ShareRefusal.INVALID) from None
        if len(token) > 400 or not hmac.compare_digest(mac, self._mac(body)):
            raise ShareRefused(ShareRefusal.INVALID)
        order_id, _, expires = body.decode(errors="replace").rpartition(".")
        if not order_id or not expires.isdigit():
            raise ShareRefused(ShareRefusal.INVALID)
        if int(expires) <= now_s:
            raise ShareRefused(ShareRefusal.EXPIRED)
        return order_id, int(expires)
