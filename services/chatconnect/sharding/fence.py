"""The epoch fence: refuse writes routed by a shard map other than the one in force.

After a failover the operator raises the epoch. A client (or gateway) still routing by
the old map carries the old epoch; its write is refused with STALE_SHARD_EPOCH and the
current epoch, so it re-routes instead of writing into a region that no longer owns the
shard. A request from the future (this process has not yet loaded the new map) is asked
to retry after a moment rather than accepted under the old assignment.

Epoch 0 means "unknown": clients that have never seen a map send 0 and are not fenced,
and a process without a map (one region, no operator) fences nothing.
"""

from __future__ import annotations

from typing import Protocol

from chatconnect.sharding.errors import ShardMapBehind, StaleShardEpoch


class EpochSource(Protocol):
    """Where the epoch in force comes from."""

    def current_epoch(self) -> int:
        """The epoch of the map held now; 0 without a map."""
        ...

    async def refresh(self) -> int:
        """Re-reads the map if it changed; returns the epoch then in force."""
        ...


class NoShardMap:
    """A single-region deployment: epoch 0, nothing fenced."""

    def current_epoch(self) -> int:
        return 0

    async def refresh(self) -> int:
        return 0


class EpochFence:
    """Checks the epoch a write carries against the map in force."""

    def __init__(self, source: EpochSource) -> None:
        self._source = source

    @property
    def current_epoch(self) -> int:
        """The epoch to tell clients (0 without a map)."""
        return self._source.current_epoch()

    async def check(self, request_epoch: int) -> None:
        """Raises StaleShardEpoch or ShardMapBehind unless `request_epoch` may write."""
        current = self._source.current_epoch()
        if request_epoch == 0 or current == 0 or request_epoch == current:
            return
        if request_epoch < current:
            raise StaleShardEpoch(request_epoch, current)
        current = await self._source.refresh()
        if request_epoch > current:
            raise ShardMapBehind(request_epoch, current)
        if request_epoch < current:  # the map moved on twice while we looked
            raise StaleShardEpoch(request_epoch, current)
