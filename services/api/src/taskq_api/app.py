"""Composition root of the API: builds the app, its pool and its repository from settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from loguru import logger

from taskq_api.auth import api_key_guard, security_components, security_requirements
from taskq_api.console import console_router
from taskq_api.content_type import require_json
from taskq_api.controllers.dlq import DlqController
from taskq_api.controllers.docs import (
    SwaggerAliasController,
    swagger_assets_router,
    swagger_render_plugin,
)
from taskq_api.controllers.health import HealthController
from taskq_api.controllers.hosts import HostsController
from taskq_api.controllers.task_types import TaskTypesController
from taskq_api.controllers.tasks import TasksController
from taskq_api.dependencies import Limits
from taskq_api.errors import EXCEPTION_HANDLERS
from taskq_api.metrics import MetricsPlugin
from taskq_api.request_log import RequestLogMiddleware
from taskq_core.database import create_async_pool
from taskq_core.egress import EgressPolicy
from taskq_core.logs import configure_logging
from taskq_core.repository.api import ApiRepository
from taskq_core.repository.dlq import DlqRepository
from taskq_core.repository.operations import OperationsRepository
from taskq_core.schema_version import check_new_connection
from taskq_core.secret_box import SecretBox
from taskq_core.settings import Settings


def openapi_config(*, keys_required: bool = False) -> OpenAPIConfig:
    """The spec served at /schema (Swagger UI at /schema/swagger) and exported to docs/."""
    return OpenAPIConfig(
        title="taskq",
        version=version("taskq-api"),
        description=(
            "Queue batches of outbound REST calls in PostgreSQL (PGMQ) and deliver them "
            "with global rate limits, retries and a DLQ. Compatible with pgmq-taskq."
        ),
        path="/schema",
        render_plugins=[swagger_render_plugin()],
        components=security_components(),
        security=security_requirements(required=keys_required),
    )


def create_app(settings: Settings | None = None) -> Litestar:
    """The API application; reads the environment only when no settings are given."""
    if settings is None:
        # Started by granian's factory loader in a worker process: the environment
        # is the only source, and this process's logging is set up here.
        settings = Settings.from_env()
        configure_logging(settings)
    # Each new connection checks the schema: after the database comes back it
    # may have been migrated past what this release can run on.
    pool = create_async_pool(settings, name="taskq-api", check=check_new_connection)
    repository = ApiRepository(
        pool,
        max_task_types=settings.max_task_types,
        status_retention=settings.status_retention,
        secrets=SecretBox(settings.secrets_key) if settings.secrets_key else None,
    )
    operations = OperationsRepository(pool)
    dead_letters = DlqRepository(pool, repository, dlq_queue_name=settings.dlq_queue_name)
    limits = Limits(
        max_payloads=settings.max_payloads,
        egress=EgressPolicy.from_settings(settings),
        max_headers_size=settings.max_headers_size,
        max_request_storage=settings.max_request_storage,
        idempotency_ttl=settings.idempotency_ttl,
        max_schedule_ahead=settings.max_schedule_ahead,
    )

    @asynccontextmanager
    async def database(_: Litestar) -> AsyncIterator[None]:
        # Not waiting for the first connection lets the API start while the
        # database is down: readiness answers 503 until it is back.
        await pool.open(wait=False)
        logger.info("API ready; database pool opened (max {} connections)", pool.max_size)
        try:
            yield
        finally:
            await pool.close()

    async def provide_repository() -> ApiRepository:
        return repository

    async def provide_operations() -> OperationsRepository:
        return operations

    async def provide_dead_letters() -> DlqRepository:
        return dead_letters

    async def provide_limits() -> Limits:
        return limits

    return Litestar(
        route_handlers=[
            TasksController,
            TaskTypesController,
            HostsController,
            DlqController,
            HealthController,
            SwaggerAliasController,
            swagger_assets_router(),
            console_router(pool, settings.api_keys),
        ],
        dependencies={
            "repository": Provide(provide_repository),
            "operations": Provide(provide_operations),
            "dead_letters": Provide(provide_dead_letters),
            "limits": Provide(provide_limits),
        },
        lifespan=[database],
        exception_handlers=EXCEPTION_HANDLERS,
        before_request=require_json,
        # The request log is outermost so that even a refused request gets an id.
        middleware=[RequestLogMiddleware],
        plugins=[MetricsPlugin()],
        openapi_config=openapi_config(keys_required=bool(settings.api_keys)),
        guards=(
            [api_key_guard(settings.api_keys, metrics_public=settings.metrics_public)]
            if settings.api_keys
            else []
        ),
        request_max_body_size=settings.max_body_size,
        logging_config=None,
    )
