"""Commerce's parts: its routes, dependencies, workers and start-up steps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from litestar import Request, Response, Router

from api.commerce.accounts.controllers import AuthController, UsersController
from api.commerce.accounts.social import SocialProvider
from api.commerce.admin.controllers import AdminController
from api.commerce.cart.controllers import CartController
from api.commerce.chat.controllers import ChatController
from api.commerce.chefs.controllers import BrowseController, ChefDashboardController
from api.commerce.chefs.geo import ChefGeoIndex
from api.commerce.chefs.index import ChefIndexHook
from api.commerce.chefs.services import chef_index_snapshot
from api.commerce.context import CommerceConfig, default_commerce
from api.commerce.delivery.controllers import DeliveryController
from api.commerce.deps import DEPENDENCIES
from api.commerce.favorites.controllers import FavoritesController
from api.commerce.menus.controllers import MenuController
from api.commerce.notifications.channels import open_channels
from api.commerce.notifications.controllers import (
    NotificationController,
    PreferencesController,
    StaffPreferencesController,
)
from api.commerce.notifications.deliveries import delivery_counter, delivery_worker
from api.commerce.notifications.sinks import MessageSink
from api.commerce.notifications.sms import SmsProvider
from api.commerce.orders.controllers import ChefOrdersController, OrdersController
from api.commerce.orders.dispatch import dispatch_consumer
from api.commerce.outbox.relay import outbox_worker
from api.commerce.payments.controllers import PaymentsController
from api.commerce.payments.provider import PaymentProvider
from api.commerce.payouts.controllers import AdminPayoutsController, PayoutsController
from api.commerce.payouts.services import weekly_payouts
from api.commerce.photos.controllers import (
    ChefPhotosController,
    ProofController,
    PublicPhotosController,
    kitchen_photos,
)
from api.commerce.photos.images import ImageLimits
from api.commerce.photos.services import Photos
from api.commerce.photos.storage import S3Storage, open_storage
from api.commerce.reviews.controllers import ReviewsController
from api.commerce.search.controllers import SearchController
from api.observability import Metrics
from api.parts import Parts
from api.problems import Problem, http_exception_handler
from api.resources import Resources
from api.settings import Settings
from api.travel import open_travel
from streams.catalog import Names
from streams.jetstream import ensure_streams

API_PREFIX = "/api/v1"


def _missing_reference(request: Request[Any, Any, Any],
                       exc: asyncpg.ForeignKeyViolationError) -> Response[Any]:
    """A row refers to one that does not exist (e.g. a token for a user with no account)."""
    return http_exception_handler(
        request, Problem(404, "a referenced resource does not exist", code="not_found"))


def commerce_parts(
    settings: Settings,
    metrics: Metrics,
    *,
    config: CommerceConfig | None = None,
    payments: PaymentProvider | None = None,
    messages: MessageSink | None = None,
    sms: SmsProvider | None = None,
    social: Mapping[str, SocialProvider] | None = None,
    chef_index_hooks: Sequence[ChefIndexHook] = (),
) -> Parts:
    """Everything commerce serves and runs besides /health and /metrics.

    Adapters default to the sandbox payment provider, the channels the settings name (SMTP
    or the logging sink, the sandbox SMS provider, Web Push) and no social provider; pass
    others to swap them (tests pass a RecordingSink for every channel, the lead a chef-index
    hook).
    """
    chef_geo = ChefGeoIndex()
    hooks = [chef_geo.on_change, *chef_index_hooks]
    # Promised delivery times ride the roads when ROADS is set (the model core loads too).
    travel = open_travel(settings)
    channels = open_channels(settings, sms=sms, override=messages)
    commerce = default_commerce(config=config, payments=payments, messages=channels.sink,
                                social=social, chef_index_hooks=hooks, roads=travel.roads)
    commerce.push_public_key = channels.push_public_key
    api = Router(
        path=API_PREFIX,
        route_handlers=[
            AuthController, UsersController, NotificationController, BrowseController,
            ChefDashboardController, MenuController, CartController, OrdersController,
            ChefOrdersController, PaymentsController, ReviewsController, DeliveryController,
            AdminController, FavoritesController, SearchController, ChatController,
            ChefPhotosController, ProofController, PublicPhotosController, kitchen_photos,
            PayoutsController, AdminPayoutsController,
            PreferencesController, StaffPreferencesController,
        ],
        dependencies=DEPENDENCIES,
        exception_handlers={asyncpg.ForeignKeyViolationError: _missing_reference},
    )

    ps = settings.photos
    photos = Photos(storage=open_storage(settings),
                    limits=ImageLimits(max_bytes=ps.max_bytes, max_pixels=ps.max_pixels,
                                       thumb_px=ps.thumb_px),
                    url_ttl_s=int(ps.url_ttl_s))

    async def ensure_bucket(_: Resources) -> None:
        if isinstance(photos.storage, S3Storage):
            await photos.storage.ensure_bucket()

    async def declare_streams(resources: Resources) -> None:
        await ensure_streams(resources.js, Names(resources.settings.server.namespace),
                             replicas=resources.settings.stores.nats_stream_replicas)

    async def replay_chef_index(resources: Resources) -> None:
        """Tell the index hooks about every indexable chef (the index is rebuildable)."""
        for state in await chef_index_snapshot(resources.db):
            await commerce.chef_changed(state)

    async def close_travel(_: Resources) -> None:
        travel.close()

    async def close_channels(_: Resources) -> None:
        await channels.http.aclose()

    return Parts(
        handlers=[api],
        startup=[declare_streams, chef_geo.bind, replay_chef_index, ensure_bucket],
        workers=[("commerce-outbox", outbox_worker(commerce)),
                 ("commerce-dispatch", dispatch_consumer(commerce)),
                 ("commerce-payouts", weekly_payouts(commerce)),
                 ("commerce-notify", delivery_worker(commerce, settings.notify,
                                                     delivery_counter(metrics.registry)))],
        state={"commerce": commerce, "chef_geo": chef_geo, "photos": photos},
        shutdown=[close_travel, close_channels],
    )
