"""Accounts, sessions, prekeys and devices: the users, keys and devices services.

Each rejection is checked as a client sees it (status code, ErrorInfo reason and domain,
details), then that nothing was registered, stored or consumed, and then that a good
request still works.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from chatconnect.cli import DEV_TEST_CODE
from chatconnect.client import Account, ChatError
from chatconnect.client.keys import DeviceKeyMaterial, open_with, seal_to_ephemeral
from chatconnect.common.v1 import common_pb2
from chatconnect.devices.v1 import devices_service_pb2 as devices_pb
from chatconnect.devices.v1 import devices_service_pb2_grpc as devices_grpc
from chatconnect.errordetails.v1 import errordetails_pb2
from chatconnect.keys.v1 import keys_service_pb2 as keys_pb
from chatconnect.keys.v1 import keys_service_pb2_grpc as keys_grpc
from chatconnect.router.v1 import router_service_pb2 as router_pb
from chatconnect.router.v1 import router_service_pb2_grpc as router_grpc
from chatconnect.users.v1 import users_pb2
from chatconnect.users.v1 import users_service_pb2 as users_pb
from chatconnect.users.v1 import users_service_pb2_grpc as users_grpc

from .conftest import Server
from .conftest import fictional_number as new_number

USERS = "users.chatconnect"
DEVICES = "devices.chatconnect"
KEYS = "keys.chatconnect"
Code = grpc.StatusCode
WRONG_CODE = "000000"
assert WRONG_CODE != DEV_TEST_CODE

# -- helpers --------------------------------------------------------------------------


def _rpc_error(exc: grpc.aio.AioRpcError) -> tuple[ChatError, str]:
    """The SDK view of a failed RPC and its ErrorInfo domain (which must be present)."""
    error = ChatError.from_rpc(exc)
    info = error.detail(error_details_pb2.ErrorInfo)
    assert info is not None, f"no ErrorInfo in {exc!r}"
    return error, info.domain


async def _fails(call: object, code: Code, reason: str, domain: str) -> ChatError:
    """Awaits `call`, which must fail with `code`, `reason` and ErrorInfo `domain`."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    error, got_domain = _rpc_error(raised.value)
    assert (error.code, error.reason, got_domain) == (code, reason, domain), error
    return error


def _users(channel: grpc.aio.Channel) -> users_grpc.UsersServiceStub:
    return users_grpc.UsersServiceStub(channel)


def _devices(channel: grpc.aio.Channel) -> devices_grpc.DevicesServiceStub:
    return devices_grpc.DevicesServiceStub(channel)


def _keys(channel: grpc.aio.Channel) -> keys_grpc.KeysServiceStub:
    return keys_grpc.KeysServiceStub(channel)


def _start(channel: grpc.aio.Channel, number: str, *, request_id: str | None = None):
    return _users(channel).StartVerification(users_pb.StartVerificationRequest(
        request_id=uuid.uuid4().hex if request_id is None else request_id,
        phone_number=number, locale="en"))


def _completion(verification_id: str, keys: users_pb2.DeviceKeys, *, code: str = DEV_TEST_CODE,
                request_id: str | None = None) -> users_pb.CompleteRegistrationRequest:
    return users_pb.CompleteRegistrationRequest(
        request_id=request_id or uuid.uuid4().hex, verification_id=verification_id, code=code,
        registration_id=4242, kind=common_pb2.DEVICE_KIND_PHONE, keys=keys)


def _account(response: users_pb.CompleteRegistrationResponse,
             keys: DeviceKeyMaterial) -> Account:
    session = response.session
    return Account(response.user_id, session.device.device_id, session.access_token,
                   session.refresh_token, keys)


async def _register(channel: grpc.aio.Channel, number: str, *, request_id: str | None = None
                    ) -> tuple[users_pb.CompleteRegistrationResponse, Account]:
    """Verifies `number` and registers it with fresh keys."""
    started = await _start(channel, number)
    keys = DeviceKeyMaterial.generate()
    response = await _users(channel).CompleteRegistration(
        _completion(started.verification_id, keys.public_keys(), request_id=request_id))
    return response, _account(response, keys)


async def _device_ids(channel: grpc.aio.Channel, account: Account) -> list[int]:
    response = await _devices(channel).ListDevices(devices_pb.ListDevicesRequest(),
                                                   metadata=account.metadata())
    return [d.device_id for d in response.devices]


async def _prekey_count(channel: grpc.aio.Channel, account: Account) -> int:
    response = await _keys(channel).GetPreKeyCount(keys_pb.GetPreKeyCountRequest(),
                                                   metadata=account.metadata())
    return response.one_time_prekey_count


def _bundles(channel: grpc.aio.Channel, caller: Account, user_id: str, device_ids=()):
    return _keys(channel).GetPreKeyBundles(
        keys_pb.GetPreKeyBundlesRequest(user_id=user_id, device_ids=list(device_ids)),
        metadata=caller.metadata())


def _bad_signature(keys: DeviceKeyMaterial) -> users_pb2.DeviceKeys:
    """Public keys whose signed prekey is signed by some other identity."""
    published = keys.public_keys()
    spk = published.signed_prekey.public_key
    published.signed_prekey.signature = SigningKey.generate().sign(spk).signature
    return published


def _short_identity(keys: DeviceKeyMaterial) -> users_pb2.DeviceKeys:
    published = keys.public_keys()
    published.identity_key = published.identity_key[:31]
    return published


@dataclass
class PendingLink:
    """A new device's side of the QR flow."""

    ephemeral: PrivateKey
    begun: devices_pb.BeginLinkResponse


async def _begin_link(channel: grpc.aio.Channel) -> PendingLink:
    ephemeral = PrivateKey.generate()
    begun = await _devices(channel).BeginLink(devices_pb.BeginLinkRequest(
        request_id=uuid.uuid4().hex, ephemeral_public_key=bytes(ephemeral.public_key),
        kind=common_pb2.DEVICE_KIND_DESKTOP))
    return PendingLink(ephemeral, begun)


def _approve(channel: grpc.aio.Channel, approver: Account, link: PendingLink):
    return _devices(channel).ApproveLink(
        devices_pb.ApproveLinkRequest(
            request_id=uuid.uuid4().hex, link_code=link.begun.link_code,
            encrypted_provisioning_message=seal_to_ephemeral(
                bytes(link.ephemeral.public_key), bytes(approver.keys.identity))),
        metadata=approver.metadata())


async def _finish_link(channel: grpc.aio.Channel, link: PendingLink) -> Account:
    """The new device receives the identity, signs its prekeys and completes the link."""
    approval = await _devices(channel).AwaitLinkApproval(devices_pb.AwaitLinkApprovalRequest(
        link_secret=link.begun.link_secret, wait=duration_pb2.Duration(seconds=5)))
    identity = SigningKey(open_with(link.ephemeral, approval.encrypted_provisioning_message))
    keys = DeviceKeyMaterial.generate(identity)
    completed = await _devices(channel).CompleteLink(devices_pb.CompleteLinkRequest(
        request_id=uuid.uuid4().hex, link_secret=link.begun.link_secret,
        registration_id=keys.registration_id, keys=keys.public_keys(include_identity=False)))
    session = completed.session
    return Account(session.device.user_id, session.device.device_id, session.access_token,
                   session.refresh_token, keys)


def _formatted(number: str) -> str:
    """+12025550123 as +1 (202) 555-0123."""
    return f"{number[:2]} ({number[2:5]}) {number[5:8]}-{number[8:]}"


# -- verification and registration ----------------------------------------------------


@pytest.mark.parametrize("number", ["12025550100", "+0123456789", "+1 202", "call me", ""])
async def test_malformed_phone_number_is_rejected(server: Server, number: str) -> None:
    async with server.channel() as channel:
        await _fails(_start(channel, number), Code.INVALID_ARGUMENT, "PHONE_NUMBER_INVALID",
                     USERS)
        started = await _start(channel, new_number())
        assert started.verification_id


async def test_start_verification_needs_a_request_id(server: Server) -> None:
    number = new_number()
    async with server.channel() as channel:
        error = await _fails(_start(channel, number, request_id=""), Code.INVALID_ARGUMENT,
                             "REQUEST_ID_MISSING", USERS)
        (violation,) = error.detail(error_details_pb2.BadRequest).field_violations
        assert violation.field == "request_id"
        # The refused call used none of the number's hourly allowance.
        allowance = server.settings.users.verifications_per_hour
        started = [await _start(channel, number) for _ in range(allowance)]
        assert len({s.verification_id for s in started}) == allowance


async def test_verification_requests_per_number_are_rate_limited(server: Server) -> None:
    number = new_number()
    allowance = server.settings.users.verifications_per_hour
    assert allowance == 5
    async with server.channel() as channel:
        started = [await _start(channel, number) for _ in range(allowance)]
        # The same number written differently is the same number.
        error = await _fails(_start(channel, _formatted(number)), Code.RESOURCE_EXHAUSTED,
                             "RATE_LIMITED", USERS)
        retry = error.detail(error_details_pb2.RetryInfo)
        assert retry is not None, error.details
        assert 0 < retry.retry_delay.ToNanoseconds() / 1e9 <= 3600
        limited = error.detail(errordetails_pb2.RateLimited)
        assert limited.scope == "phone_number"
        assert limited.retry_after == retry.retry_delay
        # Other numbers are not affected, and the codes already sent still work.
        await _start(channel, new_number())
        keys = DeviceKeyMaterial.generate()
        done = await _users(channel).CompleteRegistration(
            _completion(started[-1].verification_id, keys.public_keys()))
        assert not done.took_over_existing_account


async def test_wrong_codes_lock_the_verification(server: Server) -> None:
    number = new_number()
    attempts = server.settings.users.max_code_attempts
    keys = DeviceKeyMaterial.generate().public_keys()
    async with server.channel() as channel:
        started = await _start(channel, number)
        for _ in range(attempts):
            await _fails(
                _users(channel).CompleteRegistration(
                    _completion(started.verification_id, keys, code=WRONG_CODE)),
                Code.PERMISSION_DENIED, "VERIFICATION_CODE_WRONG", USERS)
        await _fails(
            _users(channel).CompleteRegistration(_completion(started.verification_id, keys)),
            Code.RESOURCE_EXHAUSTED, "TOO_MANY_ATTEMPTS", USERS)
        # Nothing was registered: a new verification creates the account afresh.
        done, _ = await _register(channel, number)
        assert not done.took_over_existing_account


async def test_concurrent_wrong_codes_are_limited_to_max_code_attempts(server: Server) -> None:
    # SERVER BUG: complete_registration reads `attempts`, compares the code, then
    # increments in a separate write, so concurrent guesses all pass the attempts check.
    attempts = server.settings.users.max_code_attempts
    keys = DeviceKeyMaterial.generate().public_keys()
    async with server.channel() as channel:
        started = await _start(channel, new_number())

        async def guess(code: int) -> str:
            try:
                await _users(channel).CompleteRegistration(
                    _completion(started.verification_id, keys, code=f"{code:06d}"))
            except grpc.aio.AioRpcError as exc:
                return ChatError.from_rpc(exc).reason
            return "REGISTERED"

        outcomes = Counter(await asyncio.gather(*(guess(i) for i in range(30))))
    assert outcomes["VERIFICATION_CODE_WRONG"] <= attempts, (
        f"{outcomes['VERIFICATION_CODE_WRONG']} concurrent wrong codes were checked against "
        f"the code, but users.max_code_attempts is {attempts}: {dict(outcomes)}")
    assert outcomes["TOO_MANY_ATTEMPTS"] == 30 - attempts


@pytest.mark.settings(users={"verification_code_ttl_seconds": 1})
async def test_expired_verification_is_refused(server: Server) -> None:
    number = new_number()
    keys = DeviceKeyMaterial.generate().public_keys()
    async with server.channel() as channel:
        started = await _start(channel, number)
        await asyncio.sleep(1.2)
        await _fails(
            _users(channel).CompleteRegistration(_completion(started.verification_id, keys)),
            Code.FAILED_PRECONDITION, "VERIFICATION_EXPIRED", USERS)
        done, _ = await _register(channel, number)
        assert not done.took_over_existing_account


@pytest.mark.parametrize(("keys_case", "reason"), [
    ("signature-by-another-key", "SIGNATURE_INVALID"),
    ("identity-key-31-bytes", "KEY_INVALID"),
])
async def test_registration_with_bad_keys_is_rejected(
    server: Server, keys_case: str, reason: str
) -> None:
    number = new_number()
    keys = DeviceKeyMaterial.generate()
    published = _bad_signature(keys) if keys_case.startswith("signature") else _short_identity(keys)
    async with server.channel() as channel:
        started = await _start(channel, number)
        await _fails(
            _users(channel).CompleteRegistration(_completion(started.verification_id, published)),
            Code.INVALID_ARGUMENT, reason, USERS)
        # Nothing was registered and the verification is still good.
        done = await _users(channel).CompleteRegistration(
            _completion(started.verification_id, keys.public_keys()))
        assert not done.took_over_existing_account
        assert await _device_ids(channel, _account(done, keys)) == [1]


async def test_retried_registration_returns_the_same_account(server: Server) -> None:
    number = new_number()
    keys = DeviceKeyMaterial.generate()
    async with server.channel() as channel:
        started = await _start(channel, number)
        request = _completion(started.verification_id, keys.public_keys(), request_id="reg-1")
        first = await _users(channel).CompleteRegistration(request)
        second = await _users(channel).CompleteRegistration(request)
        assert second.user_id == first.user_id
        assert second.session.device.device_id == first.session.device.device_id == 1
        assert not first.took_over_existing_account and not second.took_over_existing_account
        # Both answers hold working credentials for the one device.
        for response in (first, second):
            assert await _device_ids(channel, _account(response, keys)) == [1]
        # Another request id cannot reuse the verification.
        await _fails(
            _users(channel).CompleteRegistration(
                _completion(started.verification_id, keys.public_keys())),
            Code.NOT_FOUND, "VERIFICATION_NOT_FOUND", USERS)


async def test_registering_a_number_again_takes_the_account_over(server: Server) -> None:
    number = new_number()
    async with server.channel() as channel:
        first, old = await _register(channel, number)
        old_laptop = await server.link(old)
        again, new = await _register(channel, number)
        assert again.user_id == first.user_id
        assert again.took_over_existing_account
        for revoked in (old, old_laptop):
            await _fails(_devices(channel).ListDevices(devices_pb.ListDevicesRequest(),
                                                       metadata=revoked.metadata()),
                         Code.UNAUTHENTICATED, "DEVICE_REVOKED", DEVICES)
        assert await _device_ids(channel, new) == [1]
        # The old identity key is gone from the directory.
        (bundle,) = (await _bundles(channel, new, new.user_id)).bundles
        assert bundle.identity_key == bytes(new.keys.identity.verify_key)


async def test_retried_takeover_still_reports_the_takeover(server: Server) -> None:
    # SERVER BUG: the retry branch of complete_registration answers
    # took_over_existing_account=false even when the original answer said true.
    number = new_number()
    async with server.channel() as channel:
        await _register(channel, number)
        started = await _start(channel, number)
        keys = DeviceKeyMaterial.generate()
        request = _completion(started.verification_id, keys.public_keys(), request_id="take")
        first = await _users(channel).CompleteRegistration(request)
        retried = await _users(channel).CompleteRegistration(request)
    assert first.took_over_existing_account
    assert retried.user_id == first.user_id
    assert retried.took_over_existing_account, (
        "a retry (same request_id) of a takeover registration reported "
        "took_over_existing_account=false; the original answer said true")


async def test_refresh_rotates_the_session(server: Server) -> None:
    async with server.channel() as channel:
        _, account = await _register(channel, new_number())
        old_refresh = account.refresh_token
        refreshed = (await _users(channel).RefreshSession(
            users_pb.RefreshSessionRequest(refresh_token=old_refresh))).session
        assert refreshed.refresh_token != old_refresh
        assert refreshed.access_token != account.access_token
        assert (refreshed.device.user_id, refreshed.device.device_id) == (account.user_id, 1)
        account.update_session(refreshed)
        assert await _device_ids(channel, account) == [1]
        await _fails(
            _users(channel).RefreshSession(users_pb.RefreshSessionRequest(refresh_token=old_refresh)),
            Code.UNAUTHENTICATED, "REFRESH_TOKEN_INVALID", USERS)
        # The new refresh token still works (the failed reuse did not burn it).
        again = await _users(channel).RefreshSession(
            users_pb.RefreshSessionRequest(refresh_token=account.refresh_token))
        assert again.session.access_token


# -- prekeys --------------------------------------------------------------------------


async def test_one_time_prekeys_are_handed_out_exactly_once(server: Server) -> None:
    alice, bob = await server.register(), await server.register()
    async with server.channel() as channel:
        assert await _prekey_count(channel, bob) == 20
        responses = await asyncio.gather(
            *(_bundles(channel, alice, bob.user_id, [1]) for _ in range(20)))
        key_ids = [r.bundles[0].one_time_prekey.key_id for r in responses]
        assert sorted(key_ids) == list(range(1, 21))
        (last,) = (await _bundles(channel, alice, bob.user_id, [1])).bundles
        assert not last.HasField("one_time_prekey")
        assert last.signed_prekey.public_key == bytes(bob.keys.signed_prekey.public_key)
        assert await _prekey_count(channel, bob) == 0


def _upload(channel: grpc.aio.Channel, account: Account, *, key_ids,
            signed_prekey: users_pb2.SignedPreKey | None = None):
    return _keys(channel).UploadPreKeys(
        keys_pb.UploadPreKeysRequest(
            request_id=uuid.uuid4().hex, signed_prekey=signed_prekey,
            one_time_prekeys=[users_pb2.PreKey(key_id=i,
                                               public_key=bytes(PrivateKey.generate().public_key))
                              for i in key_ids]),
        metadata=account.metadata())


async def test_uploaded_prekeys_raise_the_count(server: Server) -> None:
    bob = await server.register()
    async with server.channel() as channel:
        response = await _upload(channel, bob, key_ids=[*range(101, 111), 1])  # 1 exists already
        assert response.one_time_prekey_count == 30
        assert await _prekey_count(channel, bob) == 30


async def test_upload_with_a_bad_signed_prekey_signature_changes_nothing(server: Server) -> None:
    alice, bob = await server.register(), await server.register()
    spk = PrivateKey.generate()
    forged = users_pb2.SignedPreKey(
        key_id=2, public_key=bytes(spk.public_key),
        signature=SigningKey.generate().sign(bytes(spk.public_key)).signature)
    async with server.channel() as channel:
        await _fails(_upload(channel, bob, key_ids=range(101, 111), signed_prekey=forged),
                     Code.INVALID_ARGUMENT, "SIGNATURE_INVALID", KEYS)
        assert await _prekey_count(channel, bob) == 20
        (bundle,) = (await _bundles(channel, alice, bob.user_id)).bundles
        assert bundle.signed_prekey.key_id == 1
        assert bundle.signed_prekey.public_key == bytes(bob.keys.signed_prekey.public_key)
        # A correctly signed prekey is accepted.
        good = users_pb2.SignedPreKey(
            key_id=2, public_key=bytes(spk.public_key),
            signature=bob.keys.identity.sign(bytes(spk.public_key)).signature)
        await _upload(channel, bob, key_ids=[], signed_prekey=good)
        (bundle,) = (await _bundles(channel, alice, bob.user_id)).bundles
        assert bundle.signed_prekey.key_id == 2


async def test_bundles_for_unknown_user_or_device_consume_nothing(server: Server) -> None:
    alice, bob = await server.register(), await server.register()
    async with server.channel() as channel:
        await _fails(_bundles(channel, alice, str(uuid.uuid4())), Code.NOT_FOUND,
                     "USER_NOT_FOUND", KEYS)
        await _fails(_bundles(channel, alice, bob.user_id, [1, 7]), Code.NOT_FOUND,
                     "DEVICE_NOT_FOUND", KEYS)
        assert await _prekey_count(channel, bob) == 20
        assert await _prekey_count(channel, alice) == 20
        (bundle,) = (await _bundles(channel, alice, bob.user_id, [1])).bundles
        assert bundle.one_time_prekey.key_id == 1
        assert await _prekey_count(channel, bob) == 19


# -- devices --------------------------------------------------------------------------


async def test_linked_device_is_listed_after_the_primary(server: Server) -> None:
    alice = await server.register()
    laptop = await server.link(alice)
    assert laptop.user_id == alice.user_id and laptop.device_id == 2
    async with server.channel() as channel:
        for viewer in (alice, laptop):
            response = await _devices(channel).ListDevices(devices_pb.ListDevicesRequest(),
                                                           metadata=viewer.metadata())
            listed = [(d.device_id, d.primary, d.kind, d.registration_id)
                      for d in response.devices]
            assert listed == [
                (1, True, common_pb2.DEVICE_KIND_PHONE, alice.keys.registration_id),
                (2, False, common_pb2.DEVICE_KIND_DESKTOP, laptop.keys.registration_id),
            ]


@pytest.mark.settings(devices={"max_linked_devices": 1})
async def test_linking_beyond_the_device_limit_is_refused(server: Server) -> None:
    alice = await server.register()
    laptop = await server.link(alice)
    async with server.channel() as channel:
        link = await _begin_link(channel)
        await _fails(_approve(channel, alice, link), Code.RESOURCE_EXHAUSTED,
                     "DEVICE_LIMIT_REACHED", DEVICES)
        assert await _device_ids(channel, alice) == [1, laptop.device_id]
        await _fails(
            _devices(channel).AwaitLinkApproval(devices_pb.AwaitLinkApprovalRequest(
                link_secret=link.begun.link_secret, wait=duration_pb2.Duration())),
            Code.FAILED_PRECONDITION, "LINK_NOT_APPROVED", DEVICES)
        # Room made, the same code can be approved.
        await _devices(channel).UnlinkDevice(
            devices_pb.UnlinkDeviceRequest(request_id=uuid.uuid4().hex,
                                           device_id=laptop.device_id),
            metadata=alice.metadata())
        await _approve(channel, alice, link)
        tablet = await _finish_link(channel, link)
        assert await _device_ids(channel, alice) == [1, tablet.device_id]


@pytest.mark.settings(devices={"max_linked_devices": 1})
async def test_pending_approvals_count_toward_the_device_limit(server: Server) -> None:
    # SERVER BUG: SqliteDeviceStore.approve_link counts only completed devices, and
    # complete_link does not check again, so approving two codes before completing
    # either links two devices although devices.max_linked_devices is 1.
    alice = await server.register()
    async with server.channel() as channel:
        first, second = await _begin_link(channel), await _begin_link(channel)
        await _approve(channel, alice, first)
        try:
            await _approve(channel, alice, second)
            second_refused = None
        except grpc.aio.AioRpcError as exc:
            second_refused = ChatError.from_rpc(exc)
        if second_refused is None:
            await _finish_link(channel, first)
            await _finish_link(channel, second)
        devices = await _device_ids(channel, alice)
    assert second_refused is not None, (
        f"with devices.max_linked_devices=1 a second pending link was approved and the "
        f"account now has devices {devices}")
    assert (second_refused.code, second_refused.reason) == (
        Code.RESOURCE_EXHAUSTED, "DEVICE_LIMIT_REACHED")


async def test_unknown_link_code_is_not_found(server: Server) -> None:
    alice = await server.register()
    async with server.channel() as channel:
        link = await _begin_link(channel)
        unknown = PendingLink(link.ephemeral, devices_pb.BeginLinkResponse(
            link_code="AAAAAAAAAAAAAAAA", link_secret=link.begun.link_secret))
        await _fails(_approve(channel, alice, unknown), Code.NOT_FOUND, "LINK_CODE_NOT_FOUND",
                     DEVICES)
        assert await _device_ids(channel, alice) == [1]
        await _approve(channel, alice, link)
        laptop = await _finish_link(channel, link)
        assert await _device_ids(channel, alice) == [1, laptop.device_id]


async def test_complete_link_before_approval_is_refused(server: Server) -> None:
    alice = await server.register()
    async with server.channel() as channel:
        link = await _begin_link(channel)
        keys = DeviceKeyMaterial.generate(alice.keys.identity)
        await _fails(
            _devices(channel).CompleteLink(devices_pb.CompleteLinkRequest(
                request_id=uuid.uuid4().hex, link_secret=link.begun.link_secret,
                registration_id=keys.registration_id,
                keys=keys.public_keys(include_identity=False))),
            Code.FAILED_PRECONDITION, "LINK_NOT_APPROVED", DEVICES)
        assert await _device_ids(channel, alice) == [1]
        await _approve(channel, alice, link)
        laptop = await _finish_link(channel, link)
        assert await _device_ids(channel, alice) == [1, laptop.device_id]


async def _device_list_notices(server: Server, account: Account) -> list[list[int]]:
    """The device lists of the DEVICE_LIST_CHANGED notices in `account`'s inbox."""
    async with server.channel() as channel:
        response = await router_grpc.RouterServiceStub(channel).ListInboxItems(
            router_pb.ListInboxItemsRequest(), metadata=account.metadata())
    lists = []
    for item in response.items:
        envelope = item.envelope
        assert envelope.type == common_pb2.ENVELOPE_TYPE_SERVER_NOTICE, envelope
        assert envelope.notice.type == common_pb2.NOTICE_TYPE_DEVICE_LIST_CHANGED
        assert envelope.notice.subject_user_id == account.user_id
        assert not envelope.HasField("sender")
        lists.append([d.device_id for d in envelope.notice.devices])
    return lists


async def _next_notice(client) -> list[int]:
    item = await client.receive(timeout=5)
    envelope = item.envelope
    assert envelope is not None and envelope.type == common_pb2.ENVELOPE_TYPE_SERVER_NOTICE
    assert envelope.notice.type == common_pb2.NOTICE_TYPE_DEVICE_LIST_CHANGED
    return [d.device_id for d in envelope.notice.devices]


async def test_every_device_is_told_when_the_device_list_changes(
    server: Server, clients
) -> None:
    alice = await server.register()
    a = await clients(alice)
    laptop = await server.link(alice)
    assert await _next_notice(a) == [1, 2]
    tablet = await server.link(alice)
    assert await _next_notice(a) == [1, 2, 3]
    async with server.channel() as channel:
        await _devices(channel).UnlinkDevice(
            devices_pb.UnlinkDeviceRequest(request_id=uuid.uuid4().hex,
                                           device_id=tablet.device_id),
            metadata=alice.metadata())
    assert await _next_notice(a) == [1, 2]
    assert await _device_list_notices(server, laptop) == [[1, 2], [1, 2, 3], [1, 2]]
    with pytest.raises(TimeoutError):
        await a.receive(timeout=0.3)


async def test_primary_device_cannot_be_unlinked(server: Server) -> None:
    alice = await server.register()
    laptop = await server.link(alice)
    async with server.channel() as channel:
        error = await _fails(
            _devices(channel).UnlinkDevice(
                devices_pb.UnlinkDeviceRequest(request_id=uuid.uuid4().hex, device_id=1),
                metadata=alice.metadata()),
            Code.INVALID_ARGUMENT, "FIELD_INVALID", DEVICES)
        (violation,) = error.detail(error_details_pb2.BadRequest).field_violations
        assert violation.field == "device_id"
        assert await _device_ids(channel, alice) == [1, laptop.device_id]
        assert await _prekey_count(channel, alice) == 20  # the primary still works


# -- health and reflection ------------------------------------------------------------


@pytest.mark.parametrize("service", ["", "chatconnect.router.v1.RouterService"])
async def test_health_check_reports_serving(server: Server, service: str) -> None:
    async with server.channel() as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service))
    assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_gateway_service(server: Server) -> None:
    async with server.channel() as channel:
        call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        responses = [response async for response in call]
    (response,) = responses
    names = {s.name for s in response.list_services_response.service}
    assert "chatconnect.gateway.v1.GatewayService" in names
    assert "chatconnect.router.v1.RouterService" in names
