"""Shard placement: rendezvous homes, failover successors, epochs, no empty map."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable

import pytest
from chatconnect_operator.placement import base_homes, effective_homes, place

from chatconnect.sharding.shardmap import ShardMap

REGIONS = ("ap", "eu", "us")


def reference_home(shard: int, regions: tuple[str, ...]) -> str:
    """The contract spelled out independently: highest BLAKE2b of "<shard>:<region>"."""

    def weight(region: str) -> int:
        digest = hashlib.blake2b(f"{shard}:{region}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    return max(regions, key=weight)


@pytest.mark.parametrize("regions", [("eu",), ("eu", "us"), REGIONS, ("us", "eu", "ap")])
def test_base_homes_follow_rendezvous_hashing_in_any_order(regions: tuple[str, ...]) -> None:
    homes = base_homes(regions, 256)
    assert homes == tuple(reference_home(shard, tuple(sorted(regions))) for shard in range(256))


def test_base_homes_spread_evenly() -> None:
    counts = Counter(base_homes(REGIONS, 3000))
    assert set(counts) == set(REGIONS)
    assert all(800 < count < 1200 for count in counts.values()), counts


def test_adding_a_region_moves_only_the_shards_it_wins() -> None:
    before = base_homes(("eu", "us"), 1024)
    after = base_homes(REGIONS, 1024)
    moved = [shard for shard in range(1024) if before[shard] != after[shard]]
    assert moved, "the new region must win some shards"
    assert all(after[shard] == "ap" for shard in moved)


@pytest.mark.parametrize(
    ("out", "successors", "expect"),
    [
        # a failover region takes all the shards of the failed one
        ({"eu"}, {"eu": "us"}, lambda base, new: new == "us" if base == "eu" else new == base),
        # without one, they spread over the available regions by the same hashing
        (
            {"eu"},
            {},
            lambda base, new: new == base if base != "eu" else new in ("ap", "us"),
        ),
        # a failover region that is itself out does not count
        (
            {"eu", "us"},
            {"eu": "us"},
            lambda base, new: new == "ap",
        ),
        # a failover region outside the cluster does not count either
        (
            {"eu"},
            {"eu": "mars"},
            lambda base, new: new in ("ap", "us") if base == "eu" else new == base,
        ),
    ],
)
def test_out_regions_hand_their_shards_on(
    out: set[str], successors: dict[str, str], expect: Callable[[str, str], bool]
) -> None:
    base = base_homes(REGIONS, 512)
    homes = effective_homes(REGIONS, 512, out=out, failover_regions=successors)
    assert homes is not None
    assert all(expect(b, n) for b, n in zip(base, homes, strict=True))


def test_spread_orphans_go_to_the_next_best_available_region() -> None:
    homes = effective_homes(REGIONS, 512, out={"eu"}, failover_regions={})
    assert homes is not None
    for shard, home in enumerate(homes):
        assert home == reference_home(shard, ("ap", "us"))
    spread = Counter(
        home for shard, home in enumerate(homes) if base_homes(REGIONS, 512)[shard] == "eu"
    )
    assert set(spread) == {"ap", "us"}


def test_first_publication_is_epoch_one() -> None:
    shard_map = place(REGIONS, 64, out=set(), failover_regions={}, current=None)
    assert shard_map is not None
    assert shard_map.epoch == 1
    assert shard_map.homes == base_homes(REGIONS, 64)


def test_the_epoch_rises_only_when_homes_change() -> None:
    first = place(REGIONS, 64, out=set(), failover_regions={}, current=None)
    assert first is not None
    same = place(REGIONS, 64, out=set(), failover_regions={}, current=first)
    assert same == first
    failed = place(REGIONS, 64, out={"eu"}, failover_regions={"eu": "us"}, current=first)
    assert failed is not None and failed.epoch == 2
    assert "eu" not in failed.homes
    back = place(REGIONS, 64, out=set(), failover_regions={}, current=failed)
    assert back is not None and back.epoch == 3
    assert back.homes == first.homes


def test_the_epoch_never_goes_below_a_recorded_one() -> None:
    """A ConfigMap lost or reset to an old epoch: the next map is above what was published."""
    shard_map = place(REGIONS, 64, out=set(), failover_regions={}, current=None, min_epoch=7)
    assert shard_map is not None and shard_map.epoch == 8
    stale = ShardMap(epoch=3, homes=base_homes(REGIONS, 64))
    again = place(REGIONS, 64, out=set(), failover_regions={}, current=stale, min_epoch=7)
    assert again is not None and again.epoch == 8


def test_with_no_region_available_the_current_map_stands() -> None:
    current = ShardMap(epoch=4, homes=base_homes(REGIONS, 64))
    assert place(REGIONS, 64, out=set(REGIONS), failover_regions={}, current=current) is current
    assert place(REGIONS, 64, out=set(REGIONS), failover_regions={}, current=None) is None
    assert effective_homes(REGIONS, 64, out=set(REGIONS), failover_regions={}) is None


def test_a_published_map_round_trips_through_the_shared_codec() -> None:
    shard_map = place(REGIONS, 1024, out={"us"}, failover_regions={"us": "eu"}, current=None)
    assert shard_map is not None
    assert ShardMap.from_json(shard_map.to_json()) == shard_map
    assert shard_map.shards_per_region().keys() == {"ap", "eu"}
