"""The API's own Prometheus metrics and the `/metrics` endpoint that serves them.

Request count and latency by route template and status code come from
Litestar's Prometheus middleware (`taskq_requests_total`,
`taskq_request_duration_seconds`); this module adds what only the API knows:
tasks and payloads accepted per task type, and submissions rejected per error
code. Labels stay bounded: task types and error codes, never ids or URLs.

`MetricsPlugin` registers all of it on the app in one place: the counters (the
`metrics` dependency, the only way to reach them), the request middleware, the
`/metrics` route, the multiprocess lifespan, and the counting of rejected
submissions on every error handler.

With several granian workers (API_WORKERS > 1) `main` sets
PROMETHEUS_MULTIPROC_DIR to a fresh directory before the workers start: every
counter and histogram is then written to per-process files that a scrape sums,
whichever worker answers it. Counters of a worker that died stay in its files,
so totals never go backwards. The only gauge is the middleware's
`taskq_requests_in_progress` (livesum): its files are removed when a worker
stops (`mark_process_dead`), and a worker that starts removes those of workers
that died without stopping.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Controller, Litestar, Request, Response, get
from litestar.config.app import AppConfig
from litestar.di import NamedDependency, Provide
from litestar.plugins import InitPluginProtocol
from litestar.plugins.prometheus import PrometheusConfig
from litestar.types import ExceptionHandler
from loguru import logger
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
    multiprocess,
)

from taskq_api.metrics_directory import multiprocess_directory

COUNTS_REJECTIONS = "counts_rejections"
"""Route `opt` key: error responses of this route count as rejected submissions."""
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w*?_(\d+)\.db$")


class ApiMetrics:
    """Counters about submissions, on a registry of their own (one per app, none global)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.tasks_accepted = Counter(
            "taskq_api_tasks_accepted",
            "Batches (POST /tasks) accepted and queued, by task type.",
            ["task_type"],
            registry=self.registry,
        )
        self.payloads_accepted = Counter(
            "taskq_api_payloads_accepted",
            "Payloads (one message each) accepted and queued, by task type.",
            ["task_type"],
            registry=self.registry,
        )
        self.submissions_replayed = Counter(
            "taskq_api_submissions_replayed",
            "Repeats of an Idempotency-Key answered with the first answer, by task type.",
            ["task_type"],
            registry=self.registry,
        )
        self.submissions_rejected = Counter(
            "taskq_api_submissions_rejected",
            "Batches (POST /tasks) refused, by the `error` code of the response body.",
            ["reason"],
            registry=self.registry,
        )

    def accepted(self, task_type: str, payloads: int) -> None:
        self.tasks_accepted.labels(task_type).inc()
        self.payloads_accepted.labels(task_type).inc(payloads)

    def replayed(self, task_type: str) -> None:
        self.submissions_replayed.labels(task_type).inc()

    def rejected(self, reason: str) -> None:
        self.submissions_rejected.labels(reason).inc()

    def exposition(self) -> bytes:
        """Everything this process (or, in multiprocess mode, every worker) has counted."""
        if multiprocess_directory() is not None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        # Single process: the middleware registers on the default registry.
        return generate_latest(REGISTRY) + generate_latest(self.registry)


def request_metrics_middleware() -> PrometheusConfig:
    """Litestar's request metrics (`taskq_requests_total`, ...), labelled by route template."""
    return PrometheusConfig(
        app_name="taskq",
        prefix="taskq",
        group_path=True,  # the route template, not the path: bounded labels
        exclude=["^/metrics", "^/health/"],
    )


class MetricsController(Controller):
    """GET /metrics in the Prometheus text format (request, submission and process metrics)."""

    path = "/metrics"
    tags = ["operations"]  # noqa: RUF012 - Litestar reads these as class attributes

    @get(
        operation_id="getMetrics",
        summary="Prometheus metrics",
        description="Request, submission and process metrics in the Prometheus text format.",
        media_type=CONTENT_TYPE_LATEST,
        sync_to_thread=False,
    )
    def scrape(self, metrics: NamedDependency[ApiMetrics]) -> Response[bytes]:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


class MetricsPlugin(InitPluginProtocol):
    """The API's metrics as one cross-cutting concern, registered the way plugins are."""

    __slots__ = ("metrics",)

    def __init__(self, metrics: ApiMetrics | None = None) -> None:
        self.metrics = metrics or ApiMetrics()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        metrics = self.metrics

        def provide_metrics() -> ApiMetrics:
            return metrics

        app_config.dependencies["metrics"] = Provide(provide_metrics, sync_to_thread=False)
        app_config.route_handlers.append(MetricsController)
        app_config.lifespan.append(metrics_files)
        # Appended: the app's own middleware (the request log) stays outermost.
        app_config.middleware.append(request_metrics_middleware().middleware)
        app_config.exception_handlers = {
            error: self._counting(handler)
            for error, handler in app_config.exception_handlers.items()
        }
        return app_config

    def _counting(self, handler: ExceptionHandler[Any]) -> ExceptionHandler[Any]:
        """`handler`, also counting its answer when the route marks rejections as counted."""

        def handle(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
            response = handler(request, error)
            route = request.scope.get("route_handler")
            if route is not None and route.opt.get(COUNTS_REJECTIONS):
                self.metrics.rejected(str(getattr(response.content, "error", "error")))
            return response

        return handle


@asynccontextmanager
async def metrics_files(_: Litestar) -> AsyncIterator[None]:
    """Lifespan of one API worker's share of the multiprocess metrics files."""
    forget_dead_workers()
    try:
        yield
    finally:
        forget_this_worker()


def forget_dead_workers() -> None:
    """Remove live-gauge files of worker processes that are gone (crashed, killed).

    Counters are left alone on purpose: a dead worker's counts stay part of the
    totals, so rates computed by Prometheus never see a reset.
    """
    directory = multiprocess_directory()
    if directory is None:
        return
    for pid in _live_gauge_pids(directory):
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
            logger.debug("removed the live gauges of dead API worker {}", pid)


def forget_this_worker() -> None:
    """At a clean stop: this process's in-progress gauges must not outlive it."""
    directory = multiprocess_directory()
    if directory is not None:
        multiprocess.mark_process_dead(os.getpid(), str(directory))  # type: ignore[no-untyped-call]


def _live_gauge_pids(directory: Path) -> Iterator[int]:
    for path in directory.glob("gauge_live*.db"):
        if matched := _LIVE_GAUGE_FILE.match(path.name):
            yield int(matched.group(1))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
