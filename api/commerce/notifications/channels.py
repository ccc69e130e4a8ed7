"""The channels commerce sends through, chosen by configuration: SMTP when ``SMTP_HOST`` is
set (else the logging development sink), the SMS provider, and Web Push with the
deployment's VAPID key."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from api.commerce.notifications.email import SmtpSink
from api.commerce.notifications.sinks import ChannelSinks, LoggingSink, MessageSink
from api.commerce.notifications.sms import SandboxSms, SmsProvider, SmsSink
from api.commerce.notifications.webpush import (
    WebPushSink,
    application_server_key,
    load_vapid,
)
from api.settings import Settings


@dataclass
class Channels:
    sink: MessageSink
    push_public_key: str
    http: httpx.AsyncClient
    """The push client (closed at shutdown)."""


def open_channels(settings: Settings, sms: SmsProvider | None = None,
                  override: MessageSink | None = None) -> Channels:
    """Every channel per the settings; ``override`` (tests' recording sink) takes all of
    them instead. The VAPID key is loaded either way (``VAPID_PRIVATE_KEY``, or made on
    first use under DATA_DIR)."""
    notify = settings.notify
    vapid = load_vapid(settings.server.data_dir, notify.vapid_private_key)
    http = httpx.AsyncClient(follow_redirects=False)
    sink = override or ChannelSinks(
        email=SmtpSink(notify) if notify.smtp_host else LoggingSink(),
        sms=SmsSink(sms or SandboxSms()),
        push=WebPushSink(notify, vapid, http))
    return Channels(sink=sink, push_public_key=application_server_key(vapid), http=http)

