"""Wire shapes of notification preferences and push subscriptions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec


class Preferences(msgspec.Struct, frozen=True, kw_only=True):
    """Which channels carry a user's notifications (the in-app inbox always does). SMS
    needs a verified phone; push needs a subscribed browser."""

    email: bool = True
    sms: bool = False
    push: bool = True


class PreferencesUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Only the channels given change."""

    email: bool | None = None
    sms: bool | None = None
    push: bool | None = None


Base64Url = Annotated[str, msgspec.Meta(min_length=1, max_length=200,
                                        pattern=r"^[A-Za-z0-9_-]+={0,2}$")]


class PushKeys(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    p256dh: Base64Url
    auth: Base64Url


class PushSubscriptionCreate(msgspec.Struct, frozen=True, kw_only=True):
    """``PushSubscription.toJSON()`` as the browser gives it (``expirationTime`` ignored)."""

    endpoint: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    keys: PushKeys
    expirationTime: int | None = None  # the browser's field name


class PushSubscription(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    endpoint: str
    created_at: datetime


class PushKey(msgspec.Struct, frozen=True, kw_only=True):
    """The application server key for ``PushManager.subscribe`` (base64url)."""

    public_key: str
