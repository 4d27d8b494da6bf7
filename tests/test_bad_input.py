"""Bad input on the send path, bad credentials and acting for someone else.

Every rejection is checked as a client sees it (status code, ErrorInfo reason and domain,
error details), then that nothing was stored (the inboxes stay empty, a connected client
receives nothing), and then that the server still serves a good request.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.rpc import error_details_pb2

from chatconnect.client import Account, ChatError
from chatconnect.common.v1 import common_pb2
from chatconnect.devices.v1 import devices_service_pb2 as devices_pb
from chatconnect.devices.v1 import devices_service_pb2_grpc as devices_grpc
from chatconnect.errordetails.v1 import errordetails_pb2
from chatconnect.gateway.v1 import gateway_pb2
from chatconnect.gateway.v1 import gateway_service_pb2 as gw
from chatconnect.gateway.v1 import gateway_service_pb2_grpc as gw_grpc
from chatconnect.router.v1 import router_pb2
from chatconnect.router.v1 import router_service_pb2 as router_pb
from chatconnect.router.v1 import router_service_pb2_grpc as router_grpc
from chatconnect.users.v1 import users_service_pb2 as users_pb
from chatconnect.users.v1 import users_service_pb2_grpc as users_grpc

from .conftest import Server

ROUTER = "router.chatconnect"
GATEWAY = "gateway.chatconnect"
DEVICES = "devices.chatconnect"
Code = grpc.StatusCode
QUIET = 0.3
"""How long a connected client must stay silent to show nothing was delivered."""

# -- helpers --------------------------------------------------------------------------


def _ciphertext(user_id: str, device_id: int, *, registration_id: int = 1,
                type_: int = common_pb2.ENVELOPE_TYPE_CIPHERTEXT,
                content: bytes = b"x") -> router_pb2.DeviceCiphertext:
    return router_pb2.DeviceCiphertext(
        device=common_pb2.DeviceAddress(user_id=user_id, device_id=device_id),
        registration_id=registration_id, type=type_, content=content,
    )


def _outgoing(to_user: str, ciphertexts: list[router_pb2.DeviceCiphertext],
              cmid: str | None = None) -> router_pb2.OutgoingMessage:
    return router_pb2.OutgoingMessage(
        client_message_id=uuid.uuid4().hex if cmid is None else cmid,
        destination=common_pb2.ConversationRef(user_id=to_user),
        ciphertexts=ciphertexts,
    )


def _to(account: Account, **fields: object) -> router_pb2.DeviceCiphertext:
    """A ciphertext for `account`'s device with its real registration id."""
    return _ciphertext(account.user_id, account.device_id,
                       registration_id=account.keys.registration_id, **fields)  # type: ignore[arg-type]


def _rpc_error(exc: grpc.aio.AioRpcError) -> tuple[ChatError, str]:
    """The SDK view of a failed RPC and its ErrorInfo domain (which must be present)."""
    error = ChatError.from_rpc(exc)
    info = error.detail(error_details_pb2.ErrorInfo)
    assert info is not None, f"no ErrorInfo in {exc!r}"
    return error, info.domain


async def _rpc_fails(call: object) -> tuple[ChatError, str]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    return _rpc_error(raised.value)


def _assert_error(error: ChatError, domain: str, code: Code, reason: str,
                  expected_domain: str) -> None:
    assert (error.code, error.reason, domain) == (code, reason, expected_domain), error


def _router(channel: grpc.aio.Channel) -> router_grpc.RouterServiceStub:
    return router_grpc.RouterServiceStub(channel)


async def _inbox(server: Server, account: Account) -> list[common_pb2.InboxItem]:
    """Everything stored for `account`'s device (not acknowledged)."""
    async with server.channel() as channel:
        response = await _router(channel).ListInboxItems(
            router_pb.ListInboxItemsRequest(page_size=500), metadata=account.metadata())
    return list(response.items)


async def _assert_inboxes_empty(server: Server, *accounts: Account) -> None:
    for account in accounts:
        assert await _inbox(server, account) == [], f"something was stored for {account.user_id}"


async def _assert_silent(client) -> None:
    with pytest.raises(TimeoutError):
        await client.receive(timeout=QUIET)


async def _unary_send(server: Server, sender: Account,
                      message: router_pb2.OutgoingMessage) -> router_pb2.SendResult:
    async with server.channel() as channel:
        response = await _router(channel).SendMessage(
            router_pb.SendMessageRequest(message=message), metadata=sender.metadata())
    return response.result


async def _unary_send_fails(server: Server, sender: Account,
                            message: router_pb2.OutgoingMessage) -> tuple[ChatError, str]:
    async with server.channel() as channel:
        return await _rpc_fails(_router(channel).SendMessage(
            router_pb.SendMessageRequest(message=message), metadata=sender.metadata()))


async def _open_stream(channel: grpc.aio.Channel, account: Account):
    """A bare Connect stream past Welcome and InboxDrained."""
    call = gw_grpc.GatewayServiceStub(channel).Connect(metadata=account.metadata())
    await call.write(gw.ConnectRequest(hello=gateway_pb2.Hello(kind=common_pb2.DEVICE_KIND_PHONE)))
    while True:
        frame = await asyncio.wait_for(call.read(), 5)
        assert frame is not grpc.aio.EOF
        if frame.WhichOneof("frame") == "drained":
            return call


async def _stream_send_failure(server: Server, sender: Account,
                               message: router_pb2.OutgoingMessage) -> common_pb2.Error:
    """The raw `send_failed` error frame for a send over a bare stream."""
    async with server.channel() as channel:
        call = await _open_stream(channel, sender)
        await call.write(gw.ConnectRequest(send=message))
        while True:
            frame = await asyncio.wait_for(call.read(), 5)
            kind = frame.WhichOneof("frame")
            assert kind != "sent", "the server accepted the send"
            if kind == "send_failed":
                assert frame.send_failed.client_message_id == message.client_message_id
                call.cancel()
                return frame.send_failed.error


async def _stream_send_fails(server: Server, clients, sender: Account,
                             message: router_pb2.OutgoingMessage) -> tuple[ChatError, str]:
    """Sends over the gateway stream; returns the SDK's ChatError and the frame's domain.

    The raw stream shows the domain (the SDK error does not keep it); the SDK shows what an
    application gets. Both must agree.
    """
    frame = await _stream_send_failure(server, sender, message)
    client = await clients(sender)
    with pytest.raises(ChatError) as raised:
        await client.send(message, timeout=10)
    error = raised.value
    assert (error.code.value[0], error.reason) == (frame.code, frame.reason)
    return error, frame.domain


async def _send_fails(transport: str, server: Server, clients, sender: Account,
                      message: router_pb2.OutgoingMessage) -> tuple[ChatError, str]:
    if transport == "unary":
        return await _unary_send_fails(server, sender, message)
    return await _stream_send_fails(server, clients, sender, message)


async def _good_send_arrives(transport: str, server: Server, clients, sender: Account,
                             recipient: Account) -> None:
    """The server still accepts and delivers a well-formed send."""
    if transport == "unary":
        result = await _unary_send(server, sender, _outgoing(recipient.user_id, [_to(recipient)]))
        (item,) = await _inbox(server, recipient)
        assert item.envelope.server_message_id == result.server_message_id
        return
    a, b = await clients(sender), await clients(recipient)
    await a.send_text(recipient.user_id, "still works")
    assert (await b.receive_message()).text == "still works"


def _limit(error: ChatError) -> tuple[str, int, int]:
    detail = error.detail(errordetails_pb2.LimitExceeded)
    assert detail is not None, error.details
    return detail.setting, detail.limit, detail.actual


def _field_violation(error: ChatError) -> str:
    bad_request = error.detail(error_details_pb2.BadRequest)
    assert bad_request is not None, error.details
    (violation,) = bad_request.field_violations
    return violation.field


@dataclass
class Party:
    """Alice sends to Bob; Carol is a bystander."""

    alice: Account
    bob: Account
    carol: Account


@pytest.fixture
async def party(server: Server) -> Party:
    return Party(await server.register(), await server.register(), await server.register())


TRANSPORTS = ["unary", "stream"]

# -- malformed sends ------------------------------------------------------------------


@dataclass(frozen=True)
class BadSend:
    build: Callable[[Party], router_pb2.OutgoingMessage]
    code: Code
    reason: str
    check: Callable[[ChatError, Party], None] | None = None


def _check_envelope_limit(error: ChatError, _: Party) -> None:
    assert _limit(error) == ("router.max_envelope_bytes", 256 * 1024, 256 * 1024 + 1)


def _check_unknown_type_field(error: ChatError, _: Party) -> None:
    assert _field_violation(error) == "ciphertexts[0].type"


def _check_extra_device(error: ChatError, p: Party) -> None:
    failure = error.detail(errordetails_pb2.DeviceListMismatchFailure)
    assert failure is not None, error.details
    (mismatch,) = failure.mismatches
    assert mismatch.user_id == p.bob.user_id
    assert list(mismatch.extra_device_ids) == [7]
    assert list(mismatch.missing_device_ids) == []
    assert [d.device_id for d in mismatch.current_devices] == [1]


BAD_SENDS: dict[str, BadSend] = {
    "envelope-too-large": BadSend(
        lambda p: _outgoing(p.bob.user_id, [_to(p.bob, content=b"\0" * (256 * 1024 + 1))]),
        Code.RESOURCE_EXHAUSTED, "ENVELOPE_TOO_LARGE", _check_envelope_limit),
    "client-message-id-missing": BadSend(
        lambda p: _outgoing(p.bob.user_id, [_to(p.bob)], cmid=""),
        Code.INVALID_ARGUMENT, "CLIENT_MESSAGE_ID_INVALID"),
    "client-message-id-65-chars": BadSend(
        lambda p: _outgoing(p.bob.user_id, [_to(p.bob)], cmid="c" * 65),
        Code.INVALID_ARGUMENT, "CLIENT_MESSAGE_ID_INVALID"),
    "destination-missing": BadSend(
        lambda p: router_pb2.OutgoingMessage(client_message_id=uuid.uuid4().hex,
                                             ciphertexts=[_to(p.bob)]),
        Code.INVALID_ARGUMENT, "DESTINATION_MISSING"),
    "ciphertexts-missing": BadSend(
        lambda p: _outgoing(p.bob.user_id, []),
        Code.INVALID_ARGUMENT, "CIPHERTEXTS_MISSING"),
    "content-empty": BadSend(
        lambda p: _outgoing(p.bob.user_id, [_to(p.bob, content=b"")]),
        Code.INVALID_ARGUMENT, "CONTENT_MISSING"),
    "type-unspecified": BadSend(
        lambda p: _outgoing(p.bob.user_id,
                            [_to(p.bob, type_=common_pb2.ENVELOPE_TYPE_UNSPECIFIED)]),
        Code.INVALID_ARGUMENT, "ENVELOPE_TYPE_MISSING"),
    "type-receipt-is-server-only": BadSend(
        lambda p: _outgoing(p.bob.user_id, [_to(p.bob, type_=common_pb2.ENVELOPE_TYPE_RECEIPT)]),
        Code.INVALID_ARGUMENT, "ENVELOPE_TYPE_MISSING"),
    "type-unknown-enum-99": BadSend(
        lambda p: _outgoing(p.bob.user_id, [_to(p.bob, type_=99)]),
        Code.INVALID_ARGUMENT, "FIELD_INVALID", _check_unknown_type_field),
    "device-addressed-twice": BadSend(
        lambda p: _outgoing(p.bob.user_id, [_to(p.bob), _to(p.bob)]),
        Code.INVALID_ARGUMENT, "DEVICE_ADDRESSED_TWICE"),
    "third-user-addressed": BadSend(
        lambda p: _outgoing(p.bob.user_id, [_to(p.bob), _to(p.carol)]),
        Code.INVALID_ARGUMENT, "NOT_A_PARTICIPANT"),
    "sending-device-addressed": BadSend(
        lambda p: _outgoing(p.bob.user_id, [_to(p.bob), _to(p.alice)]),
        Code.INVALID_ARGUMENT, "NOT_A_PARTICIPANT"),
    "unknown-recipient-user": BadSend(
        lambda p: (lambda ghost: _outgoing(ghost, [_ciphertext(ghost, 1)]))(str(uuid.uuid4())),
        Code.NOT_FOUND, "USER_NOT_FOUND"),
    "unknown-recipient-device-7": BadSend(
        lambda p: _outgoing(p.bob.user_id, [_to(p.bob), _ciphertext(p.bob.user_id, 7)]),
        Code.FAILED_PRECONDITION, "DEVICE_LIST_MISMATCH", _check_extra_device),
    "group-send-without-group-content": BadSend(
        lambda p: router_pb2.OutgoingMessage(
            client_message_id=uuid.uuid4().hex,
            destination=common_pb2.ConversationRef(group_id=str(uuid.uuid4()))),
        Code.INVALID_ARGUMENT, "CONTENT_MISSING"),
    "unknown-group": BadSend(
        lambda p: router_pb2.OutgoingMessage(
            client_message_id=uuid.uuid4().hex,
            destination=common_pb2.ConversationRef(group_id=str(uuid.uuid4())),
            group_content=b"sealed"),
        Code.NOT_FOUND, "GROUP_NOT_FOUND"),
}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("case", list(BAD_SENDS))
async def test_malformed_send_is_rejected_and_stores_nothing(
    server: Server, clients, party: Party, case: str, transport: str
) -> None:
    bad = BAD_SENDS[case]
    message = bad.build(party)
    if transport == "stream":
        b = await clients(party.bob)
    error, domain = await _send_fails(transport, server, clients, party.alice, message)
    _assert_error(error, domain, bad.code, bad.reason, ROUTER)
    if bad.check is not None:
        bad.check(error, party)
    if transport == "stream":
        await _assert_silent(b)
    await _assert_inboxes_empty(server, party.alice, party.bob, party.carol)
    await _good_send_arrives(transport, server, clients, party.alice, party.bob)


@pytest.mark.settings(router={"max_envelope_bytes": 1024})
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_envelope_over_a_lowered_limit_is_rejected(
    server: Server, clients, party: Party, transport: str
) -> None:
    message = _outgoing(party.bob.user_id, [_to(party.bob, content=b"\1" * 1025)])
    error, domain = await _send_fails(transport, server, clients, party.alice, message)
    _assert_error(error, domain, Code.RESOURCE_EXHAUSTED, "ENVELOPE_TOO_LARGE", ROUTER)
    assert _limit(error) == ("router.max_envelope_bytes", 1024, 1025)
    await _assert_inboxes_empty(server, party.bob)
    # Exactly at the limit is fine.
    await _unary_send(server, party.alice,
                      _outgoing(party.bob.user_id, [_to(party.bob, content=b"\1" * 1024)]))
    (item,) = await _inbox(server, party.bob)
    assert len(item.envelope.content) == 1024


@pytest.mark.settings(router={"max_devices_per_send": 2})
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_send_to_more_devices_than_allowed_is_rejected(
    server: Server, clients, party: Party, transport: str
) -> None:
    bob = party.bob
    message = _outgoing(bob.user_id, [_to(bob), _ciphertext(bob.user_id, 2),
                                      _ciphertext(bob.user_id, 3)])
    if transport == "stream":
        b = await clients(bob)
    error, domain = await _send_fails(transport, server, clients, party.alice, message)
    _assert_error(error, domain, Code.RESOURCE_EXHAUSTED, "TOO_MANY_DEVICES", ROUTER)
    assert _limit(error) == ("router.max_devices_per_send", 2, 3)
    if transport == "stream":
        await _assert_silent(b)
    await _assert_inboxes_empty(server, bob)
    await _good_send_arrives(transport, server, clients, party.alice, bob)


# -- credentials ----------------------------------------------------------------------


def _forged_token(account: Account) -> str:
    """The same claims as the account's real token, signed by a key the server never had."""
    claims = jwt.decode(account.access_token, options={"verify_signature": False})
    return jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA")


def _metadata_for(kind: str, account: Account) -> tuple[tuple[str, str], ...]:
    if kind == "missing":
        return ()
    if kind == "garbage":
        return (("authorization", "Bearer not-a-jwt"),)
    return (("authorization", f"Bearer {_forged_token(account)}"),)


BAD_TOKENS = {"missing": "TOKEN_MISSING", "garbage": "TOKEN_INVALID",
              "other-signing-key": "TOKEN_INVALID"}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
async def test_send_without_a_valid_token_is_unauthenticated(
    server: Server, party: Party, kind: str
) -> None:
    message = _outgoing(party.bob.user_id, [_to(party.bob)])
    async with server.channel() as channel:
        error, domain = await _rpc_fails(_router(channel).SendMessage(
            router_pb.SendMessageRequest(message=message),
            metadata=_metadata_for(kind, party.alice)))
    _assert_error(error, domain, Code.UNAUTHENTICATED, BAD_TOKENS[kind], ROUTER)
    await _assert_inboxes_empty(server, party.bob)
    # The same message with the real token goes through.
    await _unary_send(server, party.alice, message)
    assert len(await _inbox(server, party.bob)) == 1


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
async def test_stream_without_a_valid_token_is_unauthenticated(
    server: Server, clients, party: Party, kind: str
) -> None:
    async with server.channel() as channel:
        call = gw_grpc.GatewayServiceStub(channel).Connect(
            metadata=_metadata_for(kind, party.alice))
        await call.write(gw.ConnectRequest(
            hello=gateway_pb2.Hello(kind=common_pb2.DEVICE_KIND_PHONE)))
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await asyncio.wait_for(call.read(), 5)
    error, domain = _rpc_error(raised.value)
    _assert_error(error, domain, Code.UNAUTHENTICATED, BAD_TOKENS[kind], GATEWAY)
    await _assert_inboxes_empty(server, party.bob)
    await _good_send_arrives("stream", server, clients, party.alice, party.bob)


async def _sleep_to_start_of_second() -> None:
    # Tokens carry whole-second expiry times: a 1 s token issued at x.9 lives only 0.1 s.
    # Start just after a second boundary so a fresh token lives almost its full second.
    await asyncio.sleep(1.02 - time.time() % 1)


@pytest.mark.settings(auth={"access_token_ttl_seconds": 1})
async def test_expired_token_is_refused_until_the_session_is_refreshed(
    server: Server, party: Party
) -> None:
    alice, bob = party.alice, party.bob
    await asyncio.sleep(2.1)
    message = _outgoing(bob.user_id, [_to(bob)])
    async with server.channel() as channel:
        error, domain = await _rpc_fails(_router(channel).SendMessage(
            router_pb.SendMessageRequest(message=message), metadata=alice.metadata()))
        _assert_error(error, domain, Code.UNAUTHENTICATED, "TOKEN_EXPIRED", ROUTER)
        await _sleep_to_start_of_second()
        refreshed = await users_grpc.UsersServiceStub(channel).RefreshSession(
            users_pb.RefreshSessionRequest(refresh_token=alice.refresh_token))
        alice.update_session(refreshed.session)
        await bob.refresh(channel)
        assert await _inbox(server, bob) == []
        result = await _router(channel).SendMessage(
            router_pb.SendMessageRequest(message=message), metadata=alice.metadata())
    assert not result.result.duplicate
    (item,) = await _inbox(server, bob)
    assert item.envelope.server_message_id == result.result.server_message_id


async def _unlink(server: Server, by: Account, device_id: int) -> None:
    async with server.channel() as channel:
        await devices_grpc.DevicesServiceStub(channel).UnlinkDevice(
            devices_pb.UnlinkDeviceRequest(request_id=uuid.uuid4().hex, device_id=device_id),
            metadata=by.metadata())


async def _list_devices(server: Server, account: Account) -> list[int]:
    async with server.channel() as channel:
        response = await devices_grpc.DevicesServiceStub(channel).ListDevices(
            devices_pb.ListDevicesRequest(), metadata=account.metadata())
    return [d.device_id for d in response.devices]


async def test_unlinked_device_is_revoked_at_once_and_its_stream_ends(
    server: Server, clients, party: Party
) -> None:
    alice, bob = party.alice, party.bob
    laptop = await server.link(alice)
    laptop_client = await clients(laptop)
    await _unlink(server, alice, laptop.device_id)
    # The open stream ends with DEVICE_REVOKED and the SDK gives up for good.
    for _ in range(250):  # up to 5 s
        if laptop_client.fatal is not None:
            break
        await asyncio.sleep(0.02)
    assert laptop_client.fatal is not None, "the unlinked device's stream stayed open"
    assert laptop_client.fatal.reason == "DEVICE_REVOKED"
    assert laptop_client.fatal.code == Code.UNAUTHENTICATED
    # The token, though unexpired, no longer works.
    error, domain = await _unary_send_fails(server, laptop, _outgoing(bob.user_id, [_to(bob)]))
    _assert_error(error, domain, Code.UNAUTHENTICATED, "DEVICE_REVOKED", ROUTER)
    await _assert_inboxes_empty(server, bob)
    # The primary device and the rest of the account carry on.
    assert await _list_devices(server, alice) == [1]
    await _good_send_arrives("stream", server, clients, alice, bob)


# -- acting for another account, inbox paging and acknowledgement ----------------------


async def test_acknowledging_someone_elses_envelopes_changes_nothing(
    server: Server, party: Party
) -> None:
    alice, bob, carol = party.alice, party.bob, party.carol
    sent = await _unary_send(server, carol, _outgoing(alice.user_id, [_to(alice)]))
    before = await _inbox(server, alice)
    assert [i.envelope.server_message_id for i in before] == [sent.server_message_id]
    async with server.channel() as channel:
        await _router(channel).AcknowledgeInboxItems(
            router_pb.AcknowledgeInboxItemsRequest(ids=[sent.server_message_id]),
            metadata=bob.metadata())
    assert await _inbox(server, alice) == before
    # No delivery receipt went to Carol for a message Bob never had.
    await _assert_inboxes_empty(server, carol, bob)
    # Alice's own acknowledgement works and sends Carol the receipt.
    async with server.channel() as channel:
        await _router(channel).AcknowledgeInboxItems(
            router_pb.AcknowledgeInboxItemsRequest(ids=[sent.server_message_id]),
            metadata=alice.metadata())
    assert await _inbox(server, alice) == []
    (receipt,) = await _inbox(server, carol)
    assert receipt.envelope.type == common_pb2.ENVELOPE_TYPE_RECEIPT
    assert list(receipt.envelope.receipt.server_message_ids) == [sent.server_message_id]


async def test_non_primary_device_cannot_unlink_another_device(
    server: Server, party: Party
) -> None:
    alice = party.alice
    laptop, tablet = await server.link(alice), await server.link(alice)
    async with server.channel() as channel:
        error, domain = await _rpc_fails(devices_grpc.DevicesServiceStub(channel).UnlinkDevice(
            devices_pb.UnlinkDeviceRequest(request_id=uuid.uuid4().hex,
                                           device_id=tablet.device_id),
            metadata=laptop.metadata()))
    _assert_error(error, domain, Code.PERMISSION_DENIED, "NOT_PRIMARY_DEVICE", DEVICES)
    assert await _list_devices(server, alice) == [1, laptop.device_id, tablet.device_id]
    assert await _list_devices(server, tablet) == [1, laptop.device_id, tablet.device_id]
    # The primary may.
    await _unlink(server, alice, tablet.device_id)
    assert await _list_devices(server, alice) == [1, laptop.device_id]


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


FORGED_PAGE_TOKENS = {
    "not-base64": "not a token!",
    "wrong-prefix": _token("v2:1"),
    "negative": _token("v1:-1"),
    "not-a-number": _token("v1:abc"),
}


async def _list_fails(server: Server, account: Account,
                      request: router_pb.ListInboxItemsRequest) -> tuple[ChatError, str]:
    async with server.channel() as channel:
        return await _rpc_fails(_router(channel).ListInboxItems(
            request, metadata=account.metadata()))


@pytest.mark.parametrize("token", list(FORGED_PAGE_TOKENS))
async def test_forged_page_token_is_rejected(server: Server, party: Party, token: str) -> None:
    sent = await _unary_send(server, party.bob, _outgoing(party.alice.user_id, [_to(party.alice)]))
    error, domain = await _list_fails(
        server, party.alice, router_pb.ListInboxItemsRequest(page_token=FORGED_PAGE_TOKENS[token]))
    _assert_error(error, domain, Code.INVALID_ARGUMENT, "PAGE_TOKEN_INVALID", ROUTER)
    (item,) = await _inbox(server, party.alice)
    assert item.envelope.server_message_id == sent.server_message_id


async def test_page_token_beyond_any_sequence_is_rejected_not_internal(
    server: Server, party: Party
) -> None:
    # SERVER BUG: decode_page_token accepts any non-negative int; one above SQLite's
    # INTEGER range makes the store raise OverflowError and the client gets INTERNAL.
    async with server.channel() as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _router(channel).ListInboxItems(
                router_pb.ListInboxItemsRequest(page_token=_token("v1:" + "9" * 25)),
                metadata=party.alice.metadata())
    assert raised.value.code() == Code.INVALID_ARGUMENT, (
        f"a forged page token gave {raised.value.code().name}, expected INVALID_ARGUMENT "
        "PAGE_TOKEN_INVALID (decode_page_token in router/domain/inbox.py has no upper bound)")
    error, domain = _rpc_error(raised.value)
    _assert_error(error, domain, Code.INVALID_ARGUMENT, "PAGE_TOKEN_INVALID", ROUTER)
    assert await _inbox(server, party.alice) == []


async def test_negative_page_size_is_rejected(server: Server, party: Party) -> None:
    sent = await _unary_send(server, party.bob, _outgoing(party.alice.user_id, [_to(party.alice)]))
    error, domain = await _list_fails(server, party.alice,
                                      router_pb.ListInboxItemsRequest(page_size=-1))
    _assert_error(error, domain, Code.INVALID_ARGUMENT, "FIELD_INVALID", ROUTER)
    assert _field_violation(error) == "page_size"
    (item,) = await _inbox(server, party.alice)
    assert item.envelope.server_message_id == sent.server_message_id


async def test_acknowledging_more_than_500_ids_is_rejected(server: Server, party: Party) -> None:
    alice = party.alice
    sent = await _unary_send(server, party.bob, _outgoing(alice.user_id, [_to(alice)]))
    ids = [sent.server_message_id, *(uuid.uuid4().hex for _ in range(500))]
    async with server.channel() as channel:
        error, domain = await _rpc_fails(_router(channel).AcknowledgeInboxItems(
            router_pb.AcknowledgeInboxItemsRequest(ids=ids), metadata=alice.metadata()))
    _assert_error(error, domain, Code.INVALID_ARGUMENT, "TOO_MANY_IDS", ROUTER)
    assert _limit(error) == ("router.max_ids_per_ack", 500, 501)
    (item,) = await _inbox(server, alice)
    assert item.envelope.server_message_id == sent.server_message_id
    await _assert_inboxes_empty(server, party.bob)  # no delivery receipt either
    # 500 ids are fine.
    async with server.channel() as channel:
        await _router(channel).AcknowledgeInboxItems(
            router_pb.AcknowledgeInboxItemsRequest(ids=ids[:500]), metadata=alice.metadata())
    assert await _inbox(server, alice) == []


# -- the gateway stream ---------------------------------------------------------------


async def test_stream_must_start_with_hello(server: Server, clients, party: Party) -> None:
    message = _outgoing(party.bob.user_id, [_to(party.bob)])
    async with server.channel() as channel:
        call = gw_grpc.GatewayServiceStub(channel).Connect(metadata=party.alice.metadata())
        await call.write(gw.ConnectRequest(send=message))
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await asyncio.wait_for(call.read(), 5)  # ends the stream, answers nothing
    error, domain = _rpc_error(raised.value)
    _assert_error(error, domain, Code.INVALID_ARGUMENT, "HELLO_MISSING", GATEWAY)
    await _assert_inboxes_empty(server, party.bob)
    await _good_send_arrives("stream", server, clients, party.alice, party.bob)
