"""Listing, linking and unlinking devices."""

from __future__ import annotations

import asyncio
import base64
import secrets

from chatconnect.bus.ports import Bus, DeviceRevoked, RateLimiter
from chatconnect.devices.config import DevicesConfig
from chatconnect.devices.domain.errors import (
    LinkCodeExpired,
    LinkCodeNotFound,
    LinkNotApproved,
    LinkNotFound,
    NotPrimaryDevice,
)
from chatconnect.devices.domain.models import DeviceRecord, LinkRequest
from chatconnect.devices.ports import DeviceStore
from chatconnect.keys.domain.models import DeviceKeys
from chatconnect.keys.domain.validation import KEY_BYTES, check_device_keys
from chatconnect.model import Clock, DeviceAddress, DeviceKind
from chatconnect.router.domain.notices import NoticeService
from chatconnect.runtime.errors import (
    DeviceNotFound,
    FieldInvalid,
    FieldMissing,
    LimitExceeded,
    RateLimited,
    UserNotFound,
)
from chatconnect.users.domain.models import DeviceSession, NewDevice
from chatconnect.users.domain.registration import check_registration_id, check_request_id
from chatconnect.users.domain.sessions import SessionIssuer, hash_secret

LINK_POLL_SECONDS = 0.05


class DeviceService:
    """The devices of one account, and how new ones join."""

    def __init__(
        self,
        *,
        store: DeviceStore,
        sessions: SessionIssuer,
        notices: NoticeService,
        bus: Bus,
        limiter: RateLimiter,
        config: DevicesConfig,
        prekey_limit: int,
        clock: Clock,
    ) -> None:
        self._store = store
        self._sessions = sessions
        self._notices = notices
        self._bus = bus
        self._limiter = limiter
        self._config = config
        self._prekey_limit = prekey_limit
        self._clock = clock

    async def list_devices(self, caller: DeviceAddress) -> list[DeviceRecord]:
        """The caller's account's devices, primary first."""
        return await self._store.list_devices(caller.user_id)

    async def begin_link(
        self, *, request_id: str, ephemeral_key: bytes, kind: DeviceKind, client_ip: str
    ) -> tuple[LinkRequest, str]:
        """Creates a pending link; returns it and the secret only the new device learns."""
        check_request_id(request_id)
        if len(ephemeral_key) != KEY_BYTES:
            raise FieldInvalid("ephemeral_public_key", f"must be {KEY_BYTES} bytes")
        if kind == DeviceKind.UNSPECIFIED:
            raise FieldMissing("kind")
        decision = await self._limiter.acquire(
            f"link:{client_ip}",
            rate_per_second=self._config.link_begins_per_minute / 60.0,
            burst=max(1, int(self._config.link_begins_per_minute)),
        )
        if not decision.allowed:
            raise RateLimited("ip", decision.retry_after_seconds)
        secret = secrets.token_urlsafe(32)
        code = base64.b32encode(secrets.token_bytes(10)).decode().rstrip("=")
        link = await self._store.create_link(
            LinkRequest(
                link_code=code,
                secret_hash=hash_secret(secret),
                request_id=request_id,
                ephemeral_key=ephemeral_key,
                kind=kind,
                expires_at=self._clock() + self._config.link_code_ttl_seconds,
            )
        )
        return link, secret

    async def approve_link(
        self, caller: DeviceAddress, *, request_id: str, link_code: str, provisioning: bytes
    ) -> int:
        """An existing device approves a link code; returns the new device's id."""
        check_request_id(request_id)
        if not link_code:
            raise FieldMissing("link_code")
        if not provisioning:
            raise FieldMissing("encrypted_provisioning_message")
        if len(provisioning) > self._config.max_provisioning_message_bytes:
            raise LimitExceeded(
                "encrypted_provisioning_message",
                setting="devices.max_provisioning_message_bytes",
                limit=self._config.max_provisioning_message_bytes,
                actual=len(provisioning),
            )
        link = await self._store.get_link(link_code=link_code)
        if link is None:
            raise LinkCodeNotFound("no pending link has this code; scan the QR code again")
        if link.expires_at <= self._clock():
            raise LinkCodeExpired("the link code expired; show a new QR code")
        approved = await self._store.approve_link(
            link_code,
            user_id=caller.user_id,
            request_id=request_id,
            provisioning=provisioning,
            max_devices=self._config.max_linked_devices,
            now=self._clock(),
        )
        assert approved.device_id is not None
        return approved.device_id

    async def await_approval(self, *, link_secret: str, wait_seconds: float) -> tuple[int, bytes]:
        """The new device waits for approval; returns its device id and the provisioning
        message."""
        link = await self._approved_link(link_secret, wait_seconds=wait_seconds)
        assert link.device_id is not None
        assert link.provisioning is not None
        return link.device_id, link.provisioning

    async def complete_link(
        self,
        *,
        request_id: str,
        link_secret: str,
        registration_id: int,
        keys: DeviceKeys,
        encrypted_name: bytes,
    ) -> DeviceSession:
        """The approved new device publishes its keys and becomes a device of the account."""
        check_request_id(request_id)
        check_registration_id(registration_id)
        link = await self._approved_link(link_secret, wait_seconds=0.0)
        user_id = link.approved_user_id
        assert user_id is not None
        identity_key = await self._store.identity_key(user_id)
        if identity_key is None:
            raise UserNotFound(user_id)
        keys = DeviceKeys(identity_key, keys.signed_prekey, keys.one_time_prekeys)
        check_device_keys(keys, prekey_limit=self._prekey_limit)
        incarnation = link.incarnation or secrets.token_hex(16)
        device = await self._store.complete_link(
            link.link_code,
            request_id=request_id,
            device=NewDevice(incarnation, registration_id, link.kind, keys, encrypted_name),
            now=self._clock(),
        )
        session = await self._sessions.issue(device, incarnation)
        await self._notices.device_list_changed(user_id)
        return session

    async def _approved_link(self, link_secret: str, *, wait_seconds: float) -> LinkRequest:
        if not link_secret:
            raise FieldMissing("link_secret")
        deadline = self._clock() + min(max(wait_seconds, 0.0), self._config.max_link_wait_seconds)
        secret_hash = hash_secret(link_secret)
        while True:
            link = await self._store.get_link(secret_hash=secret_hash)
            if link is None:
                raise LinkNotFound("no pending link has this secret")
            if link.expires_at <= self._clock():
                raise LinkCodeExpired("the link code expired; start again")
            if link.approved_user_id is not None:
                return link
            if self._clock() >= deadline:
                raise LinkNotApproved("not approved yet; call again")
            await asyncio.sleep(LINK_POLL_SECONDS)

    async def unlink(self, caller: DeviceAddress, *, request_id: str, device_id: int) -> None:
        """Unlinks a device: its tokens stop working and its connections close."""
        check_request_id(request_id)
        if device_id == 1:
            raise FieldInvalid(
                "device_id", "the primary device cannot be unlinked; delete the account instead"
            )
        if caller.device_id != 1 and caller.device_id != device_id:
            raise NotPrimaryDevice("only the primary device can unlink other devices")
        target = DeviceAddress(caller.user_id, device_id)
        if not await self._store.unlink(target):
            raise DeviceNotFound(caller.user_id, device_id)
        await self._bus.publish([DeviceRevoked(target)])
        await self._notices.device_list_changed(caller.user_id)
