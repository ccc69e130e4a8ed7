"""Wire shapes of an order's chat."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

MAX_BODY_CHARS = 1000

Body = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_BODY_CHARS)]


class MessageCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    body: Body


class ReadUpTo(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    last_read_id: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
    """The newest message the caller has read (receipts never move back)."""


class ChatMessage(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    order_id: str
    sender_id: str
    sender_role: str
    """customer, chef, courier or staff."""
    body: str
    created_at: datetime


class ReadReceipt(msgspec.Struct, frozen=True, kw_only=True):
    reader_id: str
    reader_role: str
    last_read_id: int
    read_at: datetime


class ChatPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of the order's messages, newest first, with everyone's read receipts."""

    data: list[ChatMessage]
    total: int
    page: int
    limit: int
    open: bool
    """Whether messages may still be sent (until 24 h after delivery or cancellation)."""
    reads: list[ReadReceipt]
