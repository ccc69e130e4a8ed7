"""E-mail over SMTP (aiosmtplib), one connection per message.

The delivery's idempotency key becomes the Message-ID, so a message sent twice after a crash
(at least once) carries the same id and mail clients and relays can fold the copies.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from api.commerce.notifications.sinks import DeliveryFailed, OutboundMessage
from api.settings import NotifySettings


def mime_message(message: OutboundMessage, sender: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = message.to
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(usegmt=True)
    if message.key:
        mail["Message-ID"] = f"<{message.key}@homechef.notify>"
    mail.set_content(message.body)
    return mail


class SmtpSink:
    """Sends each e-mail through the configured SMTP server."""

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings

    async def send(self, message: OutboundMessage) -> None:
        s = self.settings
        try:
            await aiosmtplib.send(
                mime_message(message, s.mail_from), hostname=s.smtp_host, port=s.smtp_port,
                username=s.smtp_username or None, password=s.smtp_password or None,
                use_tls=s.smtp_tls == "tls", start_tls=s.smtp_tls == "starttls",
                timeout=s.send_timeout_s)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(f"recipient refused: {exc}", permanent=True) from None
        except aiosmtplib.SMTPResponseException as exc:
            # 5xx: the server will never take it; 4xx: try again later.
            raise DeliveryFailed(f"SMTP {exc.code}: {exc.message}",
                                 permanent=exc.code >= 500) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"SMTP unavailable: {exc}") from None
