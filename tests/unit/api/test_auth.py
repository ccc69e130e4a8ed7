"""Access tokens: seed §7.2 claims, HS256, expiry, issuer; anything else is refused."""

from __future__ import annotations

import time

import jwt
import pytest
from litestar.exceptions import NotAuthorizedException

from api.auth import ISSUER, Role, TokenCodec

SECRET = "unit-test-secret-" + "z" * 32


def test_issued_token_carries_seed_claims() -> None:
    """A token has sub, role, email, permissions, iat, exp and iss "homechef-api"."""
    codec = TokenCodec(SECRET, ttl_s=600)
    token = codec.issue("u1", Role.DELIVERY, email="c@x.io", permissions=["read:orders"],
                        now_s=int(time.time()))
    raw = jwt.decode(token, SECRET, algorithms=["HS256"], issuer=ISSUER)
    assert raw["sub"] == "u1"
    assert raw["role"] == "delivery"
    assert raw["email"] == "c@x.io"
    assert raw["permissions"] == ["read:orders"]
    assert raw["exp"] - raw["iat"] == 600
    assert raw["iss"] == ISSUER
    claims = codec.verify(token)
    assert (claims.sub, claims.role) == ("u1", Role.DELIVERY)


def test_expired_token_is_refused() -> None:
    """exp in the past (beyond the leeway) is 'token expired'."""
    codec = TokenCodec(SECRET, leeway_s=0)
    token = codec.issue("u1", Role.CUSTOMER, now_s=int(time.time()) - 1000, ttl_s=60)
    with pytest.raises(NotAuthorizedException, match="expired"):
        codec.verify(token)


@pytest.mark.parametrize(
    "token_factory",
    [
        lambda: jwt.encode({"sub": "u", "role": "admin", "iat": 1, "exp": 2**40, "iss": ISSUER},
                           "another-secret-" + "q" * 32, algorithm="HS256"),
        lambda: jwt.encode({"sub": "u", "role": "admin", "iat": 1, "exp": 2**40, "iss": "evil"},
                           SECRET, algorithm="HS256"),
        lambda: jwt.encode({"sub": "u", "role": "admin", "iat": 1, "exp": 2**40, "iss": ISSUER},
                           None, algorithm="none"),
        lambda: jwt.encode({"sub": "u", "role": "emperor", "iat": 1, "exp": 2**40, "iss": ISSUER},
                           SECRET, algorithm="HS256"),
        lambda: jwt.encode({"role": "admin", "iat": 1, "exp": 2**40, "iss": ISSUER},
                           SECRET, algorithm="HS256"),
        lambda: "not-a-jwt",
    ],
    ids=["wrong-secret", "wrong-issuer", "alg-none", "unknown-role", "no-sub", "garbage"],
)
def test_forged_or_malformed_tokens_are_refused(token_factory: object) -> None:
    """Wrong key, wrong issuer, alg none, unknown role, missing sub, garbage: all 401."""
    with pytest.raises(NotAuthorizedException):
        TokenCodec(SECRET).verify(token_factory())  # type: ignore[operator]
