"""Providers that build each domain's service from the app's resources and ports."""

from __future__ import annotations

from typing import Any

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from api.commerce.accounts.services import AccountService
from api.commerce.admin.services import AdminService
from api.commerce.cart.services import CartService
from api.commerce.chat.services import ChatService
from api.commerce.chefs.services import ChefService
from api.commerce.context import CommerceDep, provide_commerce
from api.commerce.delivery.services import DeliveryService
from api.commerce.favorites.services import FavoriteService
from api.commerce.menus.services import MenuService
from api.commerce.notifications.services import NotificationService, PreferenceService
from api.commerce.orders.services import OrderService
from api.commerce.paging import provide_page
from api.commerce.payments.services import PaymentService
from api.commerce.payouts.services import PayoutService
from api.commerce.photos.services import PhotoService
from api.commerce.reports.services import ReportService
from api.commerce.reviews.services import ReviewService
from api.commerce.search.services import SearchService
from api.resources import ResourcesDep


def provide_accounts(resources: ResourcesDep, commerce: CommerceDep) -> AccountService:
    return AccountService(resources, commerce)


def provide_chefs(resources: ResourcesDep, commerce: CommerceDep) -> ChefService:
    return ChefService(resources, commerce)


def provide_orders(resources: ResourcesDep, commerce: CommerceDep) -> OrderService:
    return OrderService(resources, commerce)


def provide_payments(resources: ResourcesDep, commerce: CommerceDep) -> PaymentService:
    return PaymentService(resources, commerce)


def provide_favorites(resources: ResourcesDep, commerce: CommerceDep) -> FavoriteService:
    return FavoriteService(resources, commerce.config.favorites_max)


def provide_menus(resources: ResourcesDep) -> MenuService:
    return MenuService(resources)


def provide_cart(resources: ResourcesDep) -> CartService:
    return CartService(resources)


def provide_reviews(resources: ResourcesDep) -> ReviewService:
    return ReviewService(resources)


def provide_reports(resources: ResourcesDep) -> ReportService:
    return ReportService(resources)


def provide_delivery(resources: ResourcesDep) -> DeliveryService:
    return DeliveryService(resources)


def provide_chat(resources: ResourcesDep) -> ChatService:
    return ChatService(resources)


def provide_search(resources: ResourcesDep) -> SearchService:
    return SearchService(resources)


def provide_photos(resources: ResourcesDep, state: State) -> PhotoService:
    return PhotoService(resources, state.photos)


def provide_payouts(resources: ResourcesDep, commerce: CommerceDep) -> PayoutService:
    return PayoutService(resources, commerce)


def provide_admin(resources: ResourcesDep) -> AdminService:
    return AdminService(resources)


def provide_notifications(resources: ResourcesDep) -> NotificationService:
    return NotificationService(resources)


def provide_preferences(resources: ResourcesDep) -> PreferenceService:
    return PreferenceService(resources)


DEPENDENCIES: dict[str, Any] = {
    "commerce": Provide(provide_commerce, sync_to_thread=False),
    "paging": Provide(provide_page, sync_to_thread=False),
    "accounts": Provide(provide_accounts, sync_to_thread=False),
    "chefs": Provide(provide_chefs, sync_to_thread=False),
    "menus": Provide(provide_menus, sync_to_thread=False),
    "cart": Provide(provide_cart, sync_to_thread=False),
    "orders": Provide(provide_orders, sync_to_thread=False),
    "payments": Provide(provide_payments, sync_to_thread=False),
    "reviews": Provide(provide_reviews, sync_to_thread=False),
    "reports": Provide(provide_reports, sync_to_thread=False),
    "delivery": Provide(provide_delivery, sync_to_thread=False),
    "favorites": Provide(provide_favorites, sync_to_thread=False),
    "chat": Provide(provide_chat, sync_to_thread=False),
    # Not "search": browse endpoints have a query parameter of that name.
    "search_service": Provide(provide_search, sync_to_thread=False),
    "admin": Provide(provide_admin, sync_to_thread=False),
    "photos": Provide(provide_photos, sync_to_thread=False),
    "payouts": Provide(provide_payouts, sync_to_thread=False),
    "notifications": Provide(provide_notifications, sync_to_thread=False),
    "preferences": Provide(provide_preferences, sync_to_thread=False),
}


# Handler parameter types: a parameter named like a key of DEPENDENCIES gets that service.
AccountServiceDep = NamedDependency[AccountService]
AdminServiceDep = NamedDependency[AdminService]
CartServiceDep = NamedDependency[CartService]
ChatServiceDep = NamedDependency[ChatService]
ChefServiceDep = NamedDependency[ChefService]
DeliveryServiceDep = NamedDependency[DeliveryService]
FavoriteServiceDep = NamedDependency[FavoriteService]
MenuServiceDep = NamedDependency[MenuService]
NotificationServiceDep = NamedDependency[NotificationService]
OrderServiceDep = NamedDependency[OrderService]
PreferenceServiceDep = NamedDependency[PreferenceService]
PaymentServiceDep = NamedDependency[PaymentService]
PayoutServiceDep = NamedDependency[PayoutService]
PhotoServiceDep = NamedDependency[PhotoService]
ReportServiceDep = NamedDependency[ReportService]
ReviewServiceDep = NamedDependency[ReviewService]
SearchServiceDep = NamedDependency[SearchService]
