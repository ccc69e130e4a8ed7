"""SMS through a provider interface, with a sandbox provider.

A real provider (Twilio, Vonage, SNS...) implements `SmsProvider`; the sandbox keeps what it
was asked to send, de-duplicates by idempotency key as real providers do, and refuses the
magic number `SANDBOX_INVALID_NUMBER` (a permanent failure, for tests).
"""

from __future__ import annotations

import collections
from typing import Protocol

from api.commerce.notifications.sinks import DeliveryFailed, LoggingSink, OutboundMessage

SANDBOX_INVALID_NUMBER = "+15005550001"
"""A number the sandbox treats as unreachable (the convention of Twilio's test numbers)."""


class SmsProvider(Protocol):
    async def send_sms(self, to: str, text: str, idempotency_key: str) -> None:
        """Send ``text`` to ``to``; raise `DeliveryFailed` when the provider refuses it."""
        ...


class SandboxSms:
    """Accepts every message (but the invalid number) and keeps it; a key seen before is
    accepted without a second copy."""

    def __init__(self, capacity: int = 1000) -> None:
        self.sent: collections.OrderedDict[str, tuple[str, str]] = collections.OrderedDict()
        self.capacity = capacity

    async def send_sms(self, to: str, text: str, idempotency_key: str) -> None:
        if to == SANDBOX_INVALID_NUMBER:
            raise DeliveryFailed("the number cannot receive SMS", permanent=True)
        if idempotency_key and idempotency_key in self.sent:
            return
        self.sent[idempotency_key or str(len(self.sent))] = (to, text)
        while len(self.sent) > self.capacity:
            self.sent.popitem(last=False)


class SmsSink(LoggingSink):
    """The SMS channel: one text (subject and body) through the provider; logged and kept
    like the development sink (secrets redacted)."""

    def __init__(self, provider: SmsProvider) -> None:
        super().__init__()
        self.provider = provider

    async def send(self, message: OutboundMessage) -> None:
        text = f"{message.subject}: {message.body}" if message.subject else message.body
        await self.provider.send_sms(message.to, text, message.key)
        await super().send(message)
