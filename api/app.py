"""The two Litestar applications, built by factories from one Settings object."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
from litestar import Litestar, MediaType, Request, Response, get
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.auth import Identity, TokenCodec, auth_middleware, identity_of
from api.observability import Metrics, request_context_middleware
from api.parts import Parts, running_workers
from api.problems import EXCEPTION_HANDLERS
from api.resources import Resources, check_health, open_resources
from api.schema_ui import render_plugins, swagger_asset
from api.settings import Settings, console_origins, load_settings

__all__ = ["create_commerce_app", "create_core_app"]


@get("/health", media_type=MediaType.JSON, summary="Health of the service and its stores",
     opt={"public": True})
async def health(state: State) -> Response[Any]:
    res: Resources = state.resources
    report = await check_health(res, state.service, timeout_s=res.settings.stores.timeout_s)
    if (travel := state.get("travel")) is not None:
        report = msgspec.structs.replace(report, travel=travel.info)
    return Response(report, status_code=200 if report.status == "ok" else 503)


@get("/metrics", summary="Prometheus metrics", include_in_schema=False, opt={"public": True})
async def metrics_endpoint(state: State) -> Response[bytes]:
    metrics: Metrics = state.metrics
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _provide_resources(state: State) -> Resources:
    resources: Resources = state.resources
    return resources


def _provide_metrics(state: State) -> Metrics:
    metrics: Metrics = state.metrics
    return metrics


def _provide_identity(request: Request[Any, Any, Any]) -> Identity:
    return identity_of(request)


PartsFactory = Callable[[Settings, Metrics], Parts]


def build_app(
    service: str, title: str, settings: Settings | None, parts_factory: PartsFactory
) -> Litestar:
    """An app with the shared edge (auth, errors, logs, metrics, health) around its parts."""
    settings = settings or load_settings()
    if not settings.server.jwt_secret:
        raise ValueError("JWT_SECRET is required (homechef up generates one)")
    metrics = Metrics(service)
    parts = parts_factory(settings, metrics)
    codec = TokenCodec(settings.server.jwt_secret)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_resources(settings) as resources:
            app.state.resources = resources
            for step in parts.startup:
                await step(resources)
            try:
                async with running_workers(parts, resources):
                    yield
            finally:
                for step in parts.shutdown:
                    await step(resources)

    return Litestar(
        route_handlers=[health, metrics_endpoint, swagger_asset, *parts.handlers],
        lifespan=[lifespan],
        state=State({"service": service, "settings": settings, "metrics": metrics,
                     "tokens": codec, **parts.state}),
        dependencies={
            "resources": Provide(_provide_resources, sync_to_thread=False),
            "metrics": Provide(_provide_metrics, sync_to_thread=False),
            "identity": Provide(_provide_identity, sync_to_thread=False),
            **parts.dependencies,
        },
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[request_context_middleware(metrics), auth_middleware(codec)],
        openapi_config=OpenAPIConfig(
            title=title, version="0.1.0", path="/schema", render_plugins=render_plugins(),
            components=Components(security_schemes={
                "BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT"),
            }),
            security=[{"BearerToken": []}],
        ),
        logging_config=None,  # configure_logging() owns the root logger (JSON lines)
        # The console is served by core (another origin) and logs in at commerce.
        cors_config=(CORSConfig(allow_origins=console_origins(settings),
                                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                                allow_headers=["Authorization", "Content-Type"], max_age=600)
                     if service == "commerce" else None),
    )


# Each factory imports its own service's parts: a process serves one of them, and importing
# the other's modules would cost it ~0.4-0.7 CPU s of start-up (a restart after a crash waits
# on it).


def create_core_app(settings: Settings | None = None) -> Litestar:
    """Core: GPS ingest, H3 index, dispatch, routing, WebSocket streams."""
    from api.core import core_parts

    return build_app("core", "HomeChef core", settings, core_parts)


def create_commerce_app(settings: Settings | None = None) -> Litestar:
    """Commerce: accounts, chefs, menus, cart, orders, payments, reviews."""
    from api.commerce.parts import commerce_parts

    return build_app("commerce", "HomeChef commerce", settings, commerce_parts)
