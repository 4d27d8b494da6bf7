"""GroupsService over gRPC: authenticate, convert, call the domain. GetMessageReceiptSummary
is served by the router's receipt aggregation, not here (UNIMPLEMENTED until wired)."""

from __future__ import annotations

import time
from typing import Any

import grpc

from chatconnect.groups.domain.admin import GroupAdmin
from chatconnect.groups.domain.bans import GroupBans
from chatconnect.groups.domain.invites import GroupInvites
from chatconnect.groups.domain.models import GroupRole, InviteLink
from chatconnect.groups.domain.queries import GroupQueries
from chatconnect.groups.domain.results import AddResult, InviteResult
from chatconnect.groups.v1 import groups_pb2
from chatconnect.groups.v1 import groups_service_pb2 as pb
from chatconnect.groups.v1 import groups_service_pb2_grpc as pb_grpc
from chatconnect.groups.wire import (
    ERRORS,
    ban_to_wire,
    failure_to_wire,
    group_to_wire,
    info_from_wire,
    invite_to_wire,
    join_request_to_wire,
    member_devices_to_wire,
    member_to_wire,
    preview_to_wire,
    settings_from_wire,
)
from chatconnect.router.domain.group_reading import GroupReading
from chatconnect.runtime import wire
from chatconnect.runtime.auth import Authenticator
from chatconnect.runtime.edge import unary
from chatconnect.runtime.guard import authenticate

Context = grpc.aio.ServicerContext[Any, Any]


def _invite(result: InviteResult) -> InviteLink:
    return InviteLink(
        result.link_code, result.link_created_by, result.link_created_at, result.link_expires_at
    )


def _added(result: AddResult) -> dict[str, Any]:
    return {
        "group": group_to_wire(result.group),
        "added": [member_to_wire(m) for m in result.added],
    }


class GroupsServicer(pb_grpc.GroupsServiceServicer):
    """Group membership, settings, invite links, join requests and bans."""

    def __init__(
        self,
        *,
        admin: GroupAdmin,
        bans: GroupBans,
        invites: GroupInvites,
        queries: GroupQueries,
        receipts: GroupReading,
        authenticator: Authenticator,
    ) -> None:
        self._admin = admin
        self._bans = bans
        self._invites = invites
        self._queries = queries
        self._receipts = receipts
        self._auth = authenticator

    async def _caller(self, context: Context) -> str:
        return (await authenticate(self._auth, context)).user_id

    # --- the group -----------------------------------------------------------------------

    @unary(ERRORS, "GroupsService/CreateGroup")
    async def CreateGroup(
        self, request: pb.CreateGroupRequest, context: Context
    ) -> pb.CreateGroupResponse:
        caller = await self._caller(context)
        result = await self._admin.create(
            caller,
            request_id=request.request_id,
            info=info_from_wire(request.info),
            settings=settings_from_wire(request.settings),
            member_ids=list(request.member_user_ids),
        )
        return pb.CreateGroupResponse(
            group=group_to_wire(result.group),
            not_added=[failure_to_wire(f) for f in result.not_added],
        )

    @unary(ERRORS, "GroupsService/GetGroup")
    async def GetGroup(self, request: pb.GetGroupRequest, context: Context) -> pb.GetGroupResponse:
        caller = await self._caller(context)
        view = await self._queries.get(caller, group_id=request.group_id)
        return pb.GetGroupResponse(group=group_to_wire(view))

    @unary(ERRORS, "GroupsService/UpdateGroupInfo")
    async def UpdateGroupInfo(
        self, request: pb.UpdateGroupInfoRequest, context: Context
    ) -> pb.UpdateGroupInfoResponse:
        caller = await self._caller(context)
        result = await self._admin.update_info(
            caller,
            request_id=request.request_id,
            group_id=request.group_id,
            info=info_from_wire(request.info),
            expected_revision=request.expected_revision,
        )
        return pb.UpdateGroupInfoResponse(group=group_to_wire(result.group))

    @unary(ERRORS, "GroupsService/UpdateGroupSettings")
    async def UpdateGroupSettings(
        self, request: pb.UpdateGroupSettingsRequest, context: Context
    ) -> pb.UpdateGroupSettingsResponse:
        caller = await self._caller(context)
        # Unknown paths keep their names, so the domain rejects them as UPDATE_MASK_INVALID.
        values = {
            path: bool(getattr(request.settings, path, False)) for path in request.update_mask.paths
        }
        result = await self._admin.update_settings(
            caller,
            request_id=request.request_id,
            group_id=request.group_id,
            values=values,
            expected_revision=request.expected_revision,
        )
        return pb.UpdateGroupSettingsResponse(group=group_to_wire(result.group))

    # --- members -------------------------------------------------------------------------

    @unary(ERRORS, "GroupsService/AddMembers")
    async def AddMembers(
        self, request: pb.AddMembersRequest, context: Context
    ) -> pb.AddMembersResponse:
        caller = await self._caller(context)
        result = await self._admin.add_members(
            caller,
            request_id=request.request_id,
            group_id=request.group_id,
            user_ids=list(request.user_ids),
        )
        return pb.AddMembersResponse(
            **_added(result), not_added=[failure_to_wire(f) for f in result.not_added]
        )

    @unary(ERRORS, "GroupsService/RemoveMembers")
    async def RemoveMembers(
        self, request: pb.RemoveMembersRequest, context: Context
    ) -> pb.RemoveMembersResponse:
        caller = await self._caller(context)
        result = await self._admin.remove_members(
            caller,
            request_id=request.request_id,
            group_id=request.group_id,
            user_ids=list(request.user_ids),
        )
        return pb.RemoveMembersResponse(
            group=group_to_wire(result.group), removed_user_ids=list(result.removed)
        )

    @unary(ERRORS, "GroupsService/LeaveGroup")
    async def LeaveGroup(
        self, request: pb.LeaveGroupRequest, context: Context
    ) -> pb.LeaveGroupResponse:
        caller = await self._caller(context)
        result = await self._admin.leave(
            caller, request_id=request.request_id, group_id=request.group_id
        )
        return pb.LeaveGroupResponse(
            membership_version=result.membership_version,
            revision=result.revision,
            group_deleted=result.group_deleted,
        )

    @unary(ERRORS, "GroupsService/UpdateMemberRole")
    async def UpdateMemberRole(
        self, request: pb.UpdateMemberRoleRequest, context: Context
    ) -> pb.UpdateMemberRoleResponse:
        caller = await self._caller(context)
        result = await self._admin.update_role(
            caller,
            request_id=request.request_id,
            group_id=request.group_id,
            user_id=request.user_id,
            role=wire.enum_from_wire(GroupRole, request.role, "role"),
        )
        return pb.UpdateMemberRoleResponse(
            group=group_to_wire(result.group), member=member_to_wire(result.member)
        )

    # --- bans ----------------------------------------------------------------------------

    @unary(ERRORS, "GroupsService/BanMembers")
    async def BanMembers(
        self, request: pb.BanMembersRequest, context: Context
    ) -> pb.BanMembersResponse:
        caller = await self._caller(context)
        result = await self._bans.ban(
            caller,
            request_id=request.request_id,
            group_id=request.group_id,
            user_ids=list(request.user_ids),
        )
        return pb.BanMembersResponse(
            group=group_to_wire(result.group), banned=[ban_to_wire(b) for b in result.banned]
        )

    @unary(ERRORS, "GroupsService/UnbanMembers")
    async def UnbanMembers(
        self, request: pb.UnbanMembersRequest, context: Context
    ) -> pb.UnbanMembersResponse:
        caller = await self._caller(context)
        result = await self._bans.unban(
            caller,
            request_id=request.request_id,
            group_id=request.group_id,
            user_ids=list(request.user_ids),
        )
        return pb.UnbanMembersResponse(
            group=group_to_wire(result.group), unbanned_user_ids=list(result.unbanned)
        )

    @unary(ERRORS, "GroupsService/ListBannedMembers")
    async def ListBannedMembers(
        self, request: pb.ListBannedMembersRequest, context: Context
    ) -> pb.ListBannedMembersResponse:
        caller = await self._caller(context)
        page = await self._bans.list_bans(
            caller, group_id=request.group_id, size=request.page_size, token=request.page_token
        )
        return pb.ListBannedMembersResponse(
            banned=[ban_to_wire(b) for b in page.items], next_page_token=page.next_token
        )

    # --- invite links --------------------------------------------------------------------

    @unary(ERRORS, "GroupsService/CreateInviteLink")
    async def CreateInviteLink(
        self, request: pb.CreateInviteLinkRequest, context: Context
    ) -> pb.CreateInviteLinkResponse:
        caller = await self._caller(context)
        result = await self._invites.create_link(
            caller, request_id=request.request_id, group_id=request.group_id
        )
        return pb.CreateInviteLinkResponse(
            invite_link=invite_to_wire(_invite(result)), revision=result.revision
        )

    @unary(ERRORS, "GroupsService/GetInviteLink")
    async def GetInviteLink(
        self, request: pb.GetInviteLinkRequest, context: Context
    ) -> pb.GetInviteLinkResponse:
        caller = await self._caller(context)
        link = await self._invites.get_link(caller, group_id=request.group_id)
        return pb.GetInviteLinkResponse(invite_link=invite_to_wire(link))

    @unary(ERRORS, "GroupsService/RevokeInviteLink")
    async def RevokeInviteLink(
        self, request: pb.RevokeInviteLinkRequest, context: Context
    ) -> pb.RevokeInviteLinkResponse:
        caller = await self._caller(context)
        result = await self._invites.revoke_link(
            caller, request_id=request.request_id, group_id=request.group_id
        )
        return pb.RevokeInviteLinkResponse(revision=result.revision)

    @unary(ERRORS, "GroupsService/GetInviteLinkPreview")
    async def GetInviteLinkPreview(
        self, request: pb.GetInviteLinkPreviewRequest, context: Context
    ) -> pb.GetInviteLinkPreviewResponse:
        caller = await self._caller(context)
        preview = await self._invites.preview(caller, code=request.invite_code)
        return pb.GetInviteLinkPreviewResponse(preview=preview_to_wire(preview))

    @unary(ERRORS, "GroupsService/JoinGroupByInviteLink")
    async def JoinGroupByInviteLink(
        self, request: pb.JoinGroupByInviteLinkRequest, context: Context
    ) -> pb.JoinGroupByInviteLinkResponse:
        caller = await self._caller(context)
        result = await self._invites.join(
            caller, request_id=request.request_id, code=request.invite_code
        )
        response = pb.JoinGroupByInviteLinkResponse(outcome=int(result.outcome))  # type: ignore[arg-type]
        if result.group is not None:
            response.group.CopyFrom(group_to_wire(result.group))
        if result.join_request is not None:
            response.join_request.CopyFrom(join_request_to_wire(result.join_request))
        return response

    # --- join requests -------------------------------------------------------------------

    @unary(ERRORS, "GroupsService/ListJoinRequests")
    async def ListJoinRequests(
        self, request: pb.ListJoinRequestsRequest, context: Context
    ) -> pb.ListJoinRequestsResponse:
        caller = await self._caller(context)
        page = await self._invites.list_requests(
            caller, group_id=request.group_id, size=request.page_size, token=request.page_token
        )
        return pb.ListJoinRequestsResponse(
            join_requests=[join_request_to_wire(r) for r in page.items],
            next_page_token=page.next_token,
        )

    @unary(ERRORS, "GroupsService/ApproveJoinRequests")
    async def ApproveJoinRequests(
        self, request: pb.ApproveJoinRequestsRequest, context: Context
    ) -> pb.ApproveJoinRequestsResponse:
        caller = await self._caller(context)
        result = await self._invites.approve(
            caller,
            request_id=request.request_id,
            group_id=request.group_id,
            user_ids=list(request.user_ids),
        )
        return pb.ApproveJoinRequestsResponse(**_added(result))

    @unary(ERRORS, "GroupsService/DenyJoinRequests")
    async def DenyJoinRequests(
        self, request: pb.DenyJoinRequestsRequest, context: Context
    ) -> pb.DenyJoinRequestsResponse:
        caller = await self._caller(context)
        result = await self._invites.deny(
            caller,
            request_id=request.request_id,
            group_id=request.group_id,
            user_ids=list(request.user_ids),
        )
        return pb.DenyJoinRequestsResponse(denied_user_ids=list(result.denied))

    # --- listings ------------------------------------------------------------------------

    @unary(ERRORS, "GroupsService/ListMembers")
    async def ListMembers(
        self, request: pb.ListMembersRequest, context: Context
    ) -> pb.ListMembersResponse:
        caller = await self._caller(context)
        page = await self._queries.members(
            caller, group_id=request.group_id, size=request.page_size, token=request.page_token
        )
        return pb.ListMembersResponse(
            members=[member_to_wire(m) for m in page.members],
            membership_version=page.membership_version,
            next_page_token=page.next_token,
        )

    @unary(ERRORS, "GroupsService/ListMyGroups")
    async def ListMyGroups(
        self, request: pb.ListMyGroupsRequest, context: Context
    ) -> pb.ListMyGroupsResponse:
        caller = await self._caller(context)
        page = await self._queries.my_groups(
            caller, size=request.page_size, token=request.page_token
        )
        return pb.ListMyGroupsResponse(
            groups=[group_to_wire(v) for v in page.items], next_page_token=page.next_token
        )

    @unary(ERRORS, "GroupsService/GetGroupDevices")
    async def GetGroupDevices(
        self, request: pb.GetGroupDevicesRequest, context: Context
    ) -> pb.GetGroupDevicesResponse:
        caller = await authenticate(self._auth, context)
        page = await self._queries.devices(
            caller, group_id=request.group_id, size=request.page_size, token=request.page_token
        )
        return pb.GetGroupDevicesResponse(
            members=[member_devices_to_wire(u, d) for u, d in page.members],
            membership_version=page.membership_version,
            next_page_token=page.next_token,
        )

    @unary(ERRORS, "GroupsService/GetMessageReceiptSummary")
    async def GetMessageReceiptSummary(
        self, request: pb.GetMessageReceiptSummaryRequest, context: Context
    ) -> pb.GetMessageReceiptSummaryResponse:
        caller = await authenticate(self._auth, context)
        message, counts = await self._receipts.summary(
            caller, request.group_id, request.server_message_id
        )
        return pb.GetMessageReceiptSummaryResponse(
            summary=groups_pb2.ReceiptSummary(
                server_message_id=message.server_message_id,
                recipient_count=message.recipient_count,
                delivered_count=counts.delivered,
                read_count=counts.read,
                played_count=counts.played,
                update_time=wire.timestamp(time.time()),
            )
        )
