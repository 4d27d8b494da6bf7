"""Errors of the groups service. The servicer maps each to a status and ErrorInfo reason."""

from __future__ import annotations

from chatconnect.runtime.errors import ChatConnectError, LimitExceeded, StoreUnavailable


class GroupIdInvalid(ChatConnectError):
    """The group id is not one the server issues (a UUID)."""


class GroupNotFound(ChatConnectError):
    """No group has this id (or it was deleted when its last member left)."""


class NotAMember(ChatConnectError):
    """The caller is not a member of the group."""


class NotGroupAdmin(ChatConnectError):
    """Only admins (and the owner) may do this."""


class NotGroupOwner(ChatConnectError):
    """Only the owner may do this."""


class CannotRemoveOwner(ChatConnectError):
    """Nobody can remove or ban the owner; the owner transfers ownership or leaves."""


class CannotChangeOwnerRole(ChatConnectError):
    """The owner's role changes only by transferring ownership to another member."""


class MemberNotFound(ChatConnectError):
    """The named user is not a member of the group."""


class RoleInvalid(ChatConnectError):
    """The role is not MEMBER, ADMIN or OWNER."""


class CannotBanSelf(ChatConnectError):
    """An admin cannot ban themselves; leave instead."""


class UpdateMaskInvalid(ChatConnectError):
    """The update mask is empty or names a field that GroupSettings does not have."""


class RevisionConflict(ChatConnectError):
    """The group changed since the revision the client last saw."""


class InviteLinkNotFound(ChatConnectError):
    """No working invite link has this code (none was made, or it was revoked or expired)."""


class Banned(ChatConnectError):
    """The caller is banned from the group."""


class PageSizeInvalid(ChatConnectError):
    """page_size is negative."""


class PageTokenInvalid(ChatConnectError):
    """page_token was not issued by this server for this listing."""


class MembershipVersionStale(ChatConnectError):
    """The membership changed while a listing bound to one version was paged through."""

    def __init__(self, group_id: str, *, requested: int, current: int) -> None:
        super().__init__(
            f"group {group_id} is at membership version {current}, not {requested}; "
            "start again from the first page",
            metadata={"group_id": group_id},
        )
        self.group_id = group_id
        self.requested = requested
        self.current = current


class InfoTooLarge(LimitExceeded):
    """An encrypted title or description is over groups.max_info_bytes."""


class TooManyUsers(LimitExceeded):
    """A request names more users than groups.max_users_per_request."""


class GroupFull(LimitExceeded):
    """The change would take the group past groups.max_members; nothing was changed."""


class TooManyGroups(LimitExceeded):
    """The user already belongs to groups.max_groups_per_user groups."""


class TooManyBans(LimitExceeded):
    """The group already bans groups.max_bans users."""


class TooManyJoinRequests(LimitExceeded):
    """The group already holds groups.max_join_requests pending join requests."""


class GroupBusy(StoreUnavailable):
    """The group changed under every attempt to apply this request; retrying is safe."""
