"""Creating devices: registering an account (device 1) and linking another device."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from google.protobuf import duration_pb2
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from chatconnect.client.errors import ChatError
from chatconnect.client.keys import DeviceKeyMaterial, open_with, seal_to_ephemeral
from chatconnect.devices.v1 import devices_service_pb2 as devices_pb
from chatconnect.devices.v1 import devices_service_pb2_grpc as devices_grpc
from chatconnect.users.v1 import users_pb2
from chatconnect.users.v1 import users_service_pb2 as users_pb
from chatconnect.users.v1 import users_service_pb2_grpc as users_grpc

RPC_TIMEOUT = 10.0


@dataclass
class Account:
    """One device's credentials and keys."""

    user_id: str
    device_id: int
    access_token: str
    refresh_token: str
    keys: DeviceKeyMaterial

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata carrying the access token."""
        return (("authorization", f"Bearer {self.access_token}"),)

    def update_session(self, session: users_pb2.DeviceSession) -> None:
        """Stores refreshed credentials."""
        self.access_token = session.access_token
        self.refresh_token = session.refresh_token

    async def refresh(self, channel: grpc.aio.Channel) -> None:
        """Exchanges the refresh token for a new session."""
        stub = users_grpc.UsersServiceStub(channel)
        try:
            response = await stub.RefreshSession(
                users_pb.RefreshSessionRequest(refresh_token=self.refresh_token),
                timeout=RPC_TIMEOUT,
            )
        except grpc.aio.AioRpcError as exc:
            raise ChatError.from_rpc(exc) from None
        self.update_session(response.session)


@contextlib.asynccontextmanager
async def _channel(
    target: str, channel: grpc.aio.Channel | None
) -> AsyncIterator[grpc.aio.Channel]:
    """The caller's channel, or a new one closed on exit."""
    if channel is not None:
        yield channel
        return
    async with grpc.aio.insecure_channel(target) as own:
        yield own


@contextlib.asynccontextmanager
async def _rpc_errors() -> AsyncIterator[None]:
    """Failed RPCs surface as ChatError."""
    try:
        yield
    except grpc.aio.AioRpcError as exc:
        raise ChatError.from_rpc(exc) from None


async def register_account(
    target: str,
    phone_number: str,
    *,
    code: str,
    kind: int = 1,
    channel: grpc.aio.Channel | None = None,
) -> Account:
    """Verifies `phone_number` with `code` and registers it with a new primary device."""
    async with _rpc_errors(), _channel(target, channel) as open_channel:
        stub = users_grpc.UsersServiceStub(open_channel)
        keys = DeviceKeyMaterial.generate()
        started = await stub.StartVerification(
            users_pb.StartVerificationRequest(
                request_id=uuid.uuid4().hex, phone_number=phone_number, locale="en"
            ),
            timeout=RPC_TIMEOUT,
        )
        done = await stub.CompleteRegistration(
            users_pb.CompleteRegistrationRequest(
                request_id=uuid.uuid4().hex,
                verification_id=started.verification_id,
                code=code,
                registration_id=keys.registration_id,
                kind=kind,  # type: ignore[arg-type]
                keys=keys.public_keys(),
            ),
            timeout=RPC_TIMEOUT,
        )
    session = done.session
    return Account(
        done.user_id, session.device.device_id, session.access_token, session.refresh_token, keys
    )


async def link_device(
    target: str, approver: Account, *, kind: int = 3, channel: grpc.aio.Channel | None = None
) -> Account:
    """Links a new device to `approver`'s account, playing both sides of the QR flow."""
    async with _rpc_errors(), _channel(target, channel) as open_channel:
        stub = devices_grpc.DevicesServiceStub(open_channel)
        ephemeral = PrivateKey.generate()
        begun = await stub.BeginLink(
            devices_pb.BeginLinkRequest(
                request_id=uuid.uuid4().hex,
                ephemeral_public_key=bytes(ephemeral.public_key),
                kind=kind,  # type: ignore[arg-type]
            ),
            timeout=RPC_TIMEOUT,
        )
        # The existing device scans the code and sends the identity key pair, sealed to the
        # new device's ephemeral key.
        await stub.ApproveLink(
            devices_pb.ApproveLinkRequest(
                request_id=uuid.uuid4().hex,
                link_code=begun.link_code,
                encrypted_provisioning_message=seal_to_ephemeral(
                    bytes(ephemeral.public_key), bytes(approver.keys.identity)
                ),
            ),
            metadata=approver.metadata(),
            timeout=RPC_TIMEOUT,
        )
        approval = await stub.AwaitLinkApproval(
            devices_pb.AwaitLinkApprovalRequest(
                link_secret=begun.link_secret, wait=duration_pb2.Duration(seconds=10)
            ),
            timeout=RPC_TIMEOUT + 5,
        )
        identity = SigningKey(open_with(ephemeral, approval.encrypted_provisioning_message))
        new_keys = DeviceKeyMaterial.generate(identity)
        completed = await stub.CompleteLink(
            devices_pb.CompleteLinkRequest(
                request_id=uuid.uuid4().hex,
                link_secret=begun.link_secret,
                registration_id=new_keys.registration_id,
                keys=new_keys.public_keys(include_identity=False),
            ),
            timeout=RPC_TIMEOUT,
        )
    session = completed.session
    return Account(
        session.device.user_id,
        session.device.device_id,
        session.access_token,
        session.refresh_token,
        new_keys,
    )
