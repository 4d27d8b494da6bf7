"""Time to link a new device: BeginLink → ApproveLink → AwaitLinkApproval → CompleteLink,
through the SDK's `link_device` on loopback, as one user would experience it.

Starts the whole system in this process (embedded, or distributed on the test Cassandra
keyspace named by CHATCONNECT_TEST_KEYSPACE and the test Redis of `tools/testenv`),
registers accounts (untimed), then links LINKS devices one after the other, a few per
account so the device limit is never in the way, and prints p50 / p95 / max.

    CHATCONNECT_TEST_KEYSPACE=chatconnect_bench .venv/bin/python bench/link_latency.py
    CHATCONNECT_TEST_KEYSPACE=chatconnect_bench .venv/bin/python bench/link_latency.py \
        --store distributed
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatconnect.runtime import logging as runtime_logging
from chatconnect.storage.cql_migrate import migrate
from tests.conftest import Server, distributed_overrides, running_server
from tests.scylla import STORE_TIMEOUT, scylla_config
from tests.servers import redis_url

LINKS_PER_ACCOUNT = 4


def _say(text: str) -> None:
    print(f"link_latency: {text}", flush=True)


async def _measure(server: Server, links: int) -> list[float]:
    took: list[float] = []
    approver = await server.register()
    for n in range(links):
        if n and n % LINKS_PER_ACCOUNT == 0:
            approver = await server.register()
        start = time.perf_counter()
        await server.link(approver)
        took.append(time.perf_counter() - start)
    return took


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def _run(args: argparse.Namespace) -> None:
    # The per-IP BeginLink limit guards against scanning, not against this benchmark.
    sections: list[dict[str, dict[str, Any]]] = [
        {"devices": {"link_begins_per_minute": 60.0 * args.links}}
    ]
    if args.store == "distributed":
        config = scylla_config()
        await migrate(config, timeout=STORE_TIMEOUT, progress=lambda _: None)
        sections.insert(0, distributed_overrides(config, redis_url()))
    with tempfile.TemporaryDirectory() as data:
        async with running_server(Path(data), *sections) as server:
            await _measure(server, 2)  # warm up connections and prepared statements
            took = await _measure(server, args.links)
    ms = [t * 1000 for t in took]
    _say(
        f"{args.store}: {len(ms)} links, p50 {statistics.median(ms):.1f} ms, "
        f"p95 {_percentile(ms, 0.95):.1f} ms, max {max(ms):.1f} ms"
    )


def main() -> None:
    runtime_logging.configure("warning", "console")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=20, help="devices to link")
    parser.add_argument("--store", choices=["embedded", "distributed"], default="embedded")
    asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    main()
