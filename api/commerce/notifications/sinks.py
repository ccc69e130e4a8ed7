"""Outbound channels (email, SMS, push) behind one port, with a logging development sink.

A channel implements ``MessageSink``: it delivers one message or raises `DeliveryFailed`
(``permanent`` when trying again cannot help). `ChannelSinks` routes each message to its
channel's sink. Tests use ``RecordingSink`` to read what would have been sent (one-time
tokens, OTP codes) without monkeypatching. The development ``LoggingSink`` logs each message
without its secrets and keeps it in memory.
"""

from __future__ import annotations

import collections
import logging
from typing import Literal, Protocol

import msgspec

from api.observability import REDACTED
from api.problems import Problem

log = logging.getLogger("homechef.notify")

Channel = Literal["email", "sms", "push"]


class PushTarget(msgspec.Struct, frozen=True, kw_only=True):
    """A browser's push subscription (``PushSubscription.toJSON()``'s keys, base64url)."""

    endpoint: str
    p256dh: str
    auth: str


class OutboundMessage(msgspec.Struct, frozen=True, kw_only=True):
    channel: Channel
    to: str
    """Email address, phone number or push endpoint."""
    subject: str
    body: str
    data: dict[str, str] = msgspec.field(default_factory=dict)
    key: str = ""
    """Idempotency key: the same key for every attempt at one delivery (the e-mail's
    Message-ID, the SMS provider's idempotency key, the push Topic), so a resend after a
    crash can be recognised downstream."""
    push: PushTarget | None = None
    """The subscription, for ``channel == "push"``."""


class DeliveryFailed(Exception):
    """A send did not go through. ``permanent``: the destination refuses it for good (an
    unknown address, an expired push subscription): trying again cannot help."""

    def __init__(self, reason: str, *, permanent: bool = False, gone: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent or gone
        self.gone = gone
        """The push subscription no longer exists (404/410): it is forgotten."""


class MessageSink(Protocol):
    """Delivers one message or raises `DeliveryFailed` (other errors count as transient)."""

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


class ChannelSinks:
    """One sink per channel behind the `MessageSink` port; ``last`` reads the development
    sinks (those that keep messages)."""

    def __init__(self, email: MessageSink, sms: MessageSink, push: MessageSink) -> None:
        self.by_channel: dict[Channel, MessageSink] = {"email": email, "sms": sms,
                                                       "push": push}

    async def send(self, message: OutboundMessage) -> None:
        await self.by_channel[message.channel].send(message)

    def last(self, channel: Channel, to: str) -> OutboundMessage | None:
        sink = self.by_channel[channel]
        return sink.last(channel, to) if isinstance(sink, RecordingSink) else None


async def send_now(sink: MessageSink, message: OutboundMessage, retry_after_s: int = 5) -> None:
    """Send a message the caller waits for (a reset link, an OTP code); a channel that is
    down answers 503 with Retry-After, never a 500."""
    try:
        await sink.send(message)
    except (DeliveryFailed, OSError, TimeoutError) as exc:
        log.warning("could not send %s now: %s", message.channel, exc)
        raise Problem(503, f"the {message.channel} channel is unavailable; try again shortly",
                      code="channel_unavailable",
                      headers={"Retry-After": str(retry_after_s)}) from None
