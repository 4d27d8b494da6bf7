"""DevicesService over gRPC."""

from __future__ import annotations

from typing import Any

import grpc

from chatconnect.devices.domain import errors
from chatconnect.devices.domain.linking import DeviceService
from chatconnect.devices.v1 import devices_pb2
from chatconnect.devices.v1 import devices_service_pb2 as pb
from chatconnect.devices.v1 import devices_service_pb2_grpc as pb_grpc
from chatconnect.keys.domain import errors as key_errors
from chatconnect.model import DeviceKind
from chatconnect.runtime import wire
from chatconnect.runtime.auth import Authenticator
from chatconnect.runtime.edge import ErrorTable, WireError, not_served, unary
from chatconnect.runtime.guard import authenticate, client_ip

Code = grpc.StatusCode
Context = grpc.aio.ServicerContext[Any, Any]

ERRORS = ErrorTable(
    "devices.chatconnect",
    {
        errors.LinkCodeNotFound: WireError(Code.NOT_FOUND, "LINK_CODE_NOT_FOUND"),
        errors.LinkNotFound: WireError(Code.NOT_FOUND, "LINK_NOT_FOUND"),
        errors.LinkCodeExpired: WireError(Code.FAILED_PRECONDITION, "LINK_CODE_EXPIRED"),
        errors.LinkAlreadyApproved: WireError(Code.FAILED_PRECONDITION, "LINK_ALREADY_APPROVED"),
        errors.LinkNotApproved: WireError(Code.FAILED_PRECONDITION, "LINK_NOT_APPROVED"),
        errors.DeviceLimitReached: WireError(Code.RESOURCE_EXHAUSTED, "DEVICE_LIMIT_REACHED"),
        errors.NotPrimaryDevice: WireError(Code.PERMISSION_DENIED, "NOT_PRIMARY_DEVICE"),
        key_errors.KeyInvalid: WireError(Code.INVALID_ARGUMENT, "KEY_INVALID"),
        key_errors.SignatureInvalid: WireError(Code.INVALID_ARGUMENT, "SIGNATURE_INVALID"),
    },
)


class DevicesServicer(pb_grpc.DevicesServiceServicer):
    """Listing, linking and unlinking. Read markers and tombstones are not served yet: they
    answer UNIMPLEMENTED with reason NOT_SERVED_YET."""

    def __init__(self, *, devices: DeviceService, authenticator: Authenticator) -> None:
        self._devices = devices
        self._auth = authenticator

    @unary(ERRORS, "DevicesService/ListDevices")
    async def ListDevices(
        self, request: pb.ListDevicesRequest, context: Context
    ) -> pb.ListDevicesResponse:
        caller = await authenticate(self._auth, context)
        devices = await self._devices.list_devices(caller)
        return pb.ListDevicesResponse(
            devices=[
                devices_pb2.Device(
                    device_id=d.device_id,
                    registration_id=d.registration_id,
                    kind=int(d.kind),  # type: ignore[arg-type]
                    encrypted_name=d.encrypted_name,
                    created_time=wire.timestamp(d.created_at),
                    last_seen_time=wire.timestamp(d.last_seen_at),
                    primary=d.primary,
                )
                for d in devices
            ]
        )

    @unary(ERRORS, "DevicesService/BeginLink")
    async def BeginLink(
        self, request: pb.BeginLinkRequest, context: Context
    ) -> pb.BeginLinkResponse:
        link, secret = await self._devices.begin_link(
            request_id=request.request_id,
            ephemeral_key=request.ephemeral_public_key,
            kind=wire.enum_from_wire(DeviceKind, request.kind, "kind"),
            client_ip=client_ip(context),
        )
        return pb.BeginLinkResponse(
            link_code=link.link_code,
            link_secret=secret,
            expire_time=wire.timestamp(link.expires_at),
        )

    @unary(ERRORS, "DevicesService/ApproveLink")
    async def ApproveLink(
        self, request: pb.ApproveLinkRequest, context: Context
    ) -> pb.ApproveLinkResponse:
        caller = await authenticate(self._auth, context)
        device_id = await self._devices.approve_link(
            caller,
            request_id=request.request_id,
            link_code=request.link_code,
            provisioning=request.encrypted_provisioning_message,
        )
        return pb.ApproveLinkResponse(device_id=device_id)

    @unary(ERRORS, "DevicesService/AwaitLinkApproval")
    async def AwaitLinkApproval(
        self, request: pb.AwaitLinkApprovalRequest, context: Context
    ) -> pb.AwaitLinkApprovalResponse:
        device_id, provisioning = await self._devices.await_approval(
            link_secret=request.link_secret, wait_seconds=request.wait.ToNanoseconds() / 1e9
        )
        return pb.AwaitLinkApprovalResponse(
            device_id=device_id, encrypted_provisioning_message=provisioning
        )

    @unary(ERRORS, "DevicesService/CompleteLink")
    async def CompleteLink(
        self, request: pb.CompleteLinkRequest, context: Context
    ) -> pb.CompleteLinkResponse:
        session = await self._devices.complete_link(
            request_id=request.request_id,
            link_secret=request.link_secret,
            registration_id=request.registration_id,
            keys=wire.device_keys_from_wire(request.keys, b""),
            encrypted_name=request.encrypted_name,
        )
        return pb.CompleteLinkResponse(session=wire.session_to_wire(session))

    @unary(ERRORS, "DevicesService/UnlinkDevice")
    async def UnlinkDevice(
        self, request: pb.UnlinkDeviceRequest, context: Context
    ) -> pb.UnlinkDeviceResponse:
        caller = await authenticate(self._auth, context)
        await self._devices.unlink(
            caller, request_id=request.request_id, device_id=request.device_id
        )
        return pb.UnlinkDeviceResponse()

    UpdateReadMarkers = not_served(ERRORS, "DevicesService/UpdateReadMarkers")
    ListReadMarkers = not_served(ERRORS, "DevicesService/ListReadMarkers")
    DeleteMessages = not_served(ERRORS, "DevicesService/DeleteMessages")
    ListTombstones = not_served(ERRORS, "DevicesService/ListTombstones")
