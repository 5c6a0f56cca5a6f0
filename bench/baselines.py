"""Baselines measured in the same run, on the same database and targets as taskq."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests

from bench.db import Database

RAW_QUEUE = "bench_raw"


def queued_messages(url: str, count: int, *, task_type: str = "bench-raw") -> list[dict[str, Any]]:
    """Message bodies shaped like the ones taskq queues (a QueuedCall each)."""
    task_id = str(uuid.uuid4())
    return [
        {
            "task_id": task_id,
            "payload_id": index,
            "task_type": task_type,
            "url": url,
            "method": "POST",
            "headers": {"Content-Type": "application/json"},
            "data": {"n": index},
            "max_retries": 3,
            "retry_delay_ms": 100,
        }
        for index in range(count)
    ]


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def bare_requests_loop(url: str, count: int) -> float:
    """Calls/s of one `requests.Session` (trust_env off) posting `count` JSON bodies in a loop."""
    client = requests.Session()
    client.trust_env = False
    try:
        client.post(url, json={"n": -1}, timeout=10).raise_for_status()
        started = time.perf_counter()
        for index in range(count):
            client.post(url, json={"n": index}, timeout=10).raise_for_status()
        return count / (time.perf_counter() - started)
    finally:
        client.close()


def threaded_requests_loop(url: str, threads: int, count: int, timeout: float = 120) -> float:
    """Calls/s of `threads` threads sharing one `requests.Session` (pool sized to the threads)."""
    client = requests.Session()
    client.trust_env = False
    client.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=threads))
    counter = itertools.count()
    deadline = time.monotonic() + timeout

    def run() -> None:
        while time.monotonic() < deadline and next(counter) < count:
            client.post(url, json={"n": 0}, timeout=10)

    seconds = run_in_threads(run, threads, timeout)
    client.close()
    return count / seconds


def run_in_threads(work: Callable[[], None], threads: int, timeout: float) -> float:
    """Run `work` in `threads` threads at once; seconds until all returned (bounded)."""
    workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout + 5)
    return time.perf_counter() - started


def raw_send_batch(db: Database, messages: list[dict[str, Any]], batch: int) -> float:
    """Messages/s of raw `pgmq.send_batch` in batches of `batch` (queue purged afterwards)."""
    db.create_queue(RAW_QUEUE)
    try:
        seconds = db.send_batches(RAW_QUEUE, chunks(messages, batch))
    finally:
        db.drop_queue(RAW_QUEUE)
    return len(messages) / seconds


def raw_burn_down(db: Database, messages: list[dict[str, Any]]) -> float:
    """Messages/s of raw read(100) + delete of a backlog of `messages`."""
    db.create_queue(RAW_QUEUE)
    try:
        db.send_batches(RAW_QUEUE, chunks(messages, 1000))
        started = time.perf_counter()
        done = db.burn_down(RAW_QUEUE, batch=100, limit=len(messages))
        seconds = time.perf_counter() - started
    finally:
        db.drop_queue(RAW_QUEUE)
    return done / seconds


def pgmq_requests_loop(db: Database, messages: list[dict[str, Any]], url: str) -> float:
    """Jobs/s of the simplest PGMQ consumer: read(100), one POST each, batch delete."""
    db.create_queue(RAW_QUEUE)
    client = requests.Session()
    client.trust_env = False
    try:
        db.send_batches(RAW_QUEUE, chunks(messages, 1000))
        started = time.perf_counter()
        done = 0
        for _ in range(len(messages) // 100 + 2):
            rows = db.read(RAW_QUEUE, 100)
            if not rows:
                break
            for _msg_id, body in rows:
                client.post(url, json=body["data"], timeout=10).raise_for_status()
            db.delete(RAW_QUEUE, [msg_id for msg_id, _body in rows])
            done += len(rows)
        seconds = time.perf_counter() - started
    finally:
        client.close()
        db.drop_queue(RAW_QUEUE)
    return done / seconds


def ideal_rate(threads: int, latency_s: float) -> float:
    """The most calls/s `threads` blocking threads can make against a target of `latency_s`."""
    return threads / latency_s
