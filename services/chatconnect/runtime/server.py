"""The gRPC server of one process: services, health checking, reflection, graceful drain."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Callable, Coroutine
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from chatconnect.runtime.app import build
from chatconnect.runtime.logging import get_logger
from chatconnect.runtime.settings import ServerConfig, Settings

log = get_logger("server")

# A connection storm must queue, not cancel streams: allow many concurrent streams per
# HTTP/2 connection and keep idle client connections alive with pings.
_GRPC_OPTIONS_BASE: list[tuple[str, int]] = [
    ("grpc.max_concurrent_streams", 1_000),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


def grpc_options(settings: Settings) -> list[tuple[str, int]]:
    """The gRPC core's channel arguments for this process's server."""
    return [
        *_GRPC_OPTIONS_BASE,
        ("grpc.max_receive_message_length", settings.server.max_receive_message_bytes),
        # The core queues calls the process has not picked up yet; past its default of
        # 1,000 it cancels new ones at random (random early detection), which a connection
        # storm hits while the event loop is busy. Queue them instead, and let the
        # gateway's admission shed with retry hints.
        ("grpc.server.max_pending_requests", settings.server.max_pending_calls),
        ("grpc.server.max_pending_requests_hard_limit", settings.server.max_pending_calls),
        # The core shares ports by default; a single process must not, so that a second
        # server started on a busy port fails loudly instead of taking half its connections.
        ("grpc.so_reuseport", 1 if settings.server.processes > 1 else 0),
    ]


def run_on_loop(coroutine: Coroutine[Any, Any, Any], config: ServerConfig) -> Any:
    """Runs a server process's `coroutine` to completion on the event loop named by
    server.event_loop, with the garbage collector tuned for a server."""
    _tune_garbage_collector(config.gc_young_threshold)
    if config.event_loop == "uvloop":
        import uvloop

        return uvloop.run(coroutine)
    return asyncio.run(coroutine)


def _tune_garbage_collector(young_threshold: int) -> None:
    """Every container object a request allocates counts towards the next collection;
    at CPython's default (a collection per 700 net allocations) a busy server ran about
    1,500 young and a dozen full collections in half a minute, the full ones tens of
    milliseconds each (see docs/hot-path.md). Objects alive now (modules, descriptors,
    settings) are moved out of the collector's way for good with gc.freeze."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, oldest)


async def serve(
    settings: Settings,
    services: tuple[str, ...],
    *,
    on_ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Runs until `stop` is set (or SIGINT/SIGTERM), then drains and returns."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Outside the main thread (tests) the caller sets `stop` itself.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with build(settings, services) as app:
        server = grpc.aio.server(options=grpc_options(settings))
        for registration in app.registrations:
            registration.add(server)
        health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        names = [r.full_name for r in app.registrations]
        reflection.enable_server_reflection(
            [
                *names,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            server,
        )
        try:
            port = server.add_insecure_port(settings.server.listen)
        except RuntimeError as exc:
            raise SystemExit(
                f"cannot listen on {settings.server.listen}: {exc}; is another chatconnect "
                "running? Choose another address with --listen or server.listen"
            ) from None
        await server.start()
        for name in ["", *names]:
            await health.set(name, health_pb2.HealthCheckResponse.SERVING)
        background = [asyncio.create_task(start()) for start in app.background]
        host = settings.server.listen.rsplit(":", 1)[0]
        address = f"{host}:{port}"
        log.info("serving", address=address, services=",".join(r.name for r in app.registrations))
        if on_ready is not None:
            on_ready(address)
        await stop.wait()
        log.info("draining", seconds=settings.server.drain_seconds)
        await health.enter_graceful_shutdown()
        if app.gateway is not None:
            app.gateway.drain(retry_after_seconds=1.0)
        await server.stop(grace=settings.server.drain_seconds)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        log.info("stopped")
