"""/orders/{id}/messages: the order's chat (its customer, chef, courier, and staff)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from litestar import Controller, get, post, put
from litestar.params import FromPath, JSONBody

from api.auth import ALL_ROLES, IdentityDep, roles
from api.commerce.chat import schemas as s
from api.commerce.deps import ChatServiceDep
from api.commerce.paging import PageQueryDep


class ChatController(Controller):
    """Every role may ask; only the order's parties and staff get an answer (others 404)."""

    path = "/orders/{order_id:uuid}/messages"
    tags = ["chat"]
    guards = [roles(*ALL_ROLES)]

    @get("", summary="The order's messages, newest first, with read receipts")
    async def history(self, order_id: FromPath[UUID], identity: IdentityDep,
                      chat: ChatServiceDep, paging: PageQueryDep) -> s.ChatPage:
        return await chat.history(identity, order_id, paging, datetime.now(UTC))

    @post("", summary="Send a message (until 24 h after the order ended)")
    async def send(self, order_id: FromPath[UUID], data: JSONBody[s.MessageCreate],
                   identity: IdentityDep, chat: ChatServiceDep) -> s.ChatMessage:
        return await chat.send(identity, order_id, data, datetime.now(UTC))

    @put("/read", status_code=204, summary="Mark messages read up to one (a read receipt)")
    async def read(self, order_id: FromPath[UUID], data: JSONBody[s.ReadUpTo],
                   identity: IdentityDep, chat: ChatServiceDep) -> None:
        await chat.mark_read(identity, order_id, data)
