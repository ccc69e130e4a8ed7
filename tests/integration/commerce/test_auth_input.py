"""Auth bodies with text PostgreSQL or UTF-8 cannot hold (a NUL byte, a lone surrogate) are
refused at the schema as a 4xx problem+json, never a 500 (found by the API fuzzer)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.commerce.conftest import Api

NUL = "\x00"
SURROGATE = "\ud800"
EMAIL = "fuzz@example.com"
PASSWORD = "correct-horse-1"

# (case, path, body): every field a client types into an auth form, poisoned
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("forgot_email_nul", "/forgot-password", {"email": f"a{NUL}@example.com"}),
    ("forgot_email_surrogate", "/forgot-password", {"email": f"{SURROGATE}@example.com"}),
    ("forgot_email_only_nul", "/forgot-password", {"email": NUL}),
    ("register_email_nul", "/register", {"email": f"a{NUL}b@example.com", "password": PASSWORD}),
    ("register_email_surrogate", "/register",
     {"email": f"a{SURROGATE}@example.com", "password": PASSWORD}),
    ("register_password_surrogate", "/register",
     {"email": EMAIL, "password": f"{PASSWORD}{SURROGATE}"}),
    ("register_name_nul", "/register",
     {"email": EMAIL, "password": PASSWORD, "first_name": f"A{NUL}"}),
    ("register_name_surrogate", "/register",
     {"email": EMAIL, "password": PASSWORD, "last_name": f"B{SURROGATE}"}),
    ("login_email_nul", "/login", {"email": f"a{NUL}@example.com", "password": PASSWORD}),
    ("login_email_surrogate", "/login", {"email": f"{SURROGATE}@x.io", "password": PASSWORD}),
    ("login_password_surrogate", "/login", {"email": EMAIL, "password": SURROGATE * 8}),
    ("reset_token_surrogate", "/reset-password", {"token": SURROGATE, "password": PASSWORD}),
    ("reset_token_nul", "/reset-password", {"token": NUL, "password": PASSWORD}),
    ("reset_password_surrogate", "/reset-password",
     {"token": "t" * 43, "password": f"{PASSWORD}{SURROGATE}"}),
    ("refresh_token_surrogate", "/refresh", {"refresh_token": SURROGATE}),
]


@pytest.mark.parametrize(("case", "path", "body"), CASES, ids=[c[0] for c in CASES])
async def test_unstorable_text_is_refused(api: Api, case: str, path: str,
                                          body: dict[str, Any]) -> None:
    """A NUL byte or a lone surrogate in an auth body's e-mail, password, name or token is a
    400 problem+json with a detail (the JSON escapes ``\\u0000`` / ``\\ud800`` are what a
    client or a fuzzer sends): the schema refuses it, or the JSON decoder does."""
    raw = json.dumps(body).encode()  # ensure_ascii: escapes, as a fuzzer sends them
    r = await api.client.post(f"/api/v1/auth{path}", content=raw,
                              headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"]


async def test_ordinary_forgot_password_is_still_accepted(api: Api) -> None:
    """The check refuses only unstorable text: a well-formed unknown e-mail is still 202 (no
    account is revealed)."""
    r = await api.client.post("/api/v1/auth/forgot-password",
                              json={"email": "nobody-here@example.com"})
    assert r.status_code == 202, r.text

