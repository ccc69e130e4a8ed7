"""Accounts: registration, login, rotating refresh tokens, logout, password reset, OTP,
rate limits and social login (seed §6 /auth, §7.2 tokens)."""

from __future__ import annotations

from api.auth import TokenCodec
from tests.integration.commerce.conftest import Api

AUTH = "/api/v1/auth"


async def test_register_returns_token_pair_with_seed_claims(api: Api) -> None:
    """Register answers {access_token, refresh_token, token_type, expires_in, user}; the access
    token carries sub = user id and the chosen role."""
    body = await api.register("chef")
    assert set(body) >= {"access_token", "refresh_token", "token_type", "expires_in", "user"}
    assert body["token_type"] == "Bearer"
    assert body["user"]["role"] == "chef"
    assert "password_hash" not in body["user"]
    assert api.settings.server.jwt_secret
    claims = TokenCodec(api.settings.server.jwt_secret).verify(body["access_token"])
    assert claims.sub == body["user"]["id"]
    assert claims.role == "chef"


async def test_register_never_admin_and_rejects_duplicates(api: Api) -> None:
    """Self-registration as admin is refused (400); a second account on one email is 409."""
    r = await api.client.post(f"{AUTH}/register", json={
        "email": api.email(), "password": "long-enough-1", "role": "admin"})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    email = api.email()
    await api.register(email=email)
    r = await api.client.post(f"{AUTH}/register", json={
        "email": email.upper(), "password": "long-enough-1"})
    assert r.status_code == 409


async def test_login_and_wrong_password(api: Api) -> None:
    """Good credentials log in (200, token pair); a wrong password is 401 problem+json."""
    email = api.email()
    await api.register(email=email, password="right-password-1")
    r = await api.client.post(f"{AUTH}/login", json={"email": email, "password": "nope-nope"})
    assert r.status_code == 401
    r = await api.client.post(f"{AUTH}/login", json={"email": email,
                                                     "password": "right-password-1"})
    assert r.status_code == 200
    assert r.json()["user"]["email"] == email
    claims = TokenCodec(api.settings.server.jwt_secret).verify(r.json()["access_token"])
    assert claims.name == "Customer"  # staff screens' name for the user (first name here)


async def test_login_is_rate_limited_per_account(api: Api) -> None:
    """After 5 failed logins on one account, even the right password is 429 for the window."""
    email = api.email()
    await api.register(email=email, password="right-password-1")
    for _ in range(5):
        r = await api.client.post(f"{AUTH}/login", json={"email": email, "password": "wrong-1"})
        assert r.status_code == 401
    r = await api.client.post(f"{AUTH}/login", json={"email": email,
                                                     "password": "right-password-1"})
    assert r.status_code == 429
    assert "retry-after" in r.headers


async def test_refresh_rotates_and_reuse_revokes_the_family(api: Api) -> None:
    """A refresh token works once; replaying a spent one is 401 and also revokes its
    successor (the whole session)."""
    body = await api.register()
    first = body["refresh_token"]
    r = await api.client.post(f"{AUTH}/refresh", json={"refresh_token": first})
    assert r.status_code == 200
    second = r.json()["refresh_token"]
    assert second != first
    r = await api.client.post(f"{AUTH}/refresh", json={"refresh_token": first})
    assert r.status_code == 401
    assert r.json()["type"].endswith("refresh_token_reused")
    r = await api.client.post(f"{AUTH}/refresh", json={"refresh_token": second})
    assert r.status_code == 401


async def test_logout_revokes_the_refresh_token(api: Api) -> None:
    """After logout the session's refresh token no longer refreshes."""
    body = await api.register()
    r = await api.client.post(f"{AUTH}/logout", json={"refresh_token": body["refresh_token"]},
                              headers=body["headers"])
    assert r.status_code == 200
    r = await api.client.post(f"{AUTH}/refresh", json={"refresh_token": body["refresh_token"]})
    assert r.status_code == 401


async def test_password_reset_token_is_one_time(api: Api) -> None:
    """forgot-password sends a token through the email sink; it resets the password once;
    an unknown email gets the same 202 answer."""
    email = api.email()
    await api.register(email=email, password="old-password-1")
    r = await api.client.post(f"{AUTH}/forgot-password", json={"email": email})
    assert r.status_code == 202
    r2 = await api.client.post(f"{AUTH}/forgot-password", json={"email": api.email()})
    assert r2.status_code == 202
    assert r2.json() == r.json()
    msg = api.sink.last("email", email)
    assert msg is not None
    token = msg.data["token"]
    r = await api.client.post(f"{AUTH}/reset-password",
                              json={"token": token, "password": "new-password-1"})
    assert r.status_code == 200
    r = await api.client.post(f"{AUTH}/reset-password",
                              json={"token": token, "password": "other-password-1"})
    assert r.status_code == 400
    r = await api.client.post(f"{AUTH}/login", json={"email": email,
                                                     "password": "new-password-1"})
    assert r.status_code == 200


async def test_phone_otp_through_sms_sink(api: Api) -> None:
    """send-otp texts a 6-digit code; a wrong code is 400; the right one verifies the phone."""
    user = await api.register()
    phone = "+1555" + user["user"]["id"].replace("-", "")[:7].translate(
        str.maketrans("abcdef", "123456"))
    r = await api.client.post(f"{AUTH}/send-otp", json={"phone": phone},
                              headers=user["headers"])
    assert r.status_code == 202
    msg = api.sink.last("sms", phone)
    assert msg is not None
    code = msg.data["code"]
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    r = await api.client.post(f"{AUTH}/verify-otp", json={"phone": phone, "code": wrong},
                              headers=user["headers"])
    assert r.status_code == 400
    r = await api.client.post(f"{AUTH}/verify-otp", json={"phone": phone, "code": code},
                              headers=user["headers"])
    assert r.status_code == 200
    assert r.json()["phone_verified"] is True


async def test_social_login_without_provider_is_a_clear_problem(api: Api) -> None:
    """No social provider configured: 501 problem+json, never a fake success."""
    r = await api.client.post(f"{AUTH}/login/social",
                              json={"provider": "google", "token": "anything"})
    assert r.status_code == 501
    assert r.json()["type"].endswith("social_login_unavailable")


async def test_addresses_crud_and_isolation(api: Api) -> None:
    """A user creates, lists, updates and deletes addresses; another user's address is 404."""
    alice, bob = await api.register(), await api.register()
    a = await api.address(alice)
    r = await api.client.get("/api/v1/users/me/addresses", headers=alice["headers"])
    assert r.json()["total"] == 1
    r = await api.client.put(f"/api/v1/users/me/addresses/{a['id']}",
                             json={"label": "Work"}, headers=alice["headers"])
    assert r.status_code == 200
    assert r.json()["label"] == "Work"
    r = await api.client.put(f"/api/v1/users/me/addresses/{a['id']}",
                             json={"label": "Mine"}, headers=bob["headers"])
    assert r.status_code == 404
    r = await api.client.delete(f"/api/v1/users/me/addresses/{a['id']}",
                                headers=bob["headers"])
    assert r.status_code == 404
    r = await api.client.delete(f"/api/v1/users/me/addresses/{a['id']}",
                                headers=alice["headers"])
    assert r.status_code == 204
