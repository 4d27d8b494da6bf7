"""The runtime's own settings and the composition of every service's settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatconnect.devices.config import DevicesConfig
from chatconnect.gateway.config import GatewayConfig
from chatconnect.groups.config import GroupsConfig
from chatconnect.keys.config import KeysConfig
from chatconnect.presence.config import PresenceConfig
from chatconnect.router.config import RouterConfig
from chatconnect.runtime.config import (
    ConfigError,
    describe,
    load_section,
    one_of,
    positive,
    read_file,
    setting,
)
from chatconnect.sharding.config import ShardingConfig
from chatconnect.storage.cql_config import ScyllaConfig
from chatconnect.users.config import UsersConfig


@dataclass(frozen=True)
class ServerConfig:
    """Where the process listens and keeps its data."""

    listen: str = setting("127.0.0.1:7600", "host:port the gRPC server listens on")
    data_dir: Path = setting(Path("data"), "directory for the embedded database and secrets")
    store: str = setting(
        "embedded",
        "where durable state lives: embedded (SQLite in data_dir) or scylla (ScyllaDB, "
        "see [scylla]; needs server.bus=redis)",
        check=one_of("embedded", "scylla"),
    )
    bus: str = setting(
        "inprocess",
        "how processes reach each other's connections: inprocess (one process) or redis",
        check=one_of("inprocess", "redis"),
    )
    redis_url: str = setting(
        "redis://127.0.0.1:6379/0", "Redis for the bus and rate limits when server.bus=redis"
    )
    redis_max_connections: int = setting(
        512,
        "Redis connections one process opens at most; calls beyond wait for a free one "
        "(up to server.store_timeout_seconds) instead of failing",
        check=positive,
    )
    route_heartbeat_seconds: float = setting(
        10.0,
        "how often a process rewrites the Redis routes of its connected devices",
        check=positive,
    )
    route_ttl_seconds: float = setting(
        30.0,
        "how long a route outlives its last heartbeat (a crashed process's devices are "
        "unreachable by push for at most this long; they reconnect elsewhere)",
        check=positive,
    )
    instance_id: str = setting(
        "",
        "this process's name on the bus; empty picks a random one at start (with "
        "server.processes above 1, each process adds -<index>)",
    )
    processes: int = setting(
        1,
        "server processes sharing server.listen through SO_REUSEPORT, so every core serves "
        "(one per core is usual); above 1 needs server.bus=redis, which joins them",
        check=positive,
    )
    drain_seconds: float = setting(
        5.0, "on shutdown, how long open streams get to finish after GoAway", check=positive
    )
    max_receive_message_bytes: int = setting(
        8 * 1024 * 1024, "largest gRPC message the server accepts", check=positive
    )
    max_pending_calls: int = setting(
        10_000,
        "new calls the gRPC core holds for the process while it is busy; beyond this the "
        "core refuses them as CANCELLED, so keep it above gateway.max_handshakes, which "
        "sheds with a retry hint instead",
        check=positive,
    )
    sqlite_synchronous: str = setting(
        "FULL",
        "SQLite synchronous mode; FULL makes every acknowledged write survive power loss",
        check=one_of("FULL", "NORMAL"),
    )
    sqlite_group_commit_max: int = setting(
        64,
        "write transactions one SQLite COMMIT (one fsync) may cover while writers are queued; "
        "also the most sends and acknowledgements run as one batch",
        check=positive,
    )
    store_timeout_seconds: float = setting(
        5.0, "longest wait for one storage call before the request fails", check=positive
    )
    event_loop: str = setting(
        "uvloop",
        "asyncio event loop: uvloop (faster) or asyncio",
        check=one_of("uvloop", "asyncio"),
    )
    gc_young_threshold: int = setting(
        10_000,
        "net new objects between two collections of the youngest generation (CPython's "
        "default is 700); higher means fewer, slightly longer garbage-collector pauses",
        check=positive,
    )


@dataclass(frozen=True)
class AuthConfig:
    """Device tokens."""

    access_token_ttl_seconds: int = setting(
        900, "how long an access token is accepted", check=positive
    )
    refresh_token_ttl_seconds: int = setting(
        60 * 24 * 3600, "how long an unused refresh token stays valid", check=positive
    )
    signing_key_file: Path | None = setting(
        None,
        "Ed25519 private key (PEM) that signs tokens; default <data_dir>/secrets/"
        "token-signing-key.pem, created on first start",
    )
    issuer: str = setting("chatconnect", "the `iss` claim of issued tokens")


@dataclass(frozen=True)
class TelemetryConfig:
    """OpenTelemetry traces and metrics."""

    exporter: str = setting(
        "none",
        "where traces and metrics go: none, console or otlp",
        check=one_of("none", "console", "otlp"),
    )
    otlp_endpoint: str = setting("http://127.0.0.1:4317", "OTLP/gRPC collector endpoint")
    service_name: str = setting("chatconnect", "the service.name resource attribute")


@dataclass(frozen=True)
class LoggingConfig:
    """Structured logs on stderr."""

    level: str = setting(
        "info", "lowest level logged", check=one_of("debug", "info", "warning", "error")
    )
    format: str = setting(
        "console",
        "console (for people) or json (for log pipelines)",
        check=one_of("console", "json"),
    )


@dataclass(frozen=True)
class Settings:
    """Everything one process needs, loaded once at start."""

    server: ServerConfig
    auth: AuthConfig
    telemetry: TelemetryConfig
    logging: LoggingConfig
    users: UsersConfig
    devices: DevicesConfig
    keys: KeysConfig
    router: RouterConfig
    gateway: GatewayConfig
    groups: GroupsConfig
    presence: PresenceConfig
    scylla: ScyllaConfig
    sharding: ShardingConfig

    def signing_key_path(self) -> Path:
        """The token signing key file in force."""
        return self.auth.signing_key_file or (
            self.server.data_dir / "secrets" / "token-signing-key.pem"
        )


def _sections() -> dict[str, type[Any]]:
    return {
        "server": ServerConfig,
        "auth": AuthConfig,
        "telemetry": TelemetryConfig,
        "logging": LoggingConfig,
        "users": UsersConfig,
        "devices": DevicesConfig,
        "keys": KeysConfig,
        "router": RouterConfig,
        "gateway": GatewayConfig,
        "groups": GroupsConfig,
        "presence": PresenceConfig,
        "scylla": ScyllaConfig,
        "sharding": ShardingConfig,
    }


def load_settings(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    profile: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Loads settings from a TOML file, `overrides` (command-line flags) and the environment.

    Precedence, lowest first: defaults, `profile` (defaults of a command such as `up`),
    file, overrides, environment.
    """
    document = read_file(path)
    sections = _sections()
    unknown = sorted(set(document) - set(sections))
    if unknown:
        raise ConfigError(
            f"unknown section [{unknown[0]}]; known sections: {', '.join(sorted(sections))}"
        )
    environment = os.environ if env is None else env
    values: dict[str, Any] = {}
    for name, cls in sections.items():
        table = dict((profile or {}).get(name, {}))
        table.update(document.get(name, {}))
        table.update((overrides or {}).get(name, {}))
        values[name] = load_section(cls, name, table, environment)
    settings = Settings(**values)
    _check_combination(settings)
    return settings


def _check_combination(settings: Settings) -> None:
    """Settings that are each valid but do not work together."""
    server = settings.server
    if server.processes > 1 and server.bus != "redis":
        # The in-process bus cannot push a message to a device held by a sibling process.
        raise ConfigError(
            f"server.processes={server.processes} needs server.bus=redis to join the "
            "processes (set CHATCONNECT_SERVER__BUS=redis and server.redis_url), or use "
            "server.processes=1"
        )


def advice(settings: Settings) -> list[str]:
    """Settings that work together but are likely not what the operator wants."""
    server = settings.server
    notes = []
    if server.processes > 1 and server.store == "embedded":
        notes.append(
            f"server.processes={server.processes} with the embedded store: the processes "
            "share one SQLite file, which takes one writer at a time, and measured slower "
            "than one process (docs/hot-path.md); more processes pay off with "
            "server.store=scylla"
        )
    return notes


def reference() -> list[tuple[str, str, str, str]]:
    """Every setting: (key, environment variable, default, description)."""
    rows: list[tuple[str, str, str, str]] = []
    for name, cls in _sections().items():
        rows.extend(describe(cls, name))
    return rows
