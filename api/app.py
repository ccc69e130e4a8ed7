"""The two Litestar applications, built by factories from one Settings object."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from litestar import Litestar, MediaType, Response, Router, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.observability import Metrics, request_context_middleware
from api.problems import EXCEPTION_HANDLERS
from api.resources import Resources, check_health, open_resources
from api.settings import Settings, load_settings

__all__ = ["create_commerce_app", "create_core_app"]


@get("/health", media_type=MediaType.JSON, summary="Health of the service and its stores")
async def health(state: State) -> Response[Any]:
    res: Resources = state.resources
    report = await check_health(res, state.service, timeout_s=res.settings.store_timeout_s)
    return Response(report, status_code=200 if report.status == "ok" else 503)


@get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics_endpoint(state: State) -> Response[bytes]:
    metrics: Metrics = state.metrics
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _provide_resources(state: State) -> Resources:
    resources: Resources = state.resources
    return resources


def _provide_metrics(state: State) -> Metrics:
    metrics: Metrics = state.metrics
    return metrics


def _build_app(
    service: str,
    title: str,
    settings: Settings | None,
    handlers: Sequence[ControllerRouterHandler],
) -> Litestar:
    settings = settings or load_settings()
    metrics = Metrics(service)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_resources(settings) as resources:
            app.state.resources = resources
            yield

    api = Router(path="/", route_handlers=list(handlers)) if handlers else None
    return Litestar(
        route_handlers=[health, metrics_endpoint, *([api] if api else [])],
        lifespan=[lifespan],
        state=State({"service": service, "settings": settings, "metrics": metrics}),
        dependencies={
            "resources": Provide(_provide_resources, sync_to_thread=False),
            "metrics": Provide(_provide_metrics, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[request_context_middleware(metrics)],
        openapi_config=OpenAPIConfig(title=title, version="0.1.0", path="/schema"),
        logging_config=None,  # configure_logging() owns the root logger (JSON lines)
    )


def create_core_app(settings: Settings | None = None) -> Litestar:
    """Core: GPS ingest, H3 index, dispatch, routing, WebSocket streams."""
    return _build_app("core", "HomeChef core", settings, [])


def create_commerce_app(settings: Settings | None = None) -> Litestar:
    """Commerce: accounts, chefs, menus, cart, orders, payments, reviews."""
    return _build_app("commerce", "HomeChef commerce", settings, [])
