"""Social login (Google, Facebook, Apple) behind a provider port.

A provider exchanges the client's token for a verified identity. None is configured by
default: the endpoint then answers 501 problem+json instead of pretending to succeed.
"""

from __future__ import annotations

from typing import Protocol

import msgspec


class SocialIdentity(msgspec.Struct, frozen=True, kw_only=True):
    subject: str
    email: str
    email_verified: bool
    first_name: str = ""
    last_name: str = ""


class SocialProvider(Protocol):
    name: str

    async def verify(self, token: str) -> SocialIdentity | None:
        """The identity behind ``token``, or None when the provider rejects it."""
        ...
