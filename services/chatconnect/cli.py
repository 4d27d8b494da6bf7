"""The `chatconnect` command: run the system, run some services, try it, list settings."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from chatconnect import __version__
from chatconnect.runtime import logging as runtime_logging
from chatconnect.runtime import telemetry
from chatconnect.runtime.app import PLANNED, SERVED
from chatconnect.runtime.config import ConfigError
from chatconnect.runtime.settings import Settings, advice, load_settings, reference

DEV_TEST_CODE = "246810"
"""The verification code of fictional test numbers under `chatconnect up` (development)."""

DEFAULT_TARGET = "127.0.0.1:7600"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatconnect",
        description="ChatConnect: the server side of a WhatsApp/Signal-class messenger.",
    )
    parser.add_argument("--version", action="version", version=f"chatconnect {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def server_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--config", type=Path, help="TOML settings file")
        command.add_argument("--listen", help="host:port to listen on (server.listen)")
        command.add_argument("--data-dir", type=Path, help="data directory (server.data_dir)")
        command.add_argument(
            "--store",
            choices=("embedded", "scylla"),
            help="embedded (SQLite) or scylla (ScyllaDB + Redis; sets server.bus=redis)",
        )

    up = commands.add_parser(
        "up",
        help="run every service in one process with embedded storage",
        description="Runs every service in one process with embedded storage (SQLite in the "
        "data directory). Development defaults: fictional numbers +1 NXX 555-01XX register "
        f"with code {DEV_TEST_CODE}.",
    )
    server_options(up)
    serve = commands.add_parser(
        "serve",
        help="run some services (distributed deployments)",
        description=f"Runs the named services. Served: {', '.join(SERVED)}.",
    )
    serve.add_argument("services", nargs="+", metavar="SERVICE")
    server_options(serve)
    demo = commands.add_parser(
        "demo",
        help="drive a real conversation against a running system and check it",
    )
    demo.add_argument("--target", default=DEFAULT_TARGET, help="address of the gateway")
    demo.add_argument(
        "--code",
        default=DEV_TEST_CODE,
        help="verification code the target accepts for test numbers",
    )
    commands.add_parser("config", help="print every setting with its default")
    migrate = commands.add_parser(
        "migrate",
        help="create or upgrade the ScyllaDB keyspace (run before starting new servers)",
        description="Creates the keyspace named by scylla.keyspace (replication from "
        "scylla.replication) and applies every pending schema migration. Safe to rerun.",
    )
    migrate.add_argument("--config", type=Path, help="TOML settings file")
    migrate.add_argument(
        "--replication", help="replicas per datacenter, e.g. eu:3,us:3 (scylla.replication)"
    )
    return parser


def _settings(args: argparse.Namespace, *, development: bool) -> Settings:
    overrides: dict[str, dict[str, Any]] = {"server": {}}
    if args.listen:
        overrides["server"]["listen"] = args.listen
    if args.data_dir:
        overrides["server"]["data_dir"] = str(args.data_dir)
    if args.store:
        overrides["server"]["store"] = args.store
        if args.store == "scylla":
            overrides["server"]["bus"] = "redis"
    profile: dict[str, dict[str, Any]] | None = None
    if development:
        # A laptop runs one node: one replica is all its keyspace can have.
        profile = {
            "users": {"test_numbers_code": DEV_TEST_CODE},
            "scylla": {"replication": "datacenter1:1"},
        }
    return load_settings(args.config, overrides=overrides, profile=profile)


def _serve(args: argparse.Namespace, services: tuple[str, ...], *, development: bool) -> int:
    from chatconnect.runtime.processes import ProcessFailed, run_processes
    from chatconnect.runtime.server import run_on_loop, serve

    try:
        settings = _settings(args, development=development)
    except ConfigError as exc:
        print(f"chatconnect: configuration error: {exc}", file=sys.stderr)
        return 2
    runtime_logging.configure(settings.logging.level, settings.logging.format)
    telemetry.configure(settings.telemetry)
    for note in advice(settings):
        print(f"chatconnect: note: {note}", file=sys.stderr, flush=True)
    if development and settings.server.store == "scylla":
        # `up` is for one machine: bring the keyspace up to date first; `serve` only checks.
        code = _migrate(settings)
        if code:
            return code

    def ready(address: str) -> None:
        print(f"ChatConnect {__version__} is up.", flush=True)
        print(f"  clients connect to:  {address}", flush=True)
        print(f"  services:            {', '.join(services)}", flush=True)
        if settings.server.processes > 1:
            print(
                f"  processes:           {settings.server.processes}, sharing the port",
                flush=True,
            )
        if settings.server.store == "scylla":
            print(
                f"  store:               ScyllaDB {settings.scylla.contact_points} "
                f"keyspace {settings.scylla.keyspace}, Redis {settings.server.redis_url}",
                flush=True,
            )
        else:
            print(f"  data directory:      {settings.server.data_dir.resolve()}", flush=True)
        if development:
            print(
                f"  test numbers:        +1 NXX 555-01XX register with code "
                f"{settings.users.test_numbers_code} (development only)",
                flush=True,
            )
        print(f"Try it:  chatconnect demo --target {address}", flush=True)
        print("Stop with Ctrl-C (open connections are drained first).", flush=True)

    if settings.server.processes == 1:
        run_on_loop(serve(settings, services, on_ready=ready), settings.server)
        return 0
    try:
        run_processes(settings, services, on_ready=ready)
    except ProcessFailed as exc:
        print(f"chatconnect: {exc}", file=sys.stderr)
        return 1
    return 0


def _migrate(settings: Settings) -> int:
    from chatconnect.runtime.errors import StoreUnavailable
    from chatconnect.storage.cql_migrate import SchemaOutOfDate, migrate

    def progress(message: str) -> None:
        print(f"migrate: {message}", flush=True)

    config = settings.scylla
    progress(f"connecting to {config.contact_points}:{config.port} (datacenter {config.local_dc})")
    try:
        version = asyncio.run(
            migrate(config, timeout=settings.server.store_timeout_seconds, progress=progress)
        )
    except (StoreUnavailable, SchemaOutOfDate) as exc:
        print(f"chatconnect migrate: {exc}", file=sys.stderr)
        return 1
    progress(f"keyspace {config.keyspace} is at schema version {version}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `chatconnect` console script."""
    args = _parser().parse_args(argv)
    if args.command == "up":
        return _serve(args, SERVED, development=True)
    if args.command == "serve":
        services = tuple(dict.fromkeys(args.services))
        for name in services:
            if name in PLANNED:
                print(
                    f"chatconnect: service {name!r} has a contract but is not served by this "
                    f"release yet; served: {', '.join(SERVED)}",
                    file=sys.stderr,
                )
                return 2
            if name not in SERVED:
                print(
                    f"chatconnect: unknown service {name!r}; choose from {', '.join(SERVED)}",
                    file=sys.stderr,
                )
                return 2
        return _serve(args, services, development=False)
    if args.command == "demo":
        from chatconnect.demo import run_demo

        return int(asyncio.run(run_demo(args.target, code=args.code)))
    if args.command == "migrate":
        overrides = {"scylla": {"replication": args.replication}} if args.replication else None
        try:
            settings = load_settings(args.config, overrides=overrides)
        except ConfigError as exc:
            print(f"chatconnect: configuration error: {exc}", file=sys.stderr)
            return 2
        return _migrate(settings)
    if args.command == "config":
        print("| key | environment variable | default | meaning |")
        print("|---|---|---|---|")
        for key, env, default, doc in reference():
            print(f"| `{key}` | `{env}` | `{default}` | {doc} |")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
