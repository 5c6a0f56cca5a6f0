"""The taskq API and worker processes, started the way `make run` starts them, and a client."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bench.procs import BIN, LOCALHOST, Managed, RssSampler, free_port, wait_for_port

API_MODULE = "taskq_api.main"
WORKER_MODULE = "taskq_worker.main"
BENCH_SECRETS_KEY = "bench-only-secrets-key-0123456789abcdef"
"""Lets the features scenario configure signing secrets; the bench database is thrown away."""


def base_env(dsn: str) -> dict[str, str]:
    """The environment of every taskq process: the bench database, quiet logs, no proxies."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key.lower() not in {"http_proxy", "https_proxy", "all_proxy"}
    }
    env.update(
        POSTGRES_DSN=dsn,
        DLQ_QUEUE_NAME="task_dlq",
        LOG_LEVEL="warning",
        LOG_FORMAT="text",
        NO_PROXY="127.0.0.1,localhost",
        SECRETS_KEY=BENCH_SECRETS_KEY,
    )
    return env


def session() -> requests.Session:
    client = requests.Session()
    client.trust_env = False
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64)
    client.mount("http://", adapter)
    return client


class Cluster:
    """One API (granian) and any number of worker processes against the bench database."""

    def __init__(self, dsn: str, workdir: Path, sampler: RssSampler) -> None:
        self.dsn = dsn
        self.workdir = workdir
        self.sampler = sampler
        self.api: Managed | None = None
        self.api_url = ""
        self.workers: list[Managed] = []
        self.client = session()

    # -- processes ---------------------------------------------------------------------------

    def start_api(self, *, api_workers: int = 1, timeout: float = 30.0) -> str:
        port = free_port()
        env = base_env(self.dsn)
        env.update(HOST=LOCALHOST, PORT=str(port), API_WORKERS=str(api_workers))
        self.api = Managed("api", [str(BIN / "taskq-api")], env, self.workdir / "api.log")
        self.api_url = f"http://{LOCALHOST}:{port}"
        self.sampler.watch("api", self.api.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.api.alive():
                raise RuntimeError(f"taskq-api exited early; see {self.workdir / 'api.log'}")
            with contextlib.suppress(requests.RequestException):
                if self.client.get(f"{self.api_url}/health/ready", timeout=1).status_code == 200:
                    return self.api_url
            time.sleep(0.1)
        raise TimeoutError("taskq-api not ready in time")

    def start_workers(
        self,
        count: int,
        *,
        max_workers: int = 10,
        max_queue_buffer: int | None = None,
        processes: str = "1",
        extra_env: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        """Start `count` replicas of `processes` worker processes each (WORKER_PROCESSES)."""
        started = []
        for _ in range(count):
            port = free_port()
            env = base_env(self.dsn)
            env.update(
                MAX_WORKERS=str(max_workers), METRICS_PORT=str(port), WORKER_PROCESSES=processes
            )
            if max_queue_buffer is not None:
                env["MAX_QUEUE_BUFFER"] = str(max_queue_buffer)
            env.update(extra_env or {})
            label = f"worker{len(self.workers)}"
            worker = Managed(label, [str(BIN / "taskq-worker")], env, self.workdir / f"{label}.log")
            self.workers.append(worker)
            self.sampler.watch(label, worker.pid)
            started.append((worker, port))
        for worker, port in started:
            try:
                wait_for_port(port, timeout=timeout, process=worker.process)
            except TimeoutError:
                # A worker without a metrics server is still a worker: give it a moment.
                if not worker.alive():
                    raise
            if not worker.alive():
                raise RuntimeError(f"{worker.name} exited early; see its log in {self.workdir}")
            # With WORKER_PROCESSES > 1 the port opens before the children run:
            # ready means every child is up, so no measurement counts start-up.
            self._wait_ready(port, timeout)

    def _wait_ready(self, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                reply = self.client.get(f"http://{LOCALHOST}:{port}/health/ready", timeout=2)
                if reply.status_code == 200:
                    return
            time.sleep(0.1)

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop(grace=15)
            self.sampler.unwatch(worker.name)
        self.workers = []

    def stop(self) -> None:
        self.stop_workers()
        if self.api is not None:
            self.api.stop()
            self.sampler.unwatch("api")
            self.api = None
        self.client.close()

    # -- client ------------------------------------------------------------------------------

    def configure_type(
        self, task_type: str, max_rps: float | None, *, signing_secrets: list[str] | None = None
    ) -> None:
        body: dict[str, object] = {"task_type": task_type, "max_rps": max_rps}
        if signing_secrets is not None:
            body["signing_secrets"] = signing_secrets
        reply = self.client.post(f"{self.api_url}/task-types", json=body, timeout=30)
        if reply.status_code >= 300:
            raise RuntimeError(f"POST /task-types -> {reply.status_code}: {reply.text[:300]}")

    def submit(
        self,
        task_type: str,
        url: str,
        datas: Sequence[Any],
        *,
        client: requests.Session | None = None,
        max_retries: int = 3,
        retry_delay_ms: int = 100,
    ) -> list[int]:
        body = task_body(
            task_type, url, datas, max_retries=max_retries, retry_delay_ms=retry_delay_ms
        )
        reply = (client or self.client).post(f"{self.api_url}/tasks", json=body, timeout=120)
        if reply.status_code != 201:
            raise RuntimeError(f"POST /tasks -> {reply.status_code}: {reply.text[:300]}")
        ids: list[int] = reply.json()["message_ids"]
        return ids

    def submit_many(self, task_type: str, url: str, total: int, *, batch: int = 1000) -> None:
        """Queue `total` payloads of `task_type` in batches (a backlog)."""
        sent = 0
        while sent < total:
            size = min(batch, total - sent)
            self.submit(task_type, url, [{"n": sent + i} for i in range(size)])
            sent += size


def task_body(
    task_type: str,
    url: str,
    datas: Sequence[Any],
    *,
    max_retries: int = 3,
    retry_delay_ms: int = 100,
) -> dict[str, Any]:
    """A POST /tasks body in the reference's shape."""
    return {
        "task_type": task_type,
        "url": url,
        "method": "POST",
        "headers": {"Content-Type": "application/json"},
        "max_retries": max_retries,
        "retry_delay": retry_delay_ms,
        "payloads": [{"data": data} for data in datas],
    }


@dataclass(frozen=True, slots=True)
class BurnDown:
    """How a drain ended: when `done()` reached what was expected (None: timed out)."""

    end_at: float | None
    count: int


def wait_until_done(
    done: Callable[[], int], expected: int, *, timeout: float, poll: float = 0.05
) -> BurnDown:
    """Poll `done()` until it reaches `expected` or `timeout` passes."""
    deadline = time.monotonic() + timeout
    count = done()
    while time.monotonic() < deadline:
        count = done()
        if count >= expected:
            return BurnDown(time.monotonic(), count)
        time.sleep(poll)
    return BurnDown(None, count)
