"""The shard map read from a file (the operator's ConfigMap, mounted into the pod).

Kubernetes updates a mounted ConfigMap by swapping a symlink, so a reader sees the old or
the new document, never half of one. The file is re-read when its modification time or
size changes, checked every `sharding.reload_seconds` and on demand (a request carrying a
newer epoch). A map with a lower epoch than the one held, or a malformed one, is refused
with a log line and the held map stays in force: the epoch never goes backwards.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import structlog

from chatconnect.sharding.shardmap import ShardMap, ShardMapInvalid

log = structlog.get_logger(__name__)


class ShardMapMissing(Exception):
    """The configured shard map file cannot be read at start."""


class FileShardMapSource:
    """Holds the newest valid shard map found in `path`."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._map: ShardMap | None = None
        self._stamp: tuple[int, int] | None = None
        self._lock = asyncio.Lock()

    @property
    def shard_map(self) -> ShardMap | None:
        """The map in force, if one was loaded."""
        return self._map

    def current_epoch(self) -> int:
        return self._map.epoch if self._map is not None else 0

    async def load(self) -> ShardMap:
        """Reads the map at start; ShardMapMissing says what to fix."""
        try:
            await self.refresh(strict=True)
        except (OSError, ShardMapInvalid) as error:
            raise ShardMapMissing(
                f"cannot read the shard map {self._path} (sharding.map_file): {error}. "
                "Is the operator running and the ConfigMap mounted? Unset sharding.map_file "
                "for a single-region deployment."
            ) from error
        assert self._map is not None
        return self._map

    async def refresh(self, *, strict: bool = False) -> int:
        """Re-reads the file if it changed; returns the epoch in force."""
        async with self._lock:
            try:
                stamp, text = await asyncio.to_thread(self._read_if_changed)
                if text is not None:
                    self._adopt(ShardMap.from_json(text), stamp)
            except (OSError, ShardMapInvalid) as error:
                if strict:
                    raise
                log.error(
                    "shard map unreadable; keeping the one in force",
                    path=str(self._path),
                    error=str(error),
                    epoch=self.current_epoch(),
                )
            return self.current_epoch()

    async def run(self, every_seconds: float) -> None:
        """Checks the file forever (a background task)."""
        while True:
            await asyncio.sleep(every_seconds)
            await self.refresh()

    def _read_if_changed(self) -> tuple[tuple[int, int], str | None]:
        status = os.stat(self._path)
        stamp = (status.st_mtime_ns, status.st_size)
        if stamp == self._stamp:
            return stamp, None
        return stamp, self._path.read_text()

    def _adopt(self, candidate: ShardMap, stamp: tuple[int, int]) -> None:
        self._stamp = stamp
        held = self._map
        if held is not None and candidate.epoch < held.epoch:
            log.error(
                "shard map epoch went backwards; keeping the newer one",
                path=str(self._path),
                held=held.epoch,
                found=candidate.epoch,
            )
            return
        if held is None or candidate != held:
            log.info(
                "shard map loaded",
                epoch=candidate.epoch,
                shards=candidate.shard_count,
                regions=candidate.shards_per_region(),
            )
        self._map = candidate
