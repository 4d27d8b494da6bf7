"""The messaging core end to end: send, fan-out, receipts, idempotency, order."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import grpc
import pytest

from chatconnect.client import Account, ChatError
from chatconnect.common.v1 import common_pb2
from chatconnect.errordetails.v1 import errordetails_pb2
from chatconnect.router.v1 import router_pb2
from chatconnect.router.v1 import router_service_pb2 as router_pb
from chatconnect.router.v1 import router_service_pb2_grpc as router_grpc

from .conftest import Server


async def test_send_and_receive(server: Server, clients) -> None:
    alice, bob = await server.register(), await server.register()
    a, b = await clients(alice), await clients(bob)
    result = await a.send_text(bob.user_id, "hello bob")
    got = await b.receive_message()
    assert got.text == "hello bob"
    assert got.envelope.server_message_id == result.server_message_id
    assert got.envelope.sender.user_id == alice.user_id
    assert got.envelope.sender.device_id == 1
    assert got.envelope.content != b"hello bob"  # the server only ever saw ciphertext
    assert not result.duplicate


async def test_fanout_reaches_every_recipient_device_and_senders_other_devices(
    server: Server, clients
) -> None:
    alice, bob = await server.register(), await server.register()
    alice_laptop = await server.link(alice)
    bob_laptop, bob_web = await server.link(bob), await server.link(bob)
    a, a2 = await clients(alice), await clients(alice_laptop)
    b, b2, b3 = await clients(bob), await clients(bob_laptop), await clients(bob_web)
    result = await a.send_text(bob.user_id, "to all of you")
    for device in (b, b2, b3, a2):
        got = await device.receive_message()
        assert got.text == "to all of you"
        assert got.envelope.server_message_id == result.server_message_id
    # The copy on Alice's laptop says which conversation it belongs to.
    assert got.envelope.destination.user_id == bob.user_id
    # The sending device gets no copy of its own message.
    with pytest.raises(TimeoutError):
        await a.receive_message(timeout=0.3)


async def test_delivery_and_read_receipts_reach_all_sender_devices(server: Server, clients) -> None:
    alice, bob = await server.register(), await server.register()
    alice_laptop = await server.link(alice)
    a, a2, b = await clients(alice), await clients(alice_laptop), await clients(bob)
    sent = await a.send_text(bob.user_id, "did you get this?")
    await b.receive_message()
    for device in (a, a2):
        receipt = await _next_receipt(device)
        assert receipt.type == common_pb2.RECEIPT_TYPE_DELIVERED
        assert list(receipt.server_message_ids) == [sent.server_message_id]
        assert receipt.by.user_id == bob.user_id
    await b.send_receipts(common_pb2.RECEIPT_TYPE_READ, [(alice.user_id, sent.server_message_id)])
    for device in (a, a2):
        receipt = await _next_receipt(device)
        assert receipt.type == common_pb2.RECEIPT_TYPE_READ
        assert list(receipt.server_message_ids) == [sent.server_message_id]


async def _next_receipt(client) -> common_pb2.Receipt:
    while True:
        item = await client.receive()
        if item.envelope is not None and item.envelope.type == common_pb2.ENVELOPE_TYPE_RECEIPT:
            return item.envelope.receipt


async def test_reconnect_resumes_from_cursor_without_loss_or_duplicates(
    server: Server, clients
) -> None:
    alice, bob = await server.register(), await server.register()
    a, b = await clients(alice), await clients(bob)
    for i in range(5):
        await a.send_text(bob.user_id, f"before {i}")
    assert [(await b.receive_message()).text for _ in range(5)] == [f"before {i}" for i in range(5)]
    await b.drop_connection()
    for i in range(5):
        await a.send_text(bob.user_id, f"after {i}")
    await b.connect()
    assert [(await b.receive_message()).text for _ in range(5)] == [f"after {i}" for i in range(5)]
    with pytest.raises(TimeoutError):
        await b.receive_message(timeout=0.3)
    assert b.connections == 2


async def test_unacknowledged_envelopes_are_redelivered_to_a_new_connection(
    server: Server, clients
) -> None:
    alice, bob = await server.register(), await server.register()
    a = await clients(alice)
    sent = await a.send_text(bob.user_id, "keep me until acked")
    async with server.channel() as channel:
        first = await _raw_items(server, channel, bob, count=1, ack=False)
        again = await _raw_items(server, channel, bob, count=1, ack=True)
        after_ack = await _raw_items(server, channel, bob, count=0, ack=False)
    assert first[0].envelope.server_message_id == sent.server_message_id
    assert again[0].envelope.server_message_id == sent.server_message_id
    assert again[0].envelope.sequence == first[0].envelope.sequence
    assert after_ack == []


async def _raw_items(server: Server, channel, account, *, count: int, ack: bool):
    """Opens a bare Connect stream, reads `count` items until InboxDrained, optionally acks."""
    from chatconnect.gateway.v1 import gateway_pb2
    from chatconnect.gateway.v1 import gateway_service_pb2 as gw
    from chatconnect.gateway.v1 import gateway_service_pb2_grpc as gw_grpc

    call = gw_grpc.GatewayServiceStub(channel).Connect(metadata=account.metadata())
    await call.write(gw.ConnectRequest(hello=gateway_pb2.Hello(kind=common_pb2.DEVICE_KIND_PHONE)))
    items = []
    while True:
        frame = await asyncio.wait_for(call.read(), 5)
        kind = frame.WhichOneof("frame")
        if kind in ("envelope", "gap"):
            items.append(frame)
        if kind == "drained":
            break
    assert len(items) == count
    if ack and items:
        ids = [
            f.envelope.server_message_id if f.WhichOneof("frame") == "envelope" else f.gap.gap_id
            for f in items
        ]
        await call.write(gw.ConnectRequest(ack=gateway_pb2.Ack(ids=ids)))
        await asyncio.sleep(0.2)
    await call.done_writing()
    call.cancel()
    return items


def _outgoing(to_user: str, devices, cmid: str, text: bytes = b"x") -> router_pb2.OutgoingMessage:
    return router_pb2.OutgoingMessage(
        client_message_id=cmid,
        destination=common_pb2.ConversationRef(user_id=to_user),
        ciphertexts=[
            router_pb2.DeviceCiphertext(
                device=common_pb2.DeviceAddress(user_id=user, device_id=device),
                registration_id=registration_id,
                type=common_pb2.ENVELOPE_TYPE_CIPHERTEXT,
                content=text,
            )
            for user, device, registration_id in devices
        ],
    )


async def test_concurrent_retries_of_one_send_store_it_once(server: Server, clients) -> None:
    alice, bob = await server.register(), await server.register()
    b = await clients(bob)
    message = _outgoing(bob.user_id, [(bob.user_id, 1, bob.keys.registration_id)], "retry-me")
    async with server.channel() as channel:
        stub = router_grpc.RouterServiceStub(channel)
        results = await asyncio.gather(
            *[
                stub.SendMessage(
                    router_pb.SendMessageRequest(message=message), metadata=alice.metadata()
                )
                for _ in range(20)
            ]
        )
    ids = {r.result.server_message_id for r in results}
    assert len(ids) == 1
    assert sum(not r.result.duplicate for r in results) == 1
    # The same client message id over the stream, after all that, is a duplicate too.
    a = await clients(alice)
    again = await a.send(message)
    assert again.duplicate and again.server_message_id in ids
    await b.receive()
    with pytest.raises(TimeoutError):
        await b.receive(timeout=0.3)


async def _retry_after(
    server: Server, change: Callable[[Account], Awaitable[object]]
) -> grpc.StatusCode:
    """Alice sends to Bob, `change(bob)` runs, and Alice retries the same message: the
    retry must be answered with the first attempt's result. Returns the status a new
    message to Bob gets after that."""
    alice, bob = await server.register(), await server.register()
    to_bob_phone = [(bob.user_id, 1, bob.keys.registration_id)]
    async with server.channel() as channel:
        stub = router_grpc.RouterServiceStub(channel)
        request = router_pb.SendMessageRequest(message=_outgoing(bob.user_id, to_bob_phone, "a"))
        first = await stub.SendMessage(request, metadata=alice.metadata())
        await change(bob)
        again = await stub.SendMessage(request, metadata=alice.metadata())
        assert again.result.duplicate
        assert again.result.server_message_id == first.result.server_message_id
        fresh = router_pb.SendMessageRequest(message=_outgoing(bob.user_id, to_bob_phone, "b"))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.SendMessage(fresh, metadata=alice.metadata())
        return refused.value.code()


async def test_a_retry_is_answered_as_made_after_the_recipients_devices_changed(
    any_server: Server,
) -> None:
    """The answer to the first attempt was lost, and Bob linked a laptop before the retry:
    the retry is the same message, already stored for the phone, not a stale device
    list."""
    refused = await _retry_after(any_server, any_server.link)
    assert refused == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.settings(router={"sends_per_second": 0.01, "send_burst": 1})
async def test_a_retry_is_answered_as_made_when_the_sender_is_over_its_rate(
    any_server: Server,
) -> None:
    async def nothing(_: Account) -> None:
        return None

    refused = await _retry_after(any_server, nothing)
    assert refused == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_resend_after_reconnect_is_deduplicated(server: Server, clients) -> None:
    alice, bob = await server.register(), await server.register()
    a, b = await clients(alice), await clients(bob)
    cmid = uuid.uuid4().hex
    first = await a.send_text(bob.user_id, "once", client_message_id=cmid)
    await a.drop_connection()
    await a.connect()
    second = await a.send_text(bob.user_id, "once", client_message_id=cmid)
    assert second.duplicate and second.server_message_id == first.server_message_id
    assert (await b.receive_message()).text == "once"
    with pytest.raises(TimeoutError):
        await b.receive_message(timeout=0.3)


async def test_concurrent_senders_keep_their_own_order(server: Server, clients) -> None:
    bob = await server.register()
    senders = [await server.register() for _ in range(4)]
    b = await clients(bob)
    connected = [await clients(s) for s in senders]
    per_sender = 25

    async def send_all(index: int) -> None:
        for i in range(per_sender):
            await connected[index].send_text(bob.user_id, f"{index}:{i}")

    await asyncio.gather(*(send_all(i) for i in range(len(senders))))
    received = [await b.receive_message() for _ in range(per_sender * len(senders))]
    sequences = [r.envelope.sequence for r in received]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    for index in range(len(senders)):
        mine = [int(r.text.split(":")[1]) for r in received if r.text.startswith(f"{index}:")]
        assert mine == list(range(per_sender))


async def test_stale_device_list_is_rejected_with_the_current_list(server: Server, clients) -> None:
    alice, bob = await server.register(), await server.register()
    bob_laptop = await server.link(bob)
    a = await clients(alice)
    message = _outgoing(bob.user_id, [(bob.user_id, 1, bob.keys.registration_id)], "stale")
    with pytest.raises(ChatError) as raised:
        await a.send(message)
    error = raised.value
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.reason == "DEVICE_LIST_MISMATCH"
    failure = error.detail(errordetails_pb2.DeviceListMismatchFailure)
    (mismatch,) = failure.mismatches
    assert mismatch.user_id == bob.user_id
    assert list(mismatch.missing_device_ids) == [bob_laptop.device_id]
    assert sorted(d.device_id for d in mismatch.current_devices) == [1, bob_laptop.device_id]
    # The SDK refreshes its device list from the error and the retry reaches both devices.
    b2 = await clients(bob_laptop)
    await a.send_text(bob.user_id, "now for both")
    assert (await b2.receive_message()).text == "now for both"


async def test_note_to_self_reaches_own_other_devices(server: Server, clients) -> None:
    alice = await server.register()
    laptop = await server.link(alice)
    a, a2 = await clients(alice), await clients(laptop)
    await a.send_text(alice.user_id, "remember the milk")
    assert (await a2.receive_message()).text == "remember the milk"
