"""DevicesService over gRPC."""

from __future__ import annotations

from typing import Any

import grpc

from chatconnect.devices.domain import errors
from chatconnect.devices.domain.deletion import DeletionService
from chatconnect.devices.domain.linking import DeviceService
from chatconnect.devices.domain.models import DeleteScope, ReadMarker, Tombstone
from chatconnect.devices.domain.read_markers import ReadMarkerService
from chatconnect.devices.v1 import devices_pb2
from chatconnect.devices.v1 import devices_service_pb2 as pb
from chatconnect.devices.v1 import devices_service_pb2_grpc as pb_grpc
from chatconnect.keys.domain import errors as key_errors
from chatconnect.model import DeviceKind
from chatconnect.runtime import wire
from chatconnect.runtime.auth import Authenticator
from chatconnect.runtime.edge import ErrorTable, WireError, limit_details, unary
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
        errors.TooManyMarkers: WireError(Code.INVALID_ARGUMENT, "TOO_MANY_MARKERS", limit_details),
        errors.TooManyMessages: WireError(
            Code.INVALID_ARGUMENT, "TOO_MANY_MESSAGES", limit_details
        ),
        errors.PageTokenInvalid: WireError(Code.INVALID_ARGUMENT, "PAGE_TOKEN_INVALID"),
        errors.MessageNotFound: WireError(Code.NOT_FOUND, "MESSAGE_NOT_FOUND"),
        errors.NotMessageSender: WireError(Code.PERMISSION_DENIED, "NOT_MESSAGE_SENDER"),
        errors.NotGroupAdmin: WireError(Code.PERMISSION_DENIED, "NOT_GROUP_ADMIN"),
        errors.DeleteWindowPassed: WireError(Code.FAILED_PRECONDITION, "DELETE_WINDOW_PASSED"),
        key_errors.KeyInvalid: WireError(Code.INVALID_ARGUMENT, "KEY_INVALID"),
        key_errors.SignatureInvalid: WireError(Code.INVALID_ARGUMENT, "SIGNATURE_INVALID"),
    },
)


class DevicesServicer(pb_grpc.DevicesServiceServicer):
    """Listing, linking and unlinking devices; read markers and tombstones."""

    def __init__(
        self,
        *,
        devices: DeviceService,
        markers: ReadMarkerService,
        deletions: DeletionService,
        authenticator: Authenticator,
    ) -> None:
        self._devices = devices
        self._markers = markers
        self._deletions = deletions
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

    @unary(ERRORS, "DevicesService/UpdateReadMarkers")
    async def UpdateReadMarkers(
        self, request: pb.UpdateReadMarkersRequest, context: Context
    ) -> pb.UpdateReadMarkersResponse:
        caller = await authenticate(self._auth, context)
        stored = await self._markers.update(
            caller,
            request_id=request.request_id,
            markers=[_marker_from_wire(m) for m in request.markers],
        )
        return pb.UpdateReadMarkersResponse(markers=[_marker_to_wire(m) for m in stored])

    @unary(ERRORS, "DevicesService/ListReadMarkers")
    async def ListReadMarkers(
        self, request: pb.ListReadMarkersRequest, context: Context
    ) -> pb.ListReadMarkersResponse:
        caller = await authenticate(self._auth, context)
        markers, next_token = await self._markers.list_markers(
            caller, requested_page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListReadMarkersResponse(
            markers=[_marker_to_wire(m) for m in markers], next_page_token=next_token
        )

    @unary(ERRORS, "DevicesService/DeleteMessages")
    async def DeleteMessages(
        self, request: pb.DeleteMessagesRequest, context: Context
    ) -> pb.DeleteMessagesResponse:
        caller = await authenticate(self._auth, context)
        stored = await self._deletions.delete(
            caller,
            request_id=request.request_id,
            conversation=wire.conversation_from_wire(request.conversation),
            server_message_ids=list(request.server_message_ids),
            scope=wire.enum_from_wire(DeleteScope, request.scope, "scope"),
        )
        return pb.DeleteMessagesResponse(tombstones=[_tombstone_to_wire(t) for t in stored])

    @unary(ERRORS, "DevicesService/ListTombstones")
    async def ListTombstones(
        self, request: pb.ListTombstonesRequest, context: Context
    ) -> pb.ListTombstonesResponse:
        caller = await authenticate(self._auth, context)
        tombstones, next_token = await self._deletions.list_tombstones(
            caller,
            requested_page_size=request.page_size,
            page_token=request.page_token,
            since_time=wire.seconds(request.since_time),
        )
        return pb.ListTombstonesResponse(
            tombstones=[_tombstone_to_wire(t) for t in tombstones], next_page_token=next_token
        )


def _marker_from_wire(message: devices_pb2.ReadMarker) -> ReadMarker:
    return ReadMarker(
        conversation=wire.conversation_from_wire(message.conversation),
        read_through_time=wire.seconds(message.read_through_time),
        read_through_server_message_id=message.read_through_server_message_id,
    )


def _marker_to_wire(marker: ReadMarker) -> devices_pb2.ReadMarker:
    return devices_pb2.ReadMarker(
        conversation=wire.conversation_to_wire(marker.conversation),
        read_through_time=wire.timestamp(marker.read_through_time),
        read_through_server_message_id=marker.read_through_server_message_id,
    )


def _tombstone_to_wire(tombstone: Tombstone) -> devices_pb2.Tombstone:
    return devices_pb2.Tombstone(
        conversation=wire.conversation_to_wire(tombstone.conversation),
        server_message_id=tombstone.server_message_id,
        scope=int(tombstone.scope),  # type: ignore[arg-type]
        delete_time=wire.timestamp(tombstone.delete_time),
        deleted_by=wire.address_to_wire(tombstone.deleted_by),
    )
