"""pgqueuer 1.6 + aiohttp in one process: the best Python peer of issue 13's table.

Run with .venv-bench-peers/bin/python (bench/requirements-peers.txt), never
the project's venv: `enqueue` installs pgqueuer's schema and queues COUNT jobs;
`consume` drains them, one aiohttp POST each, and prints the rate as JSON,
timed like taskq's drains: from the consumer's start to its last completion.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import timedelta
from typing import Any

import aiohttp
import asyncpg
from pgqueuer import AsyncpgDriver, Queries, QueueManager

ENTRYPOINT = "bench_call"
BATCH = 20  # jobs fetched at once: ~20 in flight, as measured in the field notes


async def enqueue(dsn: str, count: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        queries = Queries(AsyncpgDriver(conn))
        await queries.install()
        for start in range(0, count, 1000):
            size = min(1000, count - start)
            payloads: list[bytes | None] = [
                json.dumps({"n": start + i}).encode() for i in range(size)
            ]
            await queries.enqueue([ENTRYPOINT] * size, payloads, [0] * size)
    finally:
        await conn.close()


async def consume(dsn: str, url: str, count: int) -> dict[str, Any]:
    done = 0
    last = started = time.monotonic()
    conn = await asyncpg.connect(dsn)
    async with aiohttp.ClientSession() as session:
        manager = QueueManager(Queries(AsyncpgDriver(conn)))

        @manager.entrypoint(ENTRYPOINT)  # type: ignore[untyped-decorator]
        async def call(job: Any) -> None:
            nonlocal done, last
            async with session.post(
                url, data=job.payload, headers={"Content-Type": "application/json"}
            ) as reply:
                await reply.read()
            done += 1
            last = time.monotonic()
            if done >= count:
                manager.shutdown.set()

        await manager.run(batch_size=BATCH, dequeue_timeout=timedelta(seconds=1))
    await conn.close()
    seconds = last - started
    return {"done": done, "seconds": seconds, "rate": done / seconds if seconds > 0 else None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["enqueue", "consume"])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--url", default="")
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    if args.mode == "enqueue":
        asyncio.run(enqueue(args.dsn, args.count))
    else:
        print(json.dumps(asyncio.run(consume(args.dsn, args.url, args.count))))


if __name__ == "__main__":
    main()
