"""Conversions between the groups Protobuf messages and domain types, and the error
table of the groups service."""

from __future__ import annotations

from google.protobuf.message import Message
from grpc import StatusCode as Code

from chatconnect.devices.domain.models import DeviceRecord
from chatconnect.groups.domain import errors
from chatconnect.groups.domain.invites import InvitePreview
from chatconnect.groups.domain.models import (
    Ban,
    GroupInfo,
    GroupSettings,
    InviteLink,
    JoinRequest,
    Member,
)
from chatconnect.groups.domain.results import AddFailure, GroupView
from chatconnect.groups.v1 import groups_pb2
from chatconnect.model import DeviceSummary
from chatconnect.router.domain import errors as router_errors
from chatconnect.runtime import wire
from chatconnect.runtime.edge import ErrorTable, WireError, limit_details


def stale_membership_details(exc: errors.MembershipVersionStale) -> list[Message]:
    """The MembershipVersionStale detail (shared with the router's group sends)."""
    return [
        groups_pb2.MembershipVersionStale(
            group_id=exc.group_id,
            request_membership_version=exc.requested,
            current_membership_version=exc.current,
        )
    ]


ERRORS = ErrorTable(
    "groups.chatconnect",
    {
        errors.GroupIdInvalid: WireError(Code.INVALID_ARGUMENT, "GROUP_ID_INVALID"),
        errors.GroupNotFound: WireError(Code.NOT_FOUND, "GROUP_NOT_FOUND"),
        router_errors.MessageNotFound: WireError(Code.NOT_FOUND, "MESSAGE_NOT_FOUND"),
        router_errors.NotMessageSender: WireError(Code.PERMISSION_DENIED, "NOT_MESSAGE_SENDER"),
        errors.NotAMember: WireError(Code.PERMISSION_DENIED, "NOT_A_MEMBER"),
        errors.NotGroupAdmin: WireError(Code.PERMISSION_DENIED, "NOT_GROUP_ADMIN"),
        errors.NotGroupOwner: WireError(Code.PERMISSION_DENIED, "NOT_GROUP_OWNER"),
        errors.CannotRemoveOwner: WireError(Code.PERMISSION_DENIED, "CANNOT_REMOVE_OWNER"),
        errors.CannotChangeOwnerRole: WireError(Code.PERMISSION_DENIED, "CANNOT_CHANGE_OWNER_ROLE"),
        errors.MemberNotFound: WireError(Code.NOT_FOUND, "MEMBER_NOT_FOUND"),
        errors.RoleInvalid: WireError(Code.INVALID_ARGUMENT, "ROLE_INVALID"),
        errors.CannotBanSelf: WireError(Code.INVALID_ARGUMENT, "CANNOT_BAN_SELF"),
        errors.UpdateMaskInvalid: WireError(Code.INVALID_ARGUMENT, "UPDATE_MASK_INVALID"),
        errors.RevisionConflict: WireError(Code.FAILED_PRECONDITION, "REVISION_CONFLICT"),
        errors.InviteLinkNotFound: WireError(Code.NOT_FOUND, "INVITE_LINK_NOT_FOUND"),
        errors.Banned: WireError(Code.PERMISSION_DENIED, "BANNED"),
        errors.PageSizeInvalid: WireError(Code.INVALID_ARGUMENT, "PAGE_SIZE_INVALID"),
        errors.PageTokenInvalid: WireError(Code.INVALID_ARGUMENT, "PAGE_TOKEN_INVALID"),
        errors.MembershipVersionStale: WireError(
            Code.FAILED_PRECONDITION, "MEMBERSHIP_VERSION_STALE", stale_membership_details
        ),
        errors.InfoTooLarge: WireError(Code.INVALID_ARGUMENT, "INFO_TOO_LARGE", limit_details),
        errors.TooManyUsers: WireError(Code.INVALID_ARGUMENT, "TOO_MANY_USERS", limit_details),
        errors.GroupFull: WireError(Code.RESOURCE_EXHAUSTED, "GROUP_FULL", limit_details),
        errors.TooManyGroups: WireError(Code.RESOURCE_EXHAUSTED, "TOO_MANY_GROUPS", limit_details),
        errors.TooManyBans: WireError(Code.RESOURCE_EXHAUSTED, "TOO_MANY_BANS", limit_details),
        errors.TooManyJoinRequests: WireError(
            Code.RESOURCE_EXHAUSTED, "TOO_MANY_JOIN_REQUESTS", limit_details
        ),
    },
)


def info_from_wire(message: groups_pb2.GroupInfo) -> GroupInfo:
    """GroupInfo from the wire."""
    return GroupInfo(
        message.encrypted_title, message.encrypted_description, message.avatar_media_id
    )


def info_to_wire(info: GroupInfo) -> groups_pb2.GroupInfo:
    """GroupInfo to the wire."""
    return groups_pb2.GroupInfo(
        encrypted_title=info.encrypted_title,
        encrypted_description=info.encrypted_description,
        avatar_media_id=info.avatar_media_id,
    )


def settings_from_wire(message: groups_pb2.GroupSettings) -> GroupSettings:
    """GroupSettings from the wire."""
    return GroupSettings(
        only_admins_send=message.only_admins_send,
        only_admins_edit_info=message.only_admins_edit_info,
        join_approval_required=message.join_approval_required,
        only_admins_add_members=message.only_admins_add_members,
    )


def settings_to_wire(settings: GroupSettings) -> groups_pb2.GroupSettings:
    """GroupSettings to the wire."""
    return groups_pb2.GroupSettings(
        only_admins_send=settings.only_admins_send,
        only_admins_edit_info=settings.only_admins_edit_info,
        join_approval_required=settings.join_approval_required,
        only_admins_add_members=settings.only_admins_add_members,
    )


def group_to_wire(view: GroupView) -> groups_pb2.Group:
    """A group as the caller sees it."""
    record = view.record
    return groups_pb2.Group(
        group_id=record.group_id,
        info=info_to_wire(record.info),
        settings=settings_to_wire(record.settings),
        membership_version=record.membership_version,
        revision=record.revision,
        member_count=record.member_count,
        max_members=view.max_members,
        caller_role=int(view.caller_role),  # type: ignore[arg-type]
        created_by_user_id=record.created_by,
        create_time=wire.timestamp(record.created_at),
    )


def member_to_wire(member: Member) -> groups_pb2.GroupMember:
    """A member to the wire."""
    return groups_pb2.GroupMember(
        user_id=member.user_id,
        role=int(member.role),  # type: ignore[arg-type]
        added_by_user_id=member.added_by,
        join_time=wire.timestamp(member.joined_at),
    )


def failure_to_wire(failure: AddFailure) -> groups_pb2.AddMemberFailure:
    """A user that was not added, and why."""
    return groups_pb2.AddMemberFailure(
        user_id=failure.user_id,
        reason=int(failure.reason),  # type: ignore[arg-type]
    )


def ban_to_wire(ban: Ban) -> groups_pb2.BannedMember:
    """A ban to the wire."""
    return groups_pb2.BannedMember(
        user_id=ban.user_id, banned_by_user_id=ban.banned_by, ban_time=wire.timestamp(ban.banned_at)
    )


def join_request_to_wire(request: JoinRequest) -> groups_pb2.JoinRequest:
    """A join request to the wire."""
    return groups_pb2.JoinRequest(
        user_id=request.user_id, request_time=wire.timestamp(request.requested_at)
    )


def invite_to_wire(link: InviteLink) -> groups_pb2.InviteLink:
    """An invite link to the wire (no expire_time when it never expires)."""
    message = groups_pb2.InviteLink(
        invite_code=link.code,
        created_by_user_id=link.created_by,
        create_time=wire.timestamp(link.created_at),
        use_count=link.use_count,
    )
    if link.expires_at > 0:
        message.expire_time.CopyFrom(wire.timestamp(link.expires_at))
    return message


def preview_to_wire(preview: InvitePreview) -> groups_pb2.InviteLinkPreview:
    """What a non-member sees before joining."""
    return groups_pb2.InviteLinkPreview(
        group_id=preview.group_id,
        info=info_to_wire(preview.info),
        member_count=preview.member_count,
        join_approval_required=preview.join_approval_required,
    )


def member_devices_to_wire(user_id: str, devices: list[DeviceRecord]) -> groups_pb2.MemberDevices:
    """One member's devices, for sender key distribution."""
    return groups_pb2.MemberDevices(
        user_id=user_id,
        devices=[
            wire.device_summary_to_wire(
                DeviceSummary(d.device_id, d.registration_id, d.kind, d.created_at)
            )
            for d in devices
        ],
    )
