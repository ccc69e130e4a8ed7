"""The caller's user id as a UUID: a token whose subject is not a commerce user id (e.g. a
simulated courier) names no commerce resource, so it is 404, never a 500."""

from __future__ import annotations

import uuid

from api.problems import Problem


def user_uuid(user_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(user_id)
    except ValueError:
        raise Problem(404, "no commerce account for this identity", code="unknown_user") from None
