"""Web Push for the browser apps (RFC 8030 delivery, RFC 8291 encryption, RFC 8292 VAPID).

The server's VAPID key pair is generated once under DATA_DIR (every commerce process of a
deployment shares it: browsers subscribed with its public key). Payloads are encrypted with
pywebpush (aes128gcm) and POSTed with httpx; 404/410 from the push service means the
subscription is gone.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pywebpush import WebPusher

from api.commerce.notifications.sinks import DeliveryFailed, OutboundMessage, PushTarget
from api.settings import NotifySettings

VAPID_FILE = "vapid_private.pem"
_VAPID_TTL_S = 12 * 3600
"""Lifetime of a VAPID token (RFC 8292 allows up to 24 h)."""


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_vapid(data_dir: Path, private_key: str = "") -> Vapid02:
    """The deployment's VAPID key: ``private_key`` when given (``VAPID_PRIVATE_KEY``), else
    the one under ``data_dir``, generated on first use. Concurrent first starts agree: the
    key is written to a temporary file and linked into place, and a loser reads the
    winner's."""
    if private_key:
        return Vapid02.from_string(private_key)
    path = data_dir / VAPID_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        vapid = Vapid02()
        vapid.generate_keys()
        tmp = path.with_name(f".{VAPID_FILE}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(vapid.private_pem())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return Vapid02.from_file(str(path))


def application_server_key(vapid: Vapid02) -> str:
    """The public key browsers pass to ``PushManager.subscribe`` (base64url, no padding)."""
    raw = vapid.public_key.public_bytes(serialization.Encoding.X962,
                                        serialization.PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def check_subscription(target: PushTarget, *, allow_loopback: bool) -> str | None:
    """Why a subscription cannot be used, or None. The endpoint is a URL commerce will POST
    to, so only public https hosts are accepted (loopback http only when allowed: a local
    push service in tests); the keys must be a P-256 point and a 16-byte secret."""
    try:
        parts = urlsplit(target.endpoint)
        host = parts.hostname or ""
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return "endpoint is not a URL"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    loopback = host == "localhost" or (ip is not None and ip.is_loopback)
    if not (allow_loopback and loopback and parts.scheme in ("http", "https")):
        if parts.scheme != "https" or not host:
            return "endpoint must be an https URL"
        if loopback or (ip is not None and not ip.is_global) or host.endswith(".local"):
            return "endpoint must be a public push service"
    try:
        point = _b64url_decode(target.p256dh)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except (ValueError, TypeError):
        return "keys.p256dh is not a base64url P-256 public key"
    try:
        auth = _b64url_decode(target.auth)
    except (ValueError, TypeError):
        auth = b""
    if len(auth) != 16:
        return "keys.auth must be 16 bytes, base64url"
    return None


class PushPayload(msgspec.Struct, frozen=True, kw_only=True):
    """What the apps' service worker receives (decrypted) in its ``push`` event."""

    title: str
    body: str
    data: dict[str, str]


class WebPushSink:
    """Encrypts each message for its subscription and POSTs it to the push service."""

    def __init__(self, settings: NotifySettings, vapid: Vapid02,
                 client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.vapid = vapid
        self.client = client

    def _authorization(self, endpoint: str) -> str:
        parts = urlsplit(endpoint)
        claims = {"sub": self.settings.vapid_subject, "aud": f"{parts.scheme}://{parts.netloc}",
                  "exp": int(time.time()) + _VAPID_TTL_S}
        header: str = self.vapid.sign(claims)["Authorization"]
        return header

    async def send(self, message: OutboundMessage) -> None:
        target = message.push
        if target is None:
            raise DeliveryFailed("no push subscription", permanent=True)
        payload = msgspec.json.encode(PushPayload(title=message.subject, body=message.body,
                                                  data=message.data))
        pusher = WebPusher({"endpoint": target.endpoint,
                            "keys": {"p256dh": target.p256dh, "auth": target.auth}})
        body = pusher.encode(payload, "aes128gcm")["body"]
        headers = {"Content-Encoding": "aes128gcm", "TTL": str(self.settings.push_ttl_s),
                   "Urgency": "high", "Authorization": self._authorization(target.endpoint)}
        if message.key:
            headers["Topic"] = message.key[:32]  # a resend replaces the undelivered copy
        try:
            r = await self.client.post(target.endpoint, content=body, headers=headers,
                                       timeout=self.settings.send_timeout_s)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"push service unreachable: {exc!r}") from None
        if r.status_code in (404, 410):
            raise DeliveryFailed(f"subscription gone ({r.status_code})", gone=True)
        if r.status_code == 429 or r.status_code >= 500:
            raise DeliveryFailed(f"push service answered {r.status_code}")
        if r.status_code >= 400:
            raise DeliveryFailed(f"push service refused: {r.status_code}", permanent=True)
