"""A client that closes its side of the Connect stream (it signs off): every send it made
before is answered on the stream, in order, and then the stream ends with OK."""

from __future__ import annotations

import asyncio
import uuid

import grpc

from chatconnect.client import Account
from chatconnect.common.v1 import common_pb2
from chatconnect.gateway.v1 import gateway_pb2
from chatconnect.gateway.v1 import gateway_service_pb2 as gw
from chatconnect.gateway.v1 import gateway_service_pb2_grpc as gw_grpc
from chatconnect.router.v1 import router_pb2
from tests.conftest import Server


def _message_to(account: Account) -> router_pb2.OutgoingMessage:
    return router_pb2.OutgoingMessage(
        client_message_id=uuid.uuid4().hex,
        destination=common_pb2.ConversationRef(user_id=account.user_id),
        ciphertexts=[
            router_pb2.DeviceCiphertext(
                device=common_pb2.DeviceAddress(
                    user_id=account.user_id, device_id=account.device_id
                ),
                registration_id=account.keys.registration_id,
                type=common_pb2.ENVELOPE_TYPE_CIPHERTEXT,
                content=b"sealed",
            )
        ],
    )


async def _frames_until_the_end(
    server: Server, sender: Account, sends: list[router_pb2.OutgoingMessage]
) -> tuple[list[gw.ConnectResponse], grpc.StatusCode]:
    """Opens a stream, writes Hello and `sends`, closes the client's side at once, and
    reads every frame until the server ends the stream."""
    async with server.channel() as channel:
        call = gw_grpc.GatewayServiceStub(channel).Connect(metadata=sender.metadata())
        await call.write(
            gw.ConnectRequest(hello=gateway_pb2.Hello(kind=common_pb2.DEVICE_KIND_PHONE))
        )
        for message in sends:
            await call.write(gw.ConnectRequest(send=message))
        await call.done_writing()
        frames: list[gw.ConnectResponse] = []
        while (frame := await asyncio.wait_for(call.read(), 30)) is not grpc.aio.EOF:
            assert isinstance(frame, gw.ConnectResponse)
            frames.append(frame)
        return frames, await call.code()


async def test_closing_the_clients_side_ends_the_stream_after_every_send_is_answered(
    any_server: Server,
) -> None:
    sender, recipient = await any_server.register(), await any_server.register()
    sends = [_message_to(recipient) for _ in range(20)]
    frames, code = await _frames_until_the_end(any_server, sender, sends)
    assert code == grpc.StatusCode.OK
    answers = [f for f in frames if f.WhichOneof("frame") in ("sent", "send_failed")]
    assert [f.WhichOneof("frame") for f in answers] == ["sent"] * len(sends)
    assert [f.sent.client_message_id for f in answers] == [m.client_message_id for m in sends]


async def test_closing_the_clients_side_without_sending_ends_the_stream_at_once(
    any_server: Server,
) -> None:
    device = await any_server.register()
    frames, code = await _frames_until_the_end(any_server, device, [])
    assert code == grpc.StatusCode.OK
    assert frames[0].WhichOneof("frame") == "welcome"
    assert not [f for f in frames if f.WhichOneof("frame") in ("sent", "send_failed")]


# What the gateway runs for one open stream, besides gRPC's own handler task.
_PER_STREAM = (
    "_Sends._work",
    "GatewayServicer._read_frames",
    "GatewayServicer._run_delivery",
    "DeliveryLoop._pump",
)


def _tasks_serving_streams() -> list[asyncio.Task[object]]:
    """The gateway's tasks for open streams (the test server shares this event loop)."""
    return [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "") in _PER_STREAM
    ]


async def test_a_stream_that_sent_and_hung_up_leaves_no_task_behind(any_server: Server) -> None:
    sender, recipient = await any_server.register(), await any_server.register()
    async with any_server.channel() as channel:
        call = gw_grpc.GatewayServiceStub(channel).Connect(metadata=sender.metadata())
        await call.write(
            gw.ConnectRequest(hello=gateway_pb2.Hello(kind=common_pb2.DEVICE_KIND_PHONE))
        )
        for _ in range(5):
            await call.write(gw.ConnectRequest(send=_message_to(recipient)))
        answered = 0
        while answered < 5:
            frame = await asyncio.wait_for(call.read(), 30)
            assert isinstance(frame, gw.ConnectResponse)
            answered += frame.WhichOneof("frame") == "sent"
        assert _tasks_serving_streams(), "the stream's tasks are expected while it is open"
        call.cancel()
    for _ in range(100):
        if not _tasks_serving_streams():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"tasks left behind: {_tasks_serving_streams()}")
