"""Outbound channels (email, SMS, push) behind one port, with a logging development sink.

A real provider (SES, Twilio, FCM...) implements ``MessageSink``; tests use ``RecordingSink``
to read what would have been sent (one-time tokens, OTP codes) without monkeypatching. The
development ``LoggingSink`` logs each message without its secrets and keeps it in memory.
"""

from __future__ import annotations

import collections
import logging
from typing import Literal, Protocol

import msgspec

from api.observability import REDACTED

log = logging.getLogger("homechef.notify")

Channel = Literal["email", "sms", "push"]


class OutboundMessage(msgspec.Struct, frozen=True, kw_only=True):
    channel: Channel
    to: str
    """Email address, phone number or user id (push)."""
    subject: str
    body: str
    data: dict[str, str] = msgspec.field(default_factory=dict)


class MessageSink(Protocol):
    """Delivers one message; must not raise for delivery failures it can retry itself."""

    async def send(self, message: OutboundMessage) -> None: ...


class RecordingSink:
    """Keeps the last ``capacity`` messages in memory (tests and local demos)."""

    def __init__(self, capacity: int = 1000) -> None:
        self.messages: collections.deque[OutboundMessage] = collections.deque(maxlen=capacity)

    async def send(self, message: OutboundMessage) -> None:
        self.messages.append(message)

    def last(self, channel: Channel, to: str) -> OutboundMessage | None:
        for m in reversed(self.messages):
            if m.channel == channel and m.to == to:
                return m
        return None


class LoggingSink(RecordingSink):
    """Development sink: logs that a message went out, never its secrets. ``data`` holds
    one-time reset tokens and OTP codes, so only its keys are logged (values ``[REDACTED]``)
    and the body (which may quote them) is not; the messages themselves are kept in memory
    like `RecordingSink` (``app.state.commerce.messages.last(channel, to)``)."""

    async def send(self, message: OutboundMessage) -> None:
        await super().send(message)
        log.info("notify %s to %s: %s", message.channel, message.to, message.subject,
                 extra={"notify_data": dict.fromkeys(message.data, REDACTED)})
