"""WebSocket transport shared by every core socket: the serve loop and the fast lane."""
