"""The shard map file source and the epoch fence, on real files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chatconnect.sharding.errors import ShardMapBehind, StaleShardEpoch
from chatconnect.sharding.fence import EpochFence, NoShardMap
from chatconnect.sharding.shardmap import ShardMap
from chatconnect.sharding.source import FileShardMapSource, ShardMapMissing


def write_map(path: Path, epoch: int, homes: tuple[str, ...] = ("eu", "us")) -> None:
    """Replaces the file atomically, as the kubelet swaps a ConfigMap volume."""
    staged = path.with_suffix(".staged")
    staged.write_text(ShardMap(epoch=epoch, homes=homes).to_json())
    os.replace(staged, path)


async def test_a_missing_map_stops_the_start_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ShardMapMissing, match=r"sharding\.map_file.*operator"):
        await FileShardMapSource(tmp_path / "absent.json").load()


async def test_a_new_epoch_is_picked_up_and_never_goes_backwards(tmp_path: Path) -> None:
    path = tmp_path / "shard-map.json"
    write_map(path, 3)
    source = FileShardMapSource(path)
    assert (await source.load()).epoch == 3
    write_map(path, 4, ("eu", "eu"))
    assert await source.refresh() == 4
    assert source.shard_map == ShardMap(epoch=4, homes=("eu", "eu"))
    write_map(path, 2)  # an older map must not undo a failover
    assert await source.refresh() == 4
    path.write_text("{half a document")
    assert await source.refresh() == 4
    assert source.shard_map == ShardMap(epoch=4, homes=("eu", "eu"))


async def test_the_fence_refuses_old_epochs_and_waits_for_new_ones(tmp_path: Path) -> None:
    path = tmp_path / "shard-map.json"
    write_map(path, 5)
    source = FileShardMapSource(path)
    await source.load()
    fence = EpochFence(source)
    await fence.check(5)
    await fence.check(0)  # a client that never saw a map
    with pytest.raises(StaleShardEpoch) as stale:
        await fence.check(4)
    assert (stale.value.request_epoch, stale.value.current_epoch) == (4, 5)
    with pytest.raises(ShardMapBehind):
        await fence.check(6)  # the file still says 5
    write_map(path, 6)
    await fence.check(6)  # a request from the future makes the source look again
    assert fence.current_epoch == 6


async def test_without_a_map_nothing_is_fenced() -> None:
    fence = EpochFence(NoShardMap())
    for epoch in (0, 1, 99):
        await fence.check(epoch)
    assert fence.current_epoch == 0
