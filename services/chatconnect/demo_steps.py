"""The group and presence calls `chatconnect demo` makes, through the public contract."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping

import grpc

from chatconnect.client import ChatClient
from chatconnect.client.account import RPC_TIMEOUT, Account
from chatconnect.common.v1 import common_pb2
from chatconnect.groups.v1 import groups_pb2
from chatconnect.groups.v1 import groups_service_pb2 as groups_pb
from chatconnect.groups.v1 import groups_service_pb2_grpc as groups_grpc
from chatconnect.presence.v1 import presence_pb2
from chatconnect.presence.v1 import presence_service_pb2 as presence_pb
from chatconnect.presence.v1 import presence_service_pb2_grpc as presence_grpc

WAIT_SECONDS = 10.0
"""How long a demo step waits for something to arrive."""


def state_account(state: Mapping[str, object], name: str) -> Account:
    """An account the demo registered earlier."""
    account = state[name]
    assert isinstance(account, Account)
    return account


async def create_group(target: str, owner: Account, member_user_ids: list[str]) -> str:
    """Creates a group owned by `owner` with the members; returns its id."""
    async with grpc.aio.insecure_channel(target) as channel:
        response = await groups_grpc.GroupsServiceStub(channel).CreateGroup(
            groups_pb.CreateGroupRequest(
                request_id=uuid.uuid4().hex,
                info=groups_pb2.GroupInfo(encrypted_title=b"demo group (sealed by clients)"),
                member_user_ids=member_user_ids,
            ),
            metadata=owner.metadata(),
            timeout=RPC_TIMEOUT,
        )
    assert not response.not_added, f"not added: {list(response.not_added)}"
    return response.group.group_id


async def receipt_summary(
    target: str, sender: Account, group_id: str, server_message_id: str
) -> groups_pb2.ReceiptSummary:
    """The sender's aggregated receipts of one group message."""
    async with grpc.aio.insecure_channel(target) as channel:
        response = await groups_grpc.GroupsServiceStub(channel).GetMessageReceiptSummary(
            groups_pb.GetMessageReceiptSummaryRequest(
                group_id=group_id, server_message_id=server_message_id
            ),
            metadata=sender.metadata(),
            timeout=RPC_TIMEOUT,
        )
    return response.summary


async def next_group_text(client: ChatClient, group_id: str) -> str:
    """The next message of the group the client could decrypt."""
    while True:
        item = await client.receive(WAIT_SECONDS)
        envelope = item.envelope
        if (
            envelope is not None
            and envelope.destination.group_id == group_id
            and envelope.type == common_pb2.ENVELOPE_TYPE_SENDER_KEY_CIPHERTEXT
        ):
            assert item.plaintext is not None, "the group message could not be decrypted"
            return item.text


class PresenceWatch:
    """An open presence stream following one user."""

    def __init__(self, stream: AsyncIterator[presence_pb.SubscribeResponse], user_id: str) -> None:
        self._stream = stream
        self._user_id = user_id

    async def next_state(self, state: int) -> presence_pb2.UserPresence:
        """Waits for the followed user's presence to be `state`."""

        async def wait() -> presence_pb2.UserPresence:
            async for frame in self._stream:
                presence = frame.presence
                if frame.HasField("presence") and (presence.user_id, presence.state) == (
                    self._user_id,
                    state,
                ):
                    return presence
            raise AssertionError("the presence stream ended")

        return await asyncio.wait_for(wait(), WAIT_SECONDS)


@contextlib.asynccontextmanager
async def watch_presence(
    target: str, watcher: Account, user_id: str
) -> AsyncIterator[PresenceWatch]:
    """`watcher` subscribes to the presence of `user_id` for the life of the block."""
    async with grpc.aio.insecure_channel(target) as channel:
        call = presence_grpc.PresenceServiceStub(channel).Subscribe(
            presence_pb.SubscribeRequest(
                subscription=presence_pb2.PresenceSubscription(user_ids=[user_id])
            ),
            metadata=watcher.metadata(),
        )
        try:
            yield PresenceWatch(call.__aiter__(), user_id)
        finally:
            call.cancel()
