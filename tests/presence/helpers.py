"""Helpers for the presence end-to-end tests: raw Connect streams with a chosen device
kind, Subscribe streams that collect frames, and error reading."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from chatconnect.client import Account, ChatError
from chatconnect.common.v1 import common_pb2
from chatconnect.errordetails.v1 import errordetails_pb2
from chatconnect.gateway.v1 import gateway_pb2
from chatconnect.gateway.v1 import gateway_service_pb2 as gw
from chatconnect.gateway.v1 import gateway_service_pb2_grpc as gw_grpc
from chatconnect.presence.v1 import presence_pb2 as p
from chatconnect.presence.v1 import presence_service_pb2 as pb
from chatconnect.presence.v1 import presence_service_pb2_grpc as pb_grpc
from tests.conftest import Server

DOMAIN = "presence.chatconnect"
PHONE, WEB, DESKTOP = (
    common_pb2.DEVICE_KIND_PHONE,
    common_pb2.DEVICE_KIND_WEB,
    common_pb2.DEVICE_KIND_DESKTOP,
)
ONLINE, AWAY, OFFLINE, HIDDEN = (
    p.PRESENCE_STATE_ONLINE,
    p.PRESENCE_STATE_AWAY,
    p.PRESENCE_STATE_OFFLINE,
    p.PRESENCE_STATE_UNSPECIFIED,
)


def rid() -> str:
    return uuid.uuid4().hex


def stub(channel: grpc.aio.Channel) -> pb_grpc.PresenceServiceStub:
    return pb_grpc.PresenceServiceStub(channel)


class Connection:
    """A raw GatewayService.Connect stream of one device."""

    def __init__(self, channel: grpc.aio.Channel, account: Account, kind: int) -> None:
        self._requests: asyncio.Queue[gw.ConnectRequest | None] = asyncio.Queue()
        self._requests.put_nowait(gw.ConnectRequest(hello=gateway_pb2.Hello(kind=kind)))  # type: ignore[arg-type]
        self.call = gw_grpc.GatewayServiceStub(channel).Connect(
            self._iterate(), metadata=account.metadata()
        )

    async def _iterate(self) -> AsyncIterator[gw.ConnectRequest]:
        while True:
            item = await self._requests.get()
            if item is None:
                return
            yield item

    async def welcomed(self) -> None:
        frame = await asyncio.wait_for(self.call.read(), 10)
        assert frame.WhichOneof("frame") == "welcome", frame

    def finish(self) -> None:
        """Closes the client's side of the stream, as a client that signs off does."""
        self._requests.put_nowait(None)

    def close(self) -> None:
        """Hangs up (the client closes its side at once)."""
        self.call.cancel()


@contextlib.asynccontextmanager
async def connected(
    server: Server, account: Account, kind: int = PHONE
) -> AsyncIterator[Connection]:
    async with server.channel() as channel:
        connection = Connection(channel, account, kind)
        await connection.welcomed()
        try:
            yield connection
        finally:
            connection.close()


class Watch:
    """A Subscribe stream whose frames are collected in the background."""

    def __init__(self, channel: grpc.aio.Channel, account: Account, request: pb.SubscribeRequest):
        self.call = stub(channel).Subscribe(request, metadata=account.metadata())
        self.frames: list[pb.SubscribeResponse] = []
        self._arrived = asyncio.Condition()
        self.error: grpc.aio.AioRpcError | None = None
        self._cursor = 0
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        try:
            async for frame in self.call:
                async with self._arrived:
                    self.frames.append(frame)
                    self._arrived.notify_all()
        except grpc.aio.AioRpcError as exc:
            self.error = exc
        finally:
            async with self._arrived:
                self._arrived.notify_all()

    async def wait_for(
        self, match: Callable[[pb.SubscribeResponse], bool], timeout: float = 5.0
    ) -> pb.SubscribeResponse:
        """The first frame after the last one matched that matches (waiting for it)."""
        deadline = time.monotonic() + timeout
        async with self._arrived:
            while True:
                for index in range(self._cursor, len(self.frames)):
                    if match(self.frames[index]):
                        self._cursor = index + 1
                        return self.frames[index]
                if self._task.done():
                    raise AssertionError(f"stream ended ({self.error!r}); frames: {self.frames}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching frame in {timeout}s; frames: {self.frames}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), left)

    async def presence(
        self, user_id: str, match: Callable[[p.UserPresence], bool], timeout: float = 5.0
    ) -> p.UserPresence:
        frame = await self.wait_for(
            lambda f: (
                f.WhichOneof("event") == "presence"
                and f.presence.user_id == user_id
                and match(f.presence)
            ),
            timeout,
        )
        return frame.presence

    def presences(self, user_id: str) -> list[p.UserPresence]:
        return [
            f.presence
            for f in self.frames
            if f.WhichOneof("event") == "presence" and f.presence.user_id == user_id
        ]

    def of(self, kind: str) -> list[Any]:
        return [getattr(f, kind) for f in self.frames if f.WhichOneof("event") == kind]

    async def ended(self, timeout: float = 5.0) -> grpc.aio.AioRpcError | None:
        await asyncio.wait_for(asyncio.shield(self._task), timeout)
        return self.error

    def close(self) -> None:
        self.call.cancel()


@contextlib.asynccontextmanager
async def watching(
    server: Server,
    account: Account,
    user_ids: list[str] = (),  # type: ignore[assignment]
    conversations: list[common_pb2.ConversationRef] = (),  # type: ignore[assignment]
) -> AsyncIterator[Watch]:
    request = pb.SubscribeRequest(
        subscription=p.PresenceSubscription(user_ids=user_ids, conversations=conversations)
    )
    async with server.channel() as channel:
        watch = Watch(channel, account, request)
        await watch.wait_for(lambda f: f.WhichOneof("event") == "started")
        try:
            yield watch
        finally:
            watch.close()


def device_states(presence: p.UserPresence) -> list[tuple[int, int, int]]:
    return [(d.device_id, d.kind, d.state) for d in presence.devices]


async def fails(call: object) -> ChatError:
    """The error of a call that must fail, with ErrorInfo in the presence domain."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    return error_of(raised.value)


def error_of(exc: grpc.aio.AioRpcError) -> ChatError:
    error = ChatError.from_rpc(exc)
    info = error.detail(error_details_pb2.ErrorInfo)
    assert info is not None and info.domain == DOMAIN, exc
    return error


def limit_of(error: ChatError) -> tuple[str, int, int]:
    detail = error.detail(errordetails_pb2.LimitExceeded)
    assert detail is not None, error
    return detail.setting, detail.limit, detail.actual


def one_to_one(user_id: str) -> common_pb2.ConversationRef:
    return common_pb2.ConversationRef(user_id=user_id)


def group(group_id: str) -> common_pb2.ConversationRef:
    return common_pb2.ConversationRef(group_id=group_id)
