"""The shard map: which region is home to each virtual shard, under an epoch.

Users hash to a fixed number of virtual shards; the operator assigns shards to home
regions and publishes the map (a ConfigMap the services mount as a file). Every change
of assignment raises the epoch, so a write routed by an older map can be recognised and
refused (fencing) instead of landing in a region that no longer owns the shard.

The JSON form is shared by the operator (writer) and the services (readers):

    {"epoch": 7, "shards": 1024,
     "homes": [[0, 511, "eu-west"], [512, 1023, "us-east"]]}

`homes` is run-length encoded: inclusive shard ranges in order, covering every shard
exactly once, so a 65,536-shard map stays a few hundred bytes when regions own ranges.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass

MAX_SHARDS = 65_536
"""Upper bound on virtual shards (the CRD enforces the same)."""


class ShardMapInvalid(ValueError):
    """A shard map document is malformed or inconsistent."""


def shard_of(user_id: str, shard_count: int) -> int:
    """The virtual shard of a user: a stable hash of the id, the same in every process.

    BLAKE2b rather than Python's `hash` because the latter is salted per process.
    """
    digest = hashlib.blake2b(user_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shard_count


@dataclass(frozen=True)
class ShardMap:
    """An assignment of every virtual shard to a home region."""

    epoch: int
    """Raised by one on every change of assignment; never goes down."""
    homes: tuple[str, ...]
    """The home region of each shard, indexed by shard number."""

    @property
    def shard_count(self) -> int:
        """How many virtual shards there are."""
        return len(self.homes)

    def home_of_shard(self, shard: int) -> str:
        """The region that owns `shard`."""
        return self.homes[shard]

    def home_of_user(self, user_id: str) -> str:
        """The region that owns the shard of `user_id`."""
        return self.homes[shard_of(user_id, self.shard_count)]

    def shards_per_region(self) -> dict[str, int]:
        """How many shards each region owns (regions owning none are absent)."""
        return dict(sorted(Counter(self.homes).items()))

    def to_json(self) -> str:
        """The shared JSON form (see the module docstring)."""
        runs: list[list[int | str]] = []
        for shard, region in enumerate(self.homes):
            if runs and runs[-1][2] == region:
                runs[-1][1] = shard
            else:
                runs.append([shard, shard, region])
        return json.dumps(
            {"epoch": self.epoch, "shards": self.shard_count, "homes": runs},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> ShardMap:
        """Parses the shared JSON form; ShardMapInvalid names what is wrong."""
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise ShardMapInvalid(f"not JSON: {error}") from error
        if not isinstance(document, dict):
            raise ShardMapInvalid("expected an object with epoch, shards and homes")
        epoch, count, runs = document.get("epoch"), document.get("shards"), document.get("homes")
        if not isinstance(epoch, int) or epoch < 0:
            raise ShardMapInvalid("epoch must be a non-negative integer")
        if not isinstance(count, int) or not 1 <= count <= MAX_SHARDS:
            raise ShardMapInvalid(f"shards must be an integer from 1 to {MAX_SHARDS}")
        if not isinstance(runs, list):
            raise ShardMapInvalid("homes must be a list of [first, last, region]")
        homes: list[str] = []
        for run in runs:
            if (
                not isinstance(run, list)
                or len(run) != 3
                or not all(isinstance(bound, int) for bound in run[:2])
                or not isinstance(run[2], str)
                or not run[2]
            ):
                raise ShardMapInvalid(f"bad range {run!r}: expected [first, last, region]")
            first, last, region = run
            if first != len(homes) or last < first:
                raise ShardMapInvalid(f"range {run!r} leaves a gap or overlaps the previous one")
            homes.extend([region] * (last - first + 1))
        if len(homes) != count:
            raise ShardMapInvalid(f"homes cover {len(homes)} shards, expected {count}")
        return cls(epoch=epoch, homes=tuple(homes))
