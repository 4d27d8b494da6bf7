"""The key directory's operations."""

from __future__ import annotations

from chatconnect.bus.ports import RateLimiter
from chatconnect.devices.ports import DeviceDirectory
from chatconnect.keys.config import KeysConfig
from chatconnect.keys.domain.models import PreKey, PreKeyBundle, SignedPreKey
from chatconnect.keys.domain.validation import check_prekeys, check_signed_prekey
from chatconnect.keys.ports import KeyStore
from chatconnect.model import DeviceAddress
from chatconnect.runtime.errors import DeviceNotFound, FieldMissing, RateLimited, UserNotFound
from chatconnect.users.domain.registration import check_request_id


class KeyDirectory:
    """Uploads and fetches of public prekeys."""

    def __init__(
        self,
        *,
        store: KeyStore,
        directory: DeviceDirectory,
        limiter: RateLimiter,
        config: KeysConfig,
    ) -> None:
        self._store = store
        self._directory = directory
        self._limiter = limiter
        self._config = config

    async def upload(
        self,
        device: DeviceAddress,
        *,
        request_id: str,
        signed_prekey: SignedPreKey | None,
        prekeys: tuple[PreKey, ...],
    ) -> int:
        """Stores new keys of the caller's device; returns its one-time prekey count."""
        check_request_id(request_id)
        check_prekeys(prekeys, limit=self._config.max_prekeys_per_upload)
        if signed_prekey is not None:
            identity_key = await self._directory.identity_key(device.user_id)
            if identity_key is None:
                raise UserNotFound(device.user_id)
            check_signed_prekey(identity_key, signed_prekey)
            await self._store.set_signed_prekey(device, signed_prekey)
        if not prekeys:
            return await self._store.count(device)
        return await self._store.add_prekeys(
            device, prekeys, max_stored=self._config.max_prekeys_stored
        )

    async def bundles(
        self, caller: DeviceAddress, user_id: str, device_ids: tuple[int, ...]
    ) -> list[PreKeyBundle]:
        """Bundles for a user's devices, consuming one one-time prekey each."""
        if not user_id:
            raise FieldMissing("user_id")
        decision = await self._limiter.acquire(
            f"bundles:{caller}",
            rate_per_second=self._config.bundle_fetches_per_minute / 60.0,
            burst=self._config.bundle_fetches_per_minute,
        )
        if not decision.allowed:
            raise RateLimited("device", decision.retry_after_seconds)
        devices = {d.device_id for d in await self._directory.list_devices(user_id)}
        if not devices:
            raise UserNotFound(user_id)
        for device_id in device_ids:
            if device_id not in devices:
                raise DeviceNotFound(user_id, device_id)
        # Checked before taking, so no one-time prekey is consumed by a failing request.
        return await self._store.take_bundles(user_id, device_ids or tuple(sorted(devices)))

    async def count(self, device: DeviceAddress) -> int:
        """The caller device's one-time prekeys left."""
        return await self._store.count(device)
