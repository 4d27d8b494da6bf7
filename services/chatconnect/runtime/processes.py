"""Several server processes on one port, one per core, and the supervisor that keeps them.

Python runs one thread of interpreter at a time per process, so one process uses one core.
With `server.processes` above 1 the supervisor starts that many copies of the server; each
binds `server.listen` with SO_REUSEPORT and the kernel spreads new connections across
them. The Redis bus joins them exactly as it joins gateways on different machines. A
process that dies is started again (with a growing pause) while the others keep serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import structlog

from chatconnect.runtime.auth import load_or_create_signing_key
from chatconnect.runtime.logging import get_logger
from chatconnect.runtime.settings import Settings

log = get_logger("processes")

RESTART_DELAYS_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Pauses before starting a dead process again: one crash is retried at once, a crash
loop slows down instead of spinning."""

STOP_GRACE_SECONDS = 10.0
"""How long past server.drain_seconds a process gets to exit before it is killed."""


class ProcessFailed(Exception):
    """A server process exited before it was ready to serve."""


def process_settings(settings: Settings, index: int, listen: str) -> Settings:
    """The settings of process `index`: the shared address and a name of its own."""
    server = settings.server
    instance_id = f"{server.instance_id}-{index}" if server.instance_id else ""
    return dataclasses.replace(
        settings, server=dataclasses.replace(server, listen=listen, instance_id=instance_id)
    )


def _serve_in_child(
    index: int,
    settings: Settings,
    services: tuple[str, ...],
    ready: Connection,
    lifeline: Connection,
) -> None:
    """The body of one server process (a fresh interpreter: `spawn`)."""
    from chatconnect.runtime import logging as runtime_logging
    from chatconnect.runtime import telemetry
    from chatconnect.runtime.server import run_on_loop

    runtime_logging.configure(settings.logging.level, settings.logging.format)
    # Every log line of this process says which one it is.
    structlog.contextvars.bind_contextvars(process=index)
    telemetry.configure(settings.telemetry)
    run_on_loop(_serve_while_supervised(settings, services, ready, lifeline), settings.server)


async def _serve_while_supervised(
    settings: Settings, services: tuple[str, ...], ready: Connection, lifeline: Connection
) -> None:
    from chatconnect.runtime.server import serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def supervisor_gone() -> None:
        # A closed pipe stays readable: without removing the reader the loop would call
        # this without end and starve the drain of the CPU.
        loop.remove_reader(lifeline.fileno())
        log.warning("the supervisor is gone; stopping")
        stop.set()
        # No supervisor is left to kill a process that overruns its drain.
        _exit_after(settings.server.drain_seconds + STOP_GRACE_SECONDS)

    # Only the supervisor holds the lifeline's writing end: it reads as closed once the
    # supervisor is gone, even killed with SIGKILL, and an orphan must not keep the port.
    loop.add_reader(lifeline.fileno(), supervisor_gone)
    await serve(settings, services, on_ready=ready.send, stop=stop)


def _exit_after(seconds: float) -> None:
    """Ends this process in `seconds` unless it has exited by then."""

    def overrun() -> None:
        log.error("stopping took too long; exiting now", seconds=seconds)
        os._exit(1)

    timer = threading.Timer(seconds, overrun)
    timer.daemon = True  # it must not itself keep the process alive
    timer.start()


@contextlib.contextmanager
def _shared_address(listen: str) -> Iterator[str]:
    """`listen` with a concrete port that every process can bind.

    Port 0 means any free port; each process would get a different one, so one is picked
    here and held (bound with SO_REUSEPORT, never listening, so it receives nothing) for
    the supervisor's lifetime: no other program can take it between restarts.
    """
    host, _, port = listen.rpartition(":")
    if port != "0":
        yield listen
        return
    bare_host = host.strip("[]")
    family, kind, proto, _, address = socket.getaddrinfo(bare_host, 0, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(address)
        yield f"{host}:{holder.getsockname()[1]}"


async def _readable(fd: int) -> None:
    """Waits until `fd` is readable (a pipe with data, or a process sentinel at exit)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await done
    finally:
        loop.remove_reader(fd)


class Supervisor:
    """Starts `server.processes` server processes, restarts any that die, stops them all."""

    def __init__(self, settings: Settings, services: tuple[str, ...]) -> None:
        self._settings = settings
        self._services = services
        self._context = multiprocessing.get_context("spawn")
        self._processes: dict[int, BaseProcess] = {}
        self._stopping = asyncio.Event()
        self._lifeline_reader, self._lifeline_writer = self._context.Pipe(duplex=False)

    @property
    def pids(self) -> list[int]:
        """The pids of the running server processes."""
        return [p.pid for p in self._processes.values() if p.pid is not None and p.is_alive()]

    def stop(self) -> None:
        """Asks every process to drain and exit (what SIGTERM and SIGINT do)."""
        self._stopping.set()

    async def run(self, *, on_ready: Callable[[str], None] | None = None) -> None:
        """Serves until stopped; raises ProcessFailed if a process cannot start at all."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        # Every process signs tokens with the same key; made here, once, so that they do
        # not race to create it.
        load_or_create_signing_key(self._settings.signing_key_path())
        count = self._settings.server.processes
        with _shared_address(self._settings.server.listen) as listen:
            try:
                addresses = await asyncio.gather(
                    *(self._start(index, listen) for index in range(count))
                )
                log.info("serving", processes=count, pids=",".join(map(str, self.pids)))
                if on_ready is not None:
                    on_ready(addresses[0])
                watchers = [
                    asyncio.create_task(self._keep(index, listen)) for index in range(count)
                ]
                await self._stopping.wait()
                for watcher in watchers:
                    watcher.cancel()
                await asyncio.gather(*watchers, return_exceptions=True)
            finally:
                await self._stop_all()

    async def _start(self, index: int, listen: str) -> str:
        """Starts process `index` and returns the address it serves once it is ready."""
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_serve_in_child,
            args=(
                index,
                process_settings(self._settings, index, listen),
                self._services,
                sender,
                self._lifeline_reader,
            ),
            name=f"chatconnect-{index}",
        )
        process.start()
        sender.close()  # the child holds the only writer: EOF on the pipe means it died
        self._processes[index] = process
        with receiver:
            await _readable(receiver.fileno())
            try:
                address: str = receiver.recv()
            except EOFError:
                await _readable(process.sentinel)
                process.join()
                raise ProcessFailed(
                    f"server process {index} exited with code {process.exitcode} before it "
                    "was ready; its error is above"
                ) from None
        log.info("process ready", index=index, pid=process.pid)
        return address

    async def _keep(self, index: int, listen: str) -> None:
        """Starts process `index` again whenever it dies, until the supervisor stops."""
        failures = 0
        while True:
            process = self._processes[index]
            await _readable(process.sentinel)
            process.join()
            if self._stopping.is_set():
                return  # it stopped on the same Ctrl-C as the supervisor
            delay = RESTART_DELAYS_SECONDS[min(failures, len(RESTART_DELAYS_SECONDS) - 1)]
            log.error(
                "server process died; starting it again",
                index=index,
                pid=process.pid,
                exit_code=process.exitcode,
                restart_in_seconds=delay,
            )
            await asyncio.sleep(delay)
            try:
                await self._start(index, listen)
                failures = 0
            except ProcessFailed as exc:
                failures += 1
                log.error("restart failed", index=index, error=str(exc))

    async def _stop_all(self) -> None:
        """SIGTERM to every process (each drains its streams), then SIGKILL past the grace."""
        running = [p for p in self._processes.values() if p.is_alive()]
        for process in running:
            process.terminate()
        grace = self._settings.server.drain_seconds + STOP_GRACE_SECONDS
        loop = asyncio.get_running_loop()
        for process in running:
            await loop.run_in_executor(None, process.join, grace)
            if process.is_alive():
                log.warning("server process did not stop in time; killing it", pid=process.pid)
                process.kill()
                await loop.run_in_executor(None, process.join)
        self._lifeline_writer.close()
        self._lifeline_reader.close()
        log.info("stopped", processes=len(running))


def run_processes(
    settings: Settings,
    services: tuple[str, ...],
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Runs the supervisor until SIGINT or SIGTERM; raises ProcessFailed on a bad start."""
    asyncio.run(Supervisor(settings, services).run(on_ready=on_ready))
