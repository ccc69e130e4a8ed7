"""Expiring signed URLs for the local photo store: HMAC-SHA256 over the object key and the
expiry, with a key from configuration. Pure: the caller passes ``now``."""

from __future__ import annotations

import base64
import hashlib
import hmac


def derive_key(secret: str, purpose: str = "photos") -> bytes:
    """A key for one purpose derived from a longer-lived secret (JWT_SECRET), so a signed
    photo URL can never be replayed as anything else."""
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


def signature(key: bytes, object_key: str, expires_at: int) -> str:
    mac = hmac.new(key, f"{object_key}\n{expires_at}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def verify(key: bytes, object_key: str, expires_at: int, sig: str, now: int) -> bool:
    """The signature is the key's and the URL has not expired (constant-time compare)."""
    return now < expires_at and hmac.compare_digest(signature(key, object_key, expires_at),
                                                    sig)
