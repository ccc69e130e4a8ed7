"""Wire shapes of photos (URLs are signed and expire; ``path`` is the stable address)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

PhotoKind = Literal["kitchen", "profile", "banner", "dish", "proof"]
ChefPhotoKind = Literal["kitchen", "profile", "banner"]
Variant = Literal["original", "thumb"]


class Photo(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: PhotoKind
    content_type: str
    width: int
    height: int
    bytes: int
    url: str
    """Signed URL of the photo, valid until ``expires_at``."""
    thumbnail_url: str
    """Signed URL of the thumbnail, valid until ``expires_at``."""
    expires_at: datetime
    path: str
    """Stable address (``/api/v1/photos/{id}``) that redirects to a fresh signed URL; what
    the dish and chef image fields hold. Proof-of-delivery photos have none (empty)."""
    created_at: datetime


class PhotoList(msgspec.Struct, frozen=True, kw_only=True):
    data: list[Photo]
