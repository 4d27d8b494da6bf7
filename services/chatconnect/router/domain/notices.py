"""Notices the server itself puts into inboxes."""

from __future__ import annotations

from chatconnect.devices.ports import DeviceDirectory
from chatconnect.model import (
    Clock,
    Conversation,
    DeviceAddress,
    Envelope,
    EnvelopeType,
    Notice,
    NoticeType,
)
from chatconnect.router.config import RouterConfig
from chatconnect.router.domain.device_check import summaries
from chatconnect.router.domain.models import Delivery, PendingSend
from chatconnect.router.domain.sending import Deliverer, new_server_message_id


class NoticeService:
    """Tells devices about changes they must act on."""

    def __init__(
        self,
        *,
        directory: DeviceDirectory,
        deliverer: Deliverer,
        config: RouterConfig,
        clock: Clock,
    ) -> None:
        self._directory = directory
        self._deliverer = deliverer
        self._config = config
        self._clock = clock

    async def device_list_changed(self, user_id: str) -> None:
        """Every device of `user_id` learns its account's current device list."""
        devices = await self._directory.list_devices(user_id)
        if not devices:
            return
        now = self._clock()
        server_message_id = new_server_message_id()
        expire_time = now + self._config.retention_seconds
        envelope = Envelope(
            server_message_id=server_message_id,
            sequence=0,
            type=EnvelopeType.SERVER_NOTICE,
            sender=None,
            client_message_id="",
            destination=Conversation(user_id=user_id),
            content=b"",
            server_time=now,
            expire_time=expire_time,
            notice=Notice(NoticeType.DEVICE_LIST_CHANGED, user_id, summaries(devices)),
        )
        await self._deliverer.commit_and_push(
            PendingSend(
                None,
                "",
                server_message_id,
                now,
                expire_time,
                tuple(Delivery(DeviceAddress(user_id, d.device_id), envelope) for d in devices),
            )
        )
