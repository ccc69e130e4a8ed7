"""/users/me/notifications: the in-app inbox."""

from __future__ import annotations

from litestar import Controller, get, put
from litestar.params import FromPath, FromQuery

from api.auth import ALL_ROLES, IdentityDep, roles
from api.commerce.accounts.schemas import Accepted
from api.commerce.deps import NotificationServiceDep
from api.commerce.notifications.services import Notification
from api.commerce.paging import Page, PageQueryDep


class NotificationController(Controller):
    path = "/users/me/notifications"
    tags = ["notifications"]
    guards = [roles(*ALL_ROLES)]

    @get("", summary="The current user's in-app notifications, newest first")
    async def inbox(self, identity: IdentityDep, notifications: NotificationServiceDep,
                    paging: PageQueryDep, unread: FromQuery[bool] = False) -> Page[Notification]:
        return await notifications.inbox(identity.user_id, paging, unread)

    @put("/{notification_id:int}/read", summary="Mark a notification read")
    async def read(self, notification_id: FromPath[int], identity: IdentityDep,
                   notifications: NotificationServiceDep) -> Accepted:
        await notifications.mark_read(identity.user_id, notification_id)
        return Accepted(detail="read")
