"""Settings of the shard map (section [sharding])."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chatconnect.runtime.config import positive, setting


@dataclass(frozen=True)
class ShardingConfig:
    """Where the shard map comes from; without one, writes are not fenced by epoch."""

    map_file: Path | None = setting(
        None,
        "shard map JSON published by the operator (a mounted ConfigMap); unset in a "
        "single-region deployment, which then fences nothing",
    )
    region: str = setting("", "the region this process serves, as named in the shard map")
    reload_seconds: float = setting(
        2.0, "how often the shard map file is checked for a new epoch", check=positive
    )
