"""Storage port of the key directory."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from chatconnect.keys.domain.models import PreKey, PreKeyBundle, SignedPreKey
from chatconnect.model import DeviceAddress


class KeyStore(abc.ABC):
    """Signed and one-time prekeys per device."""

    @abc.abstractmethod
    async def set_signed_prekey(self, device: DeviceAddress, key: SignedPreKey) -> None:
        """Replaces the device's signed prekey."""

    @abc.abstractmethod
    async def add_prekeys(
        self, device: DeviceAddress, keys: Sequence[PreKey], *, max_stored: int
    ) -> int:
        """Adds one-time prekeys (ids already stored are ignored, at most `max_stored`
        kept); returns how many the device now has."""

    @abc.abstractmethod
    async def take_bundles(self, user_id: str, device_ids: Sequence[int]) -> list[PreKeyBundle]:
        """A bundle per existing device (all devices when `device_ids` is empty), each
        consuming one one-time prekey: no prekey is ever handed out twice."""

    @abc.abstractmethod
    async def count(self, device: DeviceAddress) -> int:
        """How many one-time prekeys the device has left."""
