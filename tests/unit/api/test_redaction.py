"""Credentials never reach a log line: what `redact` removes, what it keeps, and that the
logging set-up applies it to every record (message, arguments, extras, tracebacks)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from api.auth import TokenCodec, subprotocol_token
from api.observability import REDACTED, RedactSecrets, configure_logging, redact

JWT = TokenCodec("s" * 40).issue("courier-1", "delivery")
JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")

# (logged line, the line as it must be written)
CASES = [
    (f'127.0.0.1:5 - "WebSocket /ws/courier?token={JWT}" [accepted]',
     f'127.0.0.1:5 - "WebSocket /ws/courier?token={REDACTED}" [accepted]'),
    (f'127.0.0.1:5 - "GET /api/v1/x?a=1&access_token={JWT}&b=2 HTTP/1.1" 200',
     f'127.0.0.1:5 - "GET /api/v1/x?a=1&access_token={REDACTED}&b=2 HTTP/1.1" 200'),
    ("POST /auth/refresh?refresh_token=opaque-refresh-value",
     f"POST /auth/refresh?refresh_token={REDACTED}"),
    ("GET /x?TOKEN=short", f"GET /x?TOKEN={REDACTED}"),
    (f"Authorization: Bearer {JWT}", f"Authorization: Bearer {REDACTED}"),
    ("authorization: Basic dXNlcjpwYXNzd29yZA==", f"authorization: Basic {REDACTED}"),
    (f"headers=[(b'authorization', b'Bearer {JWT}')]",
     f"headers=[(b'authorization', b'Bearer {REDACTED}')]"),
    (f'{{"authorization": "Bearer {JWT}"}}', f'{{"authorization": "Bearer {REDACTED}"}}'),
    (f"sec-websocket-protocol: bearer, {JWT}", f"sec-websocket-protocol: bearer, {REDACTED}"),
    (f"offered bearer.{JWT}", f"offered bearer.{REDACTED}"),
    (f"verifying {JWT} failed", f"verifying {REDACTED} failed"),
    # Kept: no credential in them.
    ('127.0.0.1:5 - "WebSocket /ws/courier" [accepted]',
     '127.0.0.1:5 - "WebSocket /ws/courier" [accepted]'),
    ("missing bearer token", "missing bearer token"),
    ("token expired", "token expired"),
    ("GET /x?csrftoken=abc&page=2", "GET /x?csrftoken=abc&page=2"),
    ("invalid token: Not enough segments", "invalid token: Not enough segments"),
]


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_redact_removes_credentials_and_nothing_else(line: str, expected: str) -> None:
    """Tokens in query strings, Authorization values, bearer subprotocols and bare JWTs are
    replaced by [REDACTED]; the rest of the line is unchanged."""
    assert redact(line) == expected


def test_redacted_json_stays_json() -> None:
    """Redacting a serialised JSON line never breaks it (no quote or backslash is added)."""
    line = json.dumps({"message": f'"WebSocket /ws/x?token={JWT}"', "url": f"/a?token={JWT}"})
    assert json.loads(redact(line)) == {"message": f'"WebSocket /ws/x?token={REDACTED}"',
                                        "url": f"/a?token={REDACTED}"}


@pytest.fixture
def root_output() -> Iterator[io.StringIO]:
    """The root JSON handler of `configure_logging`, writing to a buffer."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    configure_logging("DEBUG")
    out = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)
    try:
        yield out
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def test_configured_logging_redacts_every_part_of_a_record(root_output: io.StringIO) -> None:
    """Through the configured root handler no JWT survives: not in the message's arguments
    (uvicorn's '%s - "WebSocket %s"' lines), an extra field, or a traceback."""
    logging.getLogger("uvicorn.error").info('%s - "WebSocket %s" [accepted]', "127.0.0.1:9",
                                            f"/ws/console?token={JWT}")
    logging.getLogger("homechef.test").warning("request", extra={"url": f"/x?token={JWT}"})
    try:
        raise ValueError(f"bad header Authorization: Bearer {JWT}")
    except ValueError:
        logging.getLogger("homechef.test").exception("failed")
    lines = [json.loads(line) for line in root_output.getvalue().splitlines()]
    assert len(lines) == 3
    assert lines[0]["message"] == (
        f'127.0.0.1:9 - "WebSocket /ws/console?token={REDACTED}" [accepted]')
    assert lines[1]["url"] == f"/x?token={REDACTED}"
    assert "Bearer [REDACTED]" in lines[2]["exc_info"]
    assert not JWT_RE.search(root_output.getvalue())


def test_uvicorn_loggers_redact_for_any_handler(root_output: io.StringIO) -> None:
    """A handler someone adds to uvicorn's loggers (its own log config, a test's capture)
    also gets redacted records: the filter sits on the loggers, not only on our handler."""
    seen: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger = logging.getLogger("uvicorn.access")
    capture = Capture()
    logger.addHandler(capture)
    try:
        logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:9", "GET",
                    f"/api/v1/x?token={JWT}", "1.1", 200)
    finally:
        logger.removeHandler(capture)
    assert seen == [f'127.0.0.1:9 - "GET /api/v1/x?token={REDACTED} HTTP/1.1" 200']


def test_filter_keeps_records_without_secrets_as_they_are() -> None:
    """A record with nothing to redact keeps its message and arguments (lazy formatting)."""
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "round %d took %s", (3, "5 ms"),
                               None)
    assert RedactSecrets().filter(record)
    assert (record.msg, record.args) == ("round %d took %s", (3, "5 ms"))


# (offered subprotocols, the token the server takes from them)
SUBPROTOCOLS = [
    (["bearer", JWT], JWT),
    (["chat", "bearer", JWT], JWT),
    (["bearer"], None),
    ([JWT], None),
    ([], None),
]


@pytest.mark.parametrize(("offered", "token"), SUBPROTOCOLS)
def test_subprotocol_token_is_the_one_after_bearer(offered: list[str], token: str | None) -> None:
    """A socket's token is the subprotocol offered right after ``bearer``; nothing else is."""
    assert subprotocol_token({"type": "websocket", "subprotocols": offered}) == token  # type: ignore[arg-type, typeddict-item]
