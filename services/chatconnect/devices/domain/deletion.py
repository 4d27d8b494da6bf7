"""Deleting messages for me or for everyone, as tombstones every device of every affected
account syncs, and never loses to a late sync.

Who may delete what is checked against the router's record of each message
(`MessageOrigins`): a caller who was not in the message's conversation learns nothing about
it (MESSAGE_NOT_FOUND, as for an id that never existed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from chatconnect.devices.config import DevicesConfig
from chatconnect.devices.domain.errors import (
    DeleteWindowPassed,
    MessageNotFound,
    NotGroupAdmin,
    NotMessageSender,
    TooManyMessages,
)
from chatconnect.devices.domain.models import DeleteScope, Tombstone, TombstoneCursor
from chatconnect.devices.domain.paging import (
    decode_tombstone_token,
    encode_tombstone_token,
    page_size,
)
from chatconnect.devices.domain.validation import check_conversation, check_id
from chatconnect.devices.ports import MessageOrigins, TombstoneStore
from chatconnect.groups.domain.models import GroupMembership
from chatconnect.groups.ports import GroupDirectory
from chatconnect.model import Clock, Conversation, DeviceAddress, NoticeType
from chatconnect.router.domain.notices import NoticeService
from chatconnect.router.domain.origins import MessageOrigin
from chatconnect.runtime.errors import FieldMissing
from chatconnect.users.domain.registration import check_request_id


class DeletionService:
    """DeleteMessages and ListTombstones."""

    def __init__(
        self,
        *,
        tombstones: TombstoneStore,
        origins: MessageOrigins,
        groups: GroupDirectory,
        notices: NoticeService,
        config: DevicesConfig,
        retention_seconds: int,
        clock: Clock,
    ) -> None:
        self._tombstones = tombstones
        self._origins = origins
        self._groups = groups
        self._notices = notices
        self._config = config
        self._retention = retention_seconds
        self._clock = clock

    async def delete(
        self,
        caller: DeviceAddress,
        *,
        request_id: str,
        conversation: Conversation,
        server_message_ids: Sequence[str],
        scope: DeleteScope,
    ) -> list[Tombstone]:
        """Deletes the messages; returns the caller's account's tombstones for them. All
        or nothing: one message the caller may not delete fails the request unchanged."""
        check_request_id(request_id)
        check_conversation(conversation, "conversation", self._config)
        ids = self._check_ids(server_message_ids)
        if scope == DeleteScope.UNSPECIFIED:
            raise FieldMissing("scope")
        now = self._clock()
        origins = await self._origins.find(ids, now=now)
        membership = await self._membership(conversation)
        for message_id in ids:
            origin = origins.get(message_id)
            if origin is None or not _visible(origin, caller.user_id, conversation, membership):
                raise MessageNotFound(message_id)
            if scope == DeleteScope.FOR_EVERYONE:
                self._check_may_delete_for_everyone(origin, caller, membership, now=now)
        accounts = self._affected_accounts(caller, conversation, scope, membership)
        # The caller's account first: its tombstones are the answer; then the others in
        # bounded batches (a large group is thousands of accounts).
        stored = await self._write(
            caller, [caller.user_id], ids, origins, scope, now=now, except_device=caller
        )
        others = [a for a in accounts if a != caller.user_id]
        size = self._config.sync_batch_size
        for start in range(0, len(others), size):
            batch = others[start : start + size]
            await self._write(caller, batch, ids, origins, scope, now=now, except_device=None)
        return stored

    def _check_ids(self, server_message_ids: Sequence[str]) -> list[str]:
        if not server_message_ids:
            raise FieldMissing("server_message_ids")
        limit = self._config.max_messages_per_delete
        if len(server_message_ids) > limit:
            raise TooManyMessages(
                "server_message_ids",
                setting="devices.max_messages_per_delete",
                limit=limit,
                actual=len(server_message_ids),
            )
        for index, message_id in enumerate(server_message_ids):
            check_id(message_id, f"server_message_ids[{index}]", self._config)
        return list(dict.fromkeys(server_message_ids))

    async def _membership(self, conversation: Conversation) -> GroupMembership | None:
        if not conversation.group_id:
            return None
        return await self._groups.membership(conversation.group_id)

    def _check_may_delete_for_everyone(
        self,
        origin: MessageOrigin,
        caller: DeviceAddress,
        membership: GroupMembership | None,
        *,
        now: float,
    ) -> None:
        message_id = origin.server_message_id
        if membership is not None:
            role = membership.role_of(caller.user_id)
            if role is not None and role.is_admin:
                return  # admins moderate: any message of the group, while it is retained
            if origin.sender.user_id != caller.user_id:
                raise NotGroupAdmin(message_id)
        elif origin.sender.user_id != caller.user_id:
            raise NotMessageSender(message_id)
        window = self._config.delete_for_everyone_window_seconds
        if now - origin.server_time > window:
            raise DeleteWindowPassed(message_id, window)

    def _affected_accounts(
        self,
        caller: DeviceAddress,
        conversation: Conversation,
        scope: DeleteScope,
        membership: GroupMembership | None,
    ) -> list[str]:
        accounts = [caller.user_id]
        if scope == DeleteScope.FOR_EVERYONE:
            # 1:1: the caller sent every message (checked), so the other user received it.
            accounts += membership.member_ids if membership is not None else [conversation.user_id]
        return list(dict.fromkeys(accounts))

    async def _write(
        self,
        caller: DeviceAddress,
        accounts: Sequence[str],
        ids: Sequence[str],
        origins: Mapping[str, MessageOrigin],
        scope: DeleteScope,
        *,
        now: float,
        except_device: DeviceAddress | None,
    ) -> list[Tombstone]:
        tombstones = []
        for account in accounts:
            for message_id in ids:
                seen_as = origins[message_id].conversation_of(account)
                assert seen_as is not None  # every account here took part in the message
                tombstones.append(
                    Tombstone(
                        user_id=account,
                        conversation=seen_as,
                        server_message_id=message_id,
                        scope=scope,
                        delete_time=now,
                        deleted_by=caller,
                        expires_at=now + self._retention,
                    )
                )
        stored = await self._tombstones.put(tombstones, now=now)
        # Told on every accepted request, even when every tombstone existed already: the
        # store cannot tell a retry of a request that failed before telling from a repeat.
        await self._notices.own_account_changed(
            NoticeType.TOMBSTONES_CHANGED, accounts, except_device=except_device
        )
        return stored

    async def list_tombstones(
        self,
        caller: DeviceAddress,
        *,
        requested_page_size: int,
        page_token: str,
        since_time: float,
    ) -> tuple[list[Tombstone], str]:
        """One page of the account's unexpired tombstones, oldest first, from the page
        token or else from `since_time` (inclusive); and the next page's token."""
        limit = page_size(
            requested_page_size,
            default=self._config.tombstone_page_size,
            maximum=self._config.max_tombstone_page_size,
        )
        # Every stored conversation key is non-empty, so this cursor starts at since_time.
        after = (
            decode_tombstone_token(page_token)
            if page_token
            else TombstoneCursor(since_time, "", "")
        )
        found = await self._tombstones.list_tombstones(
            caller.user_id, after=after, limit=limit + 1, now=self._clock()
        )
        page = found[:limit]
        more = len(found) > limit
        return page, encode_tombstone_token(page[-1].cursor) if more else ""


def _visible(
    origin: MessageOrigin,
    user_id: str,
    conversation: Conversation,
    membership: GroupMembership | None,
) -> bool:
    """Whether `user_id` took part in the message, in the conversation the request names."""
    if conversation.group_id:
        return (
            membership is not None
            and origin.destination.group_id == conversation.group_id
            and (membership.role_of(user_id) is not None or origin.sender.user_id == user_id)
        )
    return not origin.destination.group_id and origin.conversation_of(user_id) == conversation
