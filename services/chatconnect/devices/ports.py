"""Storage ports of the devices service."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Sequence

from chatconnect.devices.domain.models import (
    DeviceRecord,
    LinkRequest,
    ReadMarker,
    Tombstone,
    TombstoneCursor,
)
from chatconnect.model import DeviceAddress
from chatconnect.router.domain.origins import MessageOrigin
from chatconnect.runtime.auth import DeviceSessions
from chatconnect.users.domain.models import NewDevice

USERS_PER_READ = 100
"""Users one bulk device read asks the store for (SQLite variables, CQL IN lists)."""


class DeviceDirectory(DeviceSessions, abc.ABC):
    """Read access to every account's devices; used by every service on its hot path."""

    @abc.abstractmethod
    async def list_devices(self, user_id: str) -> list[DeviceRecord]:
        """The user's devices in device id order; empty when the user does not exist."""

    async def list_devices_of(self, user_ids: Sequence[str]) -> dict[str, list[DeviceRecord]]:
        """The devices of many users at once (a group's members); users without devices
        are absent. Store adapters override this with a bounded number of bulk reads."""
        found = await asyncio.gather(*(self.list_devices(u) for u in dict.fromkeys(user_ids)))
        return {devices[0].user_id: devices for devices in found if devices}

    @abc.abstractmethod
    async def identity_key(self, user_id: str) -> bytes | None:
        """The account's identity key, or None when the user does not exist."""


class DeviceStore(DeviceDirectory):
    """Changes to the set of linked devices."""

    @abc.abstractmethod
    async def create_link(self, link: LinkRequest) -> LinkRequest:
        """Stores a pending link, or returns the one already stored for its request id
        and ephemeral key."""

    @abc.abstractmethod
    async def get_link(
        self, *, link_code: str = "", secret_hash: bytes = b""
    ) -> LinkRequest | None:
        """The pending link with this code or secret hash."""

    @abc.abstractmethod
    async def approve_link(
        self,
        link_code: str,
        *,
        user_id: str,
        request_id: str,
        provisioning: bytes,
        max_devices: int,
        now: float,
    ) -> LinkRequest:
        """Marks the link approved by `user_id` and reserves the new device id.

        Raises LinkAlreadyApproved if another request approved it, DeviceLimitReached if
        the account has `max_devices` devices besides the primary, counting links
        approved but not completed (and not expired at `now`).
        """

    @abc.abstractmethod
    async def complete_link(
        self, link_code: str, *, request_id: str, device: NewDevice, now: float
    ) -> DeviceAddress:
        """Creates the approved device (once; a repeat of `request_id` returns it again)."""

    @abc.abstractmethod
    async def unlink(self, device: DeviceAddress) -> bool:
        """Removes the device with its sessions, keys and inbox; False if it was gone."""

    @abc.abstractmethod
    async def touch(self, device: DeviceAddress, now: float) -> None:
        """Records that the device connected now."""


class ReadMarkerStore(abc.ABC):
    """Per-account read markers (tests/devices/test_sync_store_contract.py).

    Guarantee: a marker only moves forward in (read_through_time, server message id)
    order, atomically per marker, however many devices update it at once.
    """

    @abc.abstractmethod
    async def advance(self, user_id: str, markers: Sequence[ReadMarker]) -> list[ReadMarker]:
        """Moves each marker (at most one per conversation) forward where it is behind;
        returns the marker now stored for each conversation, in the order given."""

    @abc.abstractmethod
    async def list_markers(
        self, user_id: str, *, after_conversation_key: str, limit: int
    ) -> list[ReadMarker]:
        """Up to `limit` markers whose conversation key (devices.domain.models.
        conversation_key) sorts after `after_conversation_key`, in that order."""


class TombstoneStore(abc.ABC):
    """Per-account tombstones (tests/devices/test_sync_store_contract.py).

    Guarantees: one tombstone per (account, conversation, message) however often and from
    however many devices it is written, keeping its first delete time; FOR_EVERYONE
    replaces FOR_ME, never the other way; a tombstone is listed until it expires and never
    after.
    """

    @abc.abstractmethod
    async def put(self, tombstones: Sequence[Tombstone], *, now: float) -> list[Tombstone]:
        """Stores the tombstones (converging as above); returns the one now stored for
        each, in the order given."""

    @abc.abstractmethod
    async def list_tombstones(
        self, user_id: str, *, after: TombstoneCursor, limit: int, now: float
    ) -> list[Tombstone]:
        """Up to `limit` unexpired tombstones of the account after `after`, oldest first
        (by delete time, then conversation key, then message id)."""


class MessageOrigins(abc.ABC):
    """The router's record of who sent each retained message (router/domain/origins.py)."""

    @abc.abstractmethod
    async def find(
        self, server_message_ids: Sequence[str], *, now: float
    ) -> dict[str, MessageOrigin]:
        """The origins of those messages that exist and are retained at `now`, by id."""
