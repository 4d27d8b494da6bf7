"""Router messages between Protobuf and the domain, and the router's error table.

The gateway uses the same conversions and table for the send frames of its stream.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf.message import Message

from chatconnect.errordetails.v1 import errordetails_pb2
from chatconnect.groups.domain import errors as group_errors
from chatconnect.groups.wire import stale_membership_details
from chatconnect.model import EnvelopeType
from chatconnect.router.domain import errors
from chatconnect.router.domain.models import (
    DeviceCiphertext,
    OutgoingMessage,
    ReceivedMessage,
    SendResult,
)
from chatconnect.router.v1 import router_pb2
from chatconnect.runtime import wire
from chatconnect.runtime.edge import ErrorTable, WireError, limit_details, retry_info_details
from chatconnect.sharding.errors import ShardMapBehind, StaleShardEpoch

Code = grpc.StatusCode


def _mismatch_details(exc: errors.DeviceListMismatchError) -> list[Message]:
    return [
        errordetails_pb2.DeviceListMismatchFailure(
            mismatches=[
                errordetails_pb2.DeviceListMismatch(
                    user_id=m.user_id,
                    missing_device_ids=list(m.missing),
                    extra_device_ids=list(m.extra),
                    stale_device_ids=list(m.stale),
                    current_devices=[wire.device_summary_to_wire(d) for d in m.current],
                )
                for m in exc.mismatches
            ]
        )
    ]


def _stale_epoch_details(exc: StaleShardEpoch) -> list[Message]:
    return [
        errordetails_pb2.StaleShardEpoch(
            request_epoch=exc.request_epoch, current_epoch=exc.current_epoch
        )
    ]


ERRORS = ErrorTable(
    "router.chatconnect",
    {
        errors.ClientMessageIdInvalid: WireError(
            Code.INVALID_ARGUMENT, "CLIENT_MESSAGE_ID_INVALID"
        ),
        errors.DestinationMissing: WireError(Code.INVALID_ARGUMENT, "DESTINATION_MISSING"),
        errors.CiphertextsMissing: WireError(Code.INVALID_ARGUMENT, "CIPHERTEXTS_MISSING"),
        errors.DeviceAddressedTwice: WireError(Code.INVALID_ARGUMENT, "DEVICE_ADDRESSED_TWICE"),
        errors.EnvelopeTypeInvalid: WireError(Code.INVALID_ARGUMENT, "ENVELOPE_TYPE_MISSING"),
        errors.ContentMissing: WireError(Code.INVALID_ARGUMENT, "CONTENT_MISSING"),
        errors.NotAParticipant: WireError(Code.INVALID_ARGUMENT, "NOT_A_PARTICIPANT"),
        errors.EnvelopeTooLarge: WireError(
            Code.RESOURCE_EXHAUSTED, "ENVELOPE_TOO_LARGE", limit_details
        ),
        errors.TooManyDevices: WireError(
            Code.RESOURCE_EXHAUSTED, "TOO_MANY_DEVICES", limit_details
        ),
        group_errors.GroupNotFound: WireError(Code.NOT_FOUND, "GROUP_NOT_FOUND"),
        group_errors.NotAMember: WireError(Code.PERMISSION_DENIED, "NOT_A_MEMBER"),
        errors.MessageNotFound: WireError(Code.NOT_FOUND, "MESSAGE_NOT_FOUND"),
        errors.NotMessageSender: WireError(Code.PERMISSION_DENIED, "NOT_MESSAGE_SENDER"),
        errors.OnlyAdminsSend: WireError(Code.PERMISSION_DENIED, "ONLY_ADMINS_SEND"),
        group_errors.MembershipVersionStale: WireError(
            Code.FAILED_PRECONDITION, "MEMBERSHIP_VERSION_STALE", stale_membership_details
        ),
        errors.TooManyKeyDistributions: WireError(
            Code.RESOURCE_EXHAUSTED, "TOO_MANY_DEVICES", limit_details
        ),
        errors.GroupContentMissing: WireError(Code.INVALID_ARGUMENT, "CONTENT_MISSING"),
        errors.TooManyIds: WireError(Code.INVALID_ARGUMENT, "TOO_MANY_IDS", limit_details),
        errors.ReceiptTypeInvalid: WireError(Code.INVALID_ARGUMENT, "RECEIPT_TYPE_INVALID"),
        errors.PageTokenInvalid: WireError(Code.INVALID_ARGUMENT, "PAGE_TOKEN_INVALID"),
        errors.DeviceListMismatchError: WireError(
            Code.FAILED_PRECONDITION,
            "DEVICE_LIST_MISMATCH",
            _mismatch_details,
        ),
        StaleShardEpoch: WireError(
            Code.FAILED_PRECONDITION, "STALE_SHARD_EPOCH", _stale_epoch_details
        ),
        ShardMapBehind: WireError(Code.UNAVAILABLE, "SHARD_MAP_BEHIND", retry_info_details),
    },
)


def outgoing_from_wire(message: router_pb2.OutgoingMessage) -> OutgoingMessage:
    """A send from the wire; unknown enum values are rejected."""
    return OutgoingMessage(
        client_message_id=message.client_message_id,
        destination=wire.conversation_from_wire(message.destination),
        ciphertexts=tuple(
            DeviceCiphertext(
                device=wire.address_from_wire(c.device),
                registration_id=c.registration_id,
                type=wire.enum_from_wire(EnvelopeType, c.type, f"ciphertexts[{i}].type"),
                content=c.content,
            )
            for i, c in enumerate(message.ciphertexts)
        ),
        urgent=message.urgent,
        shard_epoch=message.shard_epoch,
        group_membership_version=message.group_membership_version,
        group_content=message.group_content,
    )


def send_result_to_wire(result: SendResult) -> router_pb2.SendResult:
    """A send result to the wire."""
    return router_pb2.SendResult(
        client_message_id=result.client_message_id,
        server_message_id=result.server_message_id,
        server_time=wire.timestamp(result.server_time),
        duplicate=result.duplicate,
    )


def received_from_wire(messages: Iterable[router_pb2.ReceivedMessage]) -> list[ReceivedMessage]:
    """The messages of a receipt request."""
    return [ReceivedMessage(m.sender_user_id, m.server_message_id, m.group_id) for m in messages]
