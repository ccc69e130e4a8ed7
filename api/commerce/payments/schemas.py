"""Wire shapes of payments."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from api.commerce.payments.provider import PaymentStatus


class IntentRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    order_id: UUID


class ConfirmRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    payment_id: UUID
    payment_method: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class Payment(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    order_id: UUID
    status: PaymentStatus
    amount_cents: int
    currency: str
    client_secret: str
    method: str
    provider: str
    failure_reason: str
    refunded_cents: int
    created_at: datetime
    updated_at: datetime


class RefundRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""
