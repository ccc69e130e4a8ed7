"""An order's chat in PostgreSQL: history, sending, read receipts.

Every call first works out the caller's part in the order (`rules.party_of`); a stranger
gets the same 404 as for an order that does not exist, so ids leak nothing. After commit, a
live copy (``CHAT_MESSAGE``, ``CHAT_READ``) goes to core's order sockets over core-plain
NATS (`Names.chat_event`) and to the courier's device socket; the history stays the record,
so a copy lost to a NATS outage costs nothing a reconnecting client does not read back.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import nats.errors

from api.auth import Identity
from api.commerce.chat import schemas as s
from api.commerce.chat.rules import OrderParties, Party, is_open, party_of
from api.commerce.paging import PageQuery
from api.commerce.rows import many
from api.problems import Problem
from api.resources import Resources
from streams import wire
from streams.catalog import Names

log = logging.getLogger("homechef.commerce.chat")

_MSG_COLS = "id, order_id::text AS order_id, sender_id, sender_role, body, created_at"


class ChatService:
    def __init__(self, resources: Resources) -> None:
        self.db = resources.db
        self.nats = resources.nats
        self.names = Names(resources.settings.server.namespace)

    async def _live(self, order_id: uuid.UUID, order: OrderParties,
                    to_sockets: wire.ChatMessage | wire.ChatRead,
                    to_courier: wire.CourierChatMessage | wire.CourierChatRead) -> None:
        """The live copy to the order's sockets and its courier's device (best effort)."""
        try:
            await self.nats.publish(self.names.chat_event(str(order_id)),
                                    wire.encode(to_sockets))
            if order.courier_id:
                await self.nats.publish(self.names.courier_inbox(order.courier_id),
                                        wire.encode(to_courier))
        except (nats.errors.Error, OSError) as exc:
            log.warning("chat of %s not sent live: %r", order_id, exc)

    async def _party(self, conn: asyncpg.Connection | asyncpg.Pool, who: Identity,
                     order_id: uuid.UUID) -> tuple[Party, OrderParties]:
        row = await conn.fetchrow(
            """SELECT o.customer_id::text AS customer_id, c.user_id::text AS chef_user_id,
                      o.delivery_id, o.payment_status <> 'unpaid' AS paid,
                      coalesce(o.delivered_at, o.cancelled_at) AS ended_at
               FROM orders o JOIN chef_profiles c ON c.id = o.chef_id WHERE o.id = $1""",
            order_id)
        order = None if row is None else OrderParties(
            customer_id=row["customer_id"], chef_user_id=row["chef_user_id"],
            courier_id=row["delivery_id"], paid=row["paid"], ended_at=row["ended_at"])
        party = None if order is None else party_of(who, order)
        if order is None or party is None:
            raise Problem(404, "order not found", code="not_found")
        return party, order

    async def history(self, who: Identity, order_id: uuid.UUID, q: PageQuery,
                      now: datetime) -> s.ChatPage:
        async with self.db.acquire() as conn:
            _, order = await self._party(conn, who, order_id)
            rows = await conn.fetch(
                f"""SELECT {_MSG_COLS}, count(*) OVER () AS total FROM order_messages
                    WHERE order_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3""",
                order_id, q.limit, q.offset)
            reads = await conn.fetch(
                """SELECT reader_id, reader_role, last_read_id, read_at
                   FROM order_message_reads WHERE order_id = $1 ORDER BY reader_id""",
                order_id)
        return s.ChatPage(data=many(s.ChatMessage, rows),
                          total=int(rows[0]["total"]) if rows else 0, page=q.page,
                          limit=q.limit, open=is_open(order, now),
                          reads=many(s.ReadReceipt, reads))

    async def send(self, who: Identity, order_id: uuid.UUID, req: s.MessageCreate,
                   now: datetime) -> s.ChatMessage:
        body = req.body.strip()
        if not body:
            raise Problem(422, "a message needs some text", code="empty_message")
        async with self.db.acquire() as conn, conn.transaction():
            party, order = await self._party(conn, who, order_id)
            if not is_open(order, now):
                raise Problem(409, "this order's chat closed 24 h after it ended",
                              code="chat_closed")
            row = await conn.fetchrow(
                f"""INSERT INTO order_messages (order_id, sender_id, sender_role, body)
                    VALUES ($1, $2, $3, $4) RETURNING {_MSG_COLS}""",
                order_id, who.user_id, party, body)
            assert row is not None
            await _mark_read(conn, order_id, who.user_id, party, row["id"])
        message = many(s.ChatMessage, [row])[0]
        fields: dict[str, Any] = {
            "id": message.id, "order_id": message.order_id, "sender_id": message.sender_id,
            "sender_role": message.sender_role, "body": message.body,
            "created_at": message.created_at.isoformat()}
        await self._live(
            order_id, order, wire.ChatMessage(payload=wire.ChatMessagePayload(**fields)),
            wire.CourierChatMessage(payload=wire.CourierChatMessagePayload(**fields)))
        return message

    async def mark_read(self, who: Identity, order_id: uuid.UUID, req: s.ReadUpTo) -> None:
        async with self.db.acquire() as conn, conn.transaction():
            party, order = await self._party(conn, who, order_id)
            exists = await conn.fetchval(
                "SELECT 1 FROM order_messages WHERE order_id = $1 AND id = $2",
                order_id, req.last_read_id)
            if not exists:
                raise Problem(422, "no such message in this order's chat",
                              code="unknown_message")
            receipt = await _mark_read(conn, order_id, who.user_id, party, req.last_read_id)
        fields: dict[str, Any] = {
            "order_id": str(order_id), "reader_id": who.user_id, "reader_role": party,
            "last_read_id": receipt["last_read_id"], "read_at": receipt["read_at"].isoformat()}
        await self._live(order_id, order, wire.ChatRead(payload=wire.ChatReadPayload(**fields)),
                         wire.CourierChatRead(payload=wire.CourierChatReadPayload(**fields)))


async def _mark_read(conn: asyncpg.Connection, order_id: uuid.UUID, reader_id: str,
                     role: str, last_read_id: int) -> asyncpg.Record:
    """Move the reader's receipt forward (never back); the receipt as it now stands."""
    row = await conn.fetchrow(
        """INSERT INTO order_message_reads (order_id, reader_id, reader_role, last_read_id)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (order_id, reader_id) DO UPDATE SET
               last_read_id = greatest(order_message_reads.last_read_id,
                                       EXCLUDED.last_read_id),
               read_at = CASE WHEN EXCLUDED.last_read_id > order_message_reads.last_read_id
                              THEN now() ELSE order_message_reads.read_at END
           RETURNING last_read_id, read_at""",
        order_id, reader_id, role, last_read_id)
    assert row is not None
    return row
