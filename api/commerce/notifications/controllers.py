"""/users/me/notifications (the in-app inbox), the user's channel preferences and Web Push
subscriptions, and staff's read of anyone's preferences."""

from __future__ import annotations

import uuid

from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from api.auth import ALL_ROLES, IdentityDep, Role, roles
from api.commerce.accounts.schemas import Accepted
from api.commerce.context import CommerceDep
from api.commerce.deps import NotificationServiceDep, PreferenceServiceDep
from api.commerce.ids import user_uuid
from api.commerce.notifications import schemas as s
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


class PreferencesController(Controller):
    path = "/users/me"
    tags = ["notifications"]
    guards = [roles(*ALL_ROLES)]

    @get("/notification-preferences", summary="Which channels carry my notifications")
    async def preferences(self, identity: IdentityDep,
                          preferences: PreferenceServiceDep) -> s.Preferences:
        return await preferences.preferences(user_uuid(identity.user_id))

    @put("/notification-preferences", summary="Turn channels on or off (those given)")
    async def set_preferences(self, data: JSONBody[s.PreferencesUpdate], identity: IdentityDep,
                              preferences: PreferenceServiceDep) -> s.Preferences:
        return await preferences.set_preferences(user_uuid(identity.user_id), data)

    @get("/push-subscriptions/key", summary="The key to subscribe a browser with (VAPID)")
    async def push_key(self, commerce: CommerceDep) -> s.PushKey:
        return s.PushKey(public_key=commerce.push_public_key)

    @get("/push-subscriptions", summary="My browsers subscribed to Web Push")
    async def subscriptions(self, identity: IdentityDep,
                            preferences: PreferenceServiceDep) -> list[s.PushSubscription]:
        return await preferences.subscriptions(user_uuid(identity.user_id))

    @post("/push-subscriptions", summary="Subscribe a browser (PushSubscription.toJSON())")
    async def subscribe(self, data: JSONBody[s.PushSubscriptionCreate], identity: IdentityDep,
                        preferences: PreferenceServiceDep) -> s.PushSubscription:
        return await preferences.subscribe(user_uuid(identity.user_id), data)

    @delete("/push-subscriptions/{subscription_id:int}", summary="Unsubscribe a browser")
    async def unsubscribe(self, subscription_id: FromPath[int], identity: IdentityDep,
                          preferences: PreferenceServiceDep) -> None:
        await preferences.unsubscribe(user_uuid(identity.user_id), subscription_id)


class StaffPreferencesController(Controller):
    path = "/admin/users"
    tags = ["admin"]
    guards = [roles(Role.ADMIN)]

    @get("/{user_id:uuid}/notification-preferences", summary="A user's channels (support)")
    async def preferences(self, user_id: FromPath[uuid.UUID],
                          preferences: PreferenceServiceDep) -> s.Preferences:
        return await preferences.preferences(user_id)
