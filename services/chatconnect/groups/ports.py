"""Storage ports of the groups service."""

from __future__ import annotations

import abc

from chatconnect.groups.domain.models import GroupMembership


class GroupDirectory(abc.ABC):
    """Read access to group membership, for the services that enforce it (router,
    presence, devices). Every read goes to the store: no cache may outlive a membership
    version, or a removed member would keep receiving."""

    @abc.abstractmethod
    async def membership_version(self, group_id: str) -> int | None:
        """The group's current membership version; None when there is no such group.
        One small read, so callers may keep a member list keyed by version."""

    @abc.abstractmethod
    async def membership(self, group_id: str) -> GroupMembership | None:
        """Every member with its role, the settings and the membership version, read
        consistently; None when there is no such group."""
