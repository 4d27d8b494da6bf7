"""The ephemeral presence store: which devices are connected, and last seen.

Online state is a lease: a device stays online until `ttl_seconds` after its last
heartbeat, so a device whose gateway crashed goes offline by itself within the lease.
Every adapter passes tests/presence/test_store_contract.py.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from chatconnect.model import DeviceAddress, DeviceKind
from chatconnect.presence.domain.models import PresenceState, UserPresence


class PresenceStore(abc.ABC):
    """Per-device online leases and per-user last seen."""

    @abc.abstractmethod
    async def heartbeat(
        self,
        device: DeviceAddress,
        kind: DeviceKind,
        state: PresenceState,
        now: float,
        *,
        ttl_seconds: float,
    ) -> bool:
        """Marks the device `state` (ONLINE or AWAY) until `now + ttl_seconds`; True when
        that changes what others see (it was offline, its lease had run out, or its state
        differs)."""

    @abc.abstractmethod
    async def went_offline(self, device: DeviceAddress, now: float) -> bool:
        """The device disconnected: ends its lease and records `now` as last seen; True
        when it was online."""

    @abc.abstractmethod
    async def read(self, user_ids: Sequence[str], now: float) -> list[UserPresence]:
        """The presence of each user, in the order asked. A device whose lease ran out is
        offline, and its last heartbeat counts as last seen."""
