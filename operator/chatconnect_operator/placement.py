"""Shard placement: which region is home to each virtual shard (docs/kubernetes.md).

Base homes come from rendezvous (highest-random-weight) hashing: each shard goes to the
region with the highest BLAKE2b score of "<shard>:<region>". Adding or removing a region
moves only the shards it wins or held, and every operator computes the same map without
coordination. A region that is failed over or drained hands its shards to its
`failoverRegion` when that region is available, otherwise to the highest-scoring
available region (the same hashing over the survivors), so the orphaned shards spread
evenly instead of piling onto one neighbour.

The epoch rises by one whenever the effective homes differ from the published map, and
never otherwise: services fence writes by epoch, so a needless bump would only cost
retries. With no region available the current map stands: publishing a map that homes
shards nowhere would refuse every write, while the last map at least names a region
that may come back.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Collection, Mapping, Sequence

from chatconnect.sharding.shardmap import ShardMap


def score(shard: int, region: str) -> int:
    """The rendezvous weight of `region` for `shard` (stable across processes)."""
    digest = hashlib.blake2b(f"{shard}:{region}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _winner(shard: int, regions: Sequence[str]) -> str:
    # Ties are astronomically unlikely with 64-bit scores; the name breaks them anyway so
    # the result never depends on the order of `regions`.
    return max(regions, key=lambda region: (score(shard, region), region))


@functools.lru_cache(maxsize=32)
def base_homes(regions: tuple[str, ...], shards: int) -> tuple[str, ...]:
    """Each shard's home with every region available (cached: the cluster timer asks
    for the same answer every few seconds, and 65,536 shards cost a few hundred ms)."""
    if not regions:
        raise ValueError("a cluster needs at least one region")
    ordered = tuple(sorted(set(regions)))
    return tuple(_winner(shard, ordered) for shard in range(shards))


def effective_homes(
    regions: Collection[str],
    shards: int,
    *,
    out: Collection[str],
    failover_regions: Mapping[str, str | None],
) -> tuple[str, ...] | None:
    """Each shard's home once the `out` regions (failed over or drained) hand theirs on;
    None when no region is available."""
    ordered = tuple(sorted(set(regions)))
    available = tuple(region for region in ordered if region not in out)
    if not available:
        return None
    homes = list(base_homes(ordered, shards))
    for shard, home in enumerate(homes):
        if home in available:
            continue
        successor = failover_regions.get(home)
        homes[shard] = successor if successor in available else _winner(shard, available)
    return tuple(homes)


def place(
    regions: Collection[str],
    shards: int,
    *,
    out: Collection[str],
    failover_regions: Mapping[str, str | None],
    current: ShardMap | None,
    min_epoch: int = 0,
) -> ShardMap | None:
    """The map to publish: the effective homes under the right epoch.

    `current` is the published map (None before the first publication); `min_epoch` is
    an epoch known to have been published (the cluster's status), so a lost or mangled
    ConfigMap never makes the epoch go back. None: nothing can be published (no region
    available and no map yet).
    """
    homes = effective_homes(regions, shards, out=out, failover_regions=failover_regions)
    if homes is None:
        return current
    if current is not None and current.homes == homes and current.epoch >= min_epoch:
        return current
    previous = max(current.epoch if current is not None else 0, min_epoch)
    return ShardMap(epoch=previous + 1, homes=homes)
