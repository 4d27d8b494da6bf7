"""Storage ports of the devices service."""

from __future__ import annotations

import abc

from chatconnect.devices.domain.models import DeviceRecord, LinkRequest
from chatconnect.model import DeviceAddress
from chatconnect.runtime.auth import DeviceSessions
from chatconnect.users.domain.models import NewDevice


class DeviceDirectory(DeviceSessions, abc.ABC):
    """Read access to every account's devices; used by every service on its hot path."""

    @abc.abstractmethod
    async def list_devices(self, user_id: str) -> list[DeviceRecord]:
        """The user's devices in device id order; empty when the user does not exist."""

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
