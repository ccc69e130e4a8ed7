"""The development notification sink never logs a secret: password-reset tokens and OTP
codes sent through the default `LoggingSink` are absent from every captured log line (extra
fields included), and stay readable from the sink itself."""

from __future__ import annotations

import functools
import logging
import uuid

import pytest
from litestar.testing import AsyncTestClient
from pythonjsonlogger.json import JsonFormatter

from api.app import build_app
from api.commerce.notifications.sinks import LoggingSink
from api.commerce.parts import commerce_parts
from api.settings import Settings
from tests.integration.commerce.conftest import FAST

AUTH = "/api/v1/auth"


async def test_reset_tokens_and_otp_codes_never_reach_the_logs(
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    app = build_app("commerce", "HomeChef commerce (test)", settings,
                    functools.partial(commerce_parts, config=FAST))
    caplog.set_level(logging.DEBUG)
    async with AsyncTestClient(app) as client:
        sink = app.state.commerce.messages  # the channels `homechef serve` runs by default
        assert isinstance(sink.by_channel["email"], LoggingSink)  # no SMTP_HOST
        email = f"notify-{uuid.uuid4().hex[:8]}@example.com"
        r = await client.post(f"{AUTH}/register", json={
            "email": email, "password": "correct-horse-1", "role": "customer"})
        assert r.status_code == 201, r.text
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert (await client.post(f"{AUTH}/forgot-password",
                                  json={"email": email})).status_code == 202
        phone = "+1555" + str(uuid.uuid4().int)[:7]
        r = await client.post(f"{AUTH}/send-otp", json={"phone": phone}, headers=headers)
        assert r.status_code == 202, r.text

        reset, otp = sink.last("email", email), sink.last("sms", phone)
        assert reset is not None
        assert otp is not None
        secrets = [reset.data["token"], otp.data["code"]]
        r = await client.post(f"{AUTH}/verify-otp", json={"phone": phone,
                                                          "code": otp.data["code"]},
                              headers=headers)
        assert r.status_code == 200, r.text  # the kept code is the one sent

    formatter = JsonFormatter("%(levelname)s %(name)s %(message)s")  # extra fields included
    lines = [formatter.format(record) for record in caplog.records]
    sent = [line for line in lines if '"homechef.notify"' in line]
    assert len(sent) == 2, lines
    assert all('"[REDACTED]"' in line for line in sent), sent
    leaks = [line for line in lines for secret in secrets if secret in line]
    assert leaks == []
