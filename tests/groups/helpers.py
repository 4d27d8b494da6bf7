"""Calling GroupsService as a client would: raw stubs with a device's access token, and
the checks a client makes on a failed call."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from chatconnect.client import Account, ChatError
from chatconnect.errordetails.v1 import errordetails_pb2
from chatconnect.groups.v1 import groups_pb2
from chatconnect.groups.v1 import groups_service_pb2 as pb
from chatconnect.groups.v1 import groups_service_pb2_grpc as pb_grpc
from tests.conftest import Server

DOMAIN = "groups.chatconnect"
Code = grpc.StatusCode
MEMBER = groups_pb2.GROUP_ROLE_MEMBER
ADMIN = groups_pb2.GROUP_ROLE_ADMIN
OWNER = groups_pb2.GROUP_ROLE_OWNER


def rid() -> str:
    """A fresh request id."""
    return uuid.uuid4().hex


class GroupsCaller:
    """One device calling GroupsService."""

    def __init__(self, server: Server, account: Account) -> None:
        self.account = account
        self.user_id = account.user_id
        self._channel = server.channel()
        self.stub = pb_grpc.GroupsServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def call(self, method: str, request: Any) -> Any:
        """`method` with this device's token; a failure raises ChatError."""
        try:
            return await getattr(self.stub, method)(
                request, metadata=self.account.metadata(), timeout=30
            )
        except grpc.aio.AioRpcError as exc:
            raise ChatError.from_rpc(exc) from None

    # --- shorthands for the calls most tests make -----------------------------------------

    async def create(
        self, *members: str, settings: groups_pb2.GroupSettings | None = None
    ) -> pb.CreateGroupResponse:
        return await self.call(
            "CreateGroup",
            pb.CreateGroupRequest(
                request_id=rid(),
                info=groups_pb2.GroupInfo(encrypted_title=b"title"),
                settings=settings or groups_pb2.GroupSettings(),
                member_user_ids=list(members),
            ),
        )

    async def get(self, group_id: str) -> groups_pb2.Group:
        return (await self.call("GetGroup", pb.GetGroupRequest(group_id=group_id))).group

    async def add(self, group_id: str, *users: str) -> pb.AddMembersResponse:
        return await self.call(
            "AddMembers", pb.AddMembersRequest(request_id=rid(), group_id=group_id, user_ids=users)
        )

    async def remove(self, group_id: str, *users: str) -> pb.RemoveMembersResponse:
        return await self.call(
            "RemoveMembers",
            pb.RemoveMembersRequest(request_id=rid(), group_id=group_id, user_ids=users),
        )

    async def set_role(self, group_id: str, user_id: str, role: int) -> pb.UpdateMemberRoleResponse:
        return await self.call(
            "UpdateMemberRole",
            pb.UpdateMemberRoleRequest(
                request_id=rid(),
                group_id=group_id,
                user_id=user_id,
                role=role,  # type: ignore[arg-type]
            ),
        )

    async def members(self, group_id: str) -> dict[str, int]:
        """Every member and its role, through every page."""
        found: dict[str, int] = {}
        token = ""
        while True:
            page = await self.call(
                "ListMembers", pb.ListMembersRequest(group_id=group_id, page_token=token)
            )
            found.update({m.user_id: m.role for m in page.members})
            token = page.next_page_token
            if not token:
                return found

    async def invite(self, group_id: str) -> groups_pb2.InviteLink:
        response = await self.call(
            "CreateInviteLink", pb.CreateInviteLinkRequest(request_id=rid(), group_id=group_id)
        )
        return response.invite_link

    async def join(self, code: str) -> pb.JoinGroupByInviteLinkResponse:
        return await self.call(
            "JoinGroupByInviteLink",
            pb.JoinGroupByInviteLinkRequest(request_id=rid(), invite_code=code),
        )


async def rejected(call: Awaitable[Any], code: grpc.StatusCode, reason: str) -> ChatError:
    """The error of a call that must fail with `code` and ErrorInfo `reason` (domain
    groups.chatconnect)."""
    with pytest.raises(ChatError) as caught:
        await call
    error = caught.value
    info = error.detail(error_details_pb2.ErrorInfo)
    assert info is not None, f"no ErrorInfo in {error}"
    assert (error.code, info.reason, info.domain) == (code, reason, DOMAIN), str(error)
    return error


def limit(error: ChatError) -> errordetails_pb2.LimitExceeded:
    """The LimitExceeded detail a limit error must carry."""
    detail = error.detail(errordetails_pb2.LimitExceeded)
    assert detail is not None, f"no LimitExceeded in {error}"
    return detail  # type: ignore[no-any-return]


Factory = Callable[[], Awaitable[GroupsCaller]]
