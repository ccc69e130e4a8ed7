"""A development SMTP server (aiosmtpd) on loopback that keeps what it receives.

Tests point `SmtpSink` at it to check real SMTP delivery end to end; it runs in aiosmtpd's
own thread, so a test's event loop can stop and start it to simulate an outage.
"""

from __future__ import annotations

import collections
import email
import email.policy
import socket
import threading
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


class _Keep:
    def __init__(self, capacity: int) -> None:
        self.lock = threading.Lock()
        self.messages: collections.deque[EmailMessage] = collections.deque(maxlen=capacity)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(mail, EmailMessage)
        with self.lock:
            self.messages.append(mail)
        return "250 OK"


class DevSmtpServer:
    """``start()`` listens on ``host:port`` (0: a free port); ``messages()`` lists what was
    received, oldest first."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, capacity: int = 1000) -> None:
        self._keep = _Keep(capacity)
        self.host = host
        self.port = port
        self._controller: Controller | None = None
        self._held: socket.socket | None = None

    def start(self) -> None:
        if self.port == 0:  # aiosmtpd checks readiness by connecting: it needs a real port
            with socket.socket() as probe:
                probe.bind((self.host, 0))
                self.port = probe.getsockname()[1]
        controller = Controller(self._keep, hostname=self.host, port=self.port)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def go_down(self) -> None:
        """Stop, but keep the port: a socket bound there without listening refuses every
        connection (as a server that is down does), and no other process can take the port
        before `come_back`."""
        self.stop()
        self._held = socket.socket()
        self._held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._held.bind((self.host, self.port))

    def come_back(self) -> None:
        """Listen again on the same port."""
        if self._held is not None:
            self._held.close()
            self._held = None
        self.start()

    def messages(self) -> list[EmailMessage]:
        with self._keep.lock:
            return list(self._keep.messages)
