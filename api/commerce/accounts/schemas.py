"""Wire shapes of auth, users and addresses (seed §4.2 JSON tags)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

# Text PostgreSQL or UTF-8 cannot hold (a NUL byte, a lone surrogate) is refused here, as a
# 400 validation problem, instead of failing in the database or the hasher (a 500).
_STORABLE = r"^[^\x00\ud800-\udfff]*$"
_EMAIL_CHAR = r"[^@\s\x00-\x1f\x7f\ud800-\udfff]"
Email = Annotated[str, msgspec.Meta(
    pattern=rf"^{_EMAIL_CHAR}+@{_EMAIL_CHAR}+\.{_EMAIL_CHAR}+$", max_length=254)]
LooseEmail = Annotated[str, msgspec.Meta(pattern=_STORABLE, max_length=254)]
"""An e-mail as typed at login or a reset request: not checked for shape (a wrong one finds
no account), only for being storable text."""
Password = Annotated[str, msgspec.Meta(min_length=8, max_length=128, pattern=_STORABLE)]
Phone = Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9]{7,15}$")]
Name = Annotated[str, msgspec.Meta(max_length=100, pattern=_STORABLE)]
Latitude = Annotated[float, msgspec.Meta(ge=-90, le=90)]
Longitude = Annotated[float, msgspec.Meta(ge=-180, le=180)]
Short = Annotated[str, msgspec.Meta(max_length=200)]


class User(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    email: str
    phone: str | None
    first_name: str
    last_name: str
    avatar: str
    role: str
    email_verified: bool
    phone_verified: bool
    is_active: bool
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime


class RegisterRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    email: Email
    password: Password
    role: Literal["customer", "chef", "delivery"] = "customer"
    first_name: Name = ""
    last_name: Name = ""
    phone: Phone | None = None


class LoginRequest(msgspec.Struct, frozen=True, kw_only=True):
    email: LooseEmail
    password: Annotated[str, msgspec.Meta(max_length=128, pattern=_STORABLE)]


class SocialLoginRequest(msgspec.Struct, frozen=True, kw_only=True):
    provider: Literal["google", "facebook", "apple"]
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class RefreshRequest(msgspec.Struct, frozen=True, kw_only=True):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=512, pattern=_STORABLE)]


class TokenPair(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"
    expires_in: int
    user: User


class ForgotPasswordRequest(msgspec.Struct, frozen=True, kw_only=True):
    email: LooseEmail


class ResetPasswordRequest(msgspec.Struct, frozen=True, kw_only=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=_STORABLE)]
    password: Password


class SendOtpRequest(msgspec.Struct, frozen=True, kw_only=True):
    phone: Phone


class VerifyOtpRequest(msgspec.Struct, frozen=True, kw_only=True):
    phone: Phone
    code: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$")]


class Accepted(msgspec.Struct, frozen=True, kw_only=True):
    """A request taken in without revealing more (e.g. whether an email exists)."""

    status: str = "accepted"
    detail: str = ""


class UserUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    first_name: Name | None = None
    last_name: Name | None = None
    avatar: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class Address(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    user_id: UUID
    label: str
    line1: str
    line2: str
    city: str
    state: str
    postal_code: str
    country: str
    latitude: float
    longitude: float
    is_default: bool
    created_at: datetime
    updated_at: datetime


class AddressCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    label: Short = ""
    line1: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    line2: Short = ""
    city: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    state: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    postal_code: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    country: Annotated[str, msgspec.Meta(min_length=2, max_length=2)] = "US"
    latitude: Latitude
    longitude: Longitude
    is_default: bool = False


class AddressUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    label: Short | None = None
    line1: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    line2: Short | None = None
    city: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    state: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    postal_code: Annotated[str, msgspec.Meta(min_length=1, max_length=20)] | None = None
    country: Annotated[str, msgspec.Meta(min_length=2, max_length=2)] | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    is_default: bool | None = None
