"""The shard map's JSON form, shared by the operator (writer) and services (readers)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from chatconnect.sharding.shardmap import ShardMap, ShardMapInvalid, shard_of


def test_a_map_round_trips_through_json_in_runs() -> None:
    shard_map = ShardMap(epoch=7, homes=("eu", "eu", "us", "us", "us", "eu"))
    text = shard_map.to_json()
    assert json.loads(text)["homes"] == [[0, 1, "eu"], [2, 4, "us"], [5, 5, "eu"]]
    assert ShardMap.from_json(text) == shard_map
    assert shard_map.shards_per_region() == {"eu": 3, "us": 3}


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ("not json", "not JSON"),
        ("[]", "expected an object"),
        ('{"epoch": -1, "shards": 2, "homes": [[0, 1, "eu"]]}', "epoch"),
        ('{"epoch": 1, "shards": 0, "homes": []}', "shards must be"),
        ('{"epoch": 1, "shards": 70000, "homes": [[0, 69999, "eu"]]}', "shards must be"),
        ('{"epoch": 1, "shards": 4, "homes": [[0, 1, "eu"], [3, 3, "us"]]}', "gap"),
        ('{"epoch": 1, "shards": 4, "homes": [[0, 2, "eu"], [2, 3, "us"]]}', "overlaps"),
        ('{"epoch": 1, "shards": 4, "homes": [[0, 2, "eu"]]}', "cover 3 shards"),
        ('{"epoch": 1, "shards": 2, "homes": [[0, 1, ""]]}', "bad range"),
        ('{"epoch": 1, "shards": 2, "homes": {"eu": 2}}', "homes must be a list"),
    ],
)
def test_a_malformed_map_is_refused_with_the_reason(document: str, complaint: str) -> None:
    with pytest.raises(ShardMapInvalid, match=complaint):
        ShardMap.from_json(document)


def test_users_hash_to_stable_shards_spread_evenly() -> None:
    shards = [shard_of(f"user-{n}", 64) for n in range(64_000)]
    assert shard_of("user-1", 64) == shards[1]  # stable across calls (and processes)
    counts = Counter(shards)
    assert set(counts) == set(range(64))
    assert max(counts.values()) < 1.15 * 1000 and min(counts.values()) > 0.85 * 1000


def test_a_user_is_homed_where_the_map_says() -> None:
    shard_map = ShardMap(epoch=1, homes=tuple("eu" if s < 8 else "us" for s in range(16)))
    for user in (f"u{n}" for n in range(50)):
        expected = "eu" if shard_of(user, 16) < 8 else "us"
        assert shard_map.home_of_user(user) == expected
