"""Assembles the groups service's domain parts over their ports into the servicer."""

from __future__ import annotations

from chatconnect.bus.ports import RateLimiter
from chatconnect.devices.ports import DeviceDirectory
from chatconnect.groups.config import GroupsConfig
from chatconnect.groups.domain.admin import GroupAdmin
from chatconnect.groups.domain.bans import GroupBans
from chatconnect.groups.domain.invites import GroupInvites
from chatconnect.groups.domain.mutations import Mutations
from chatconnect.groups.domain.queries import GroupQueries
from chatconnect.groups.domain.screening import Screening
from chatconnect.groups.ports import GroupStore
from chatconnect.groups.servicer import GroupsServicer
from chatconnect.model import Clock
from chatconnect.router.domain.group_reading import GroupReading
from chatconnect.runtime.auth import Authenticator
from chatconnect.users.ports import PrivacyDirectory


def groups_servicer(
    *,
    store: GroupStore,
    devices: DeviceDirectory,
    privacy: PrivacyDirectory | None,
    limiter: RateLimiter,
    receipts: GroupReading,
    authenticator: Authenticator,
    config: GroupsConfig,
    clock: Clock,
) -> GroupsServicer:
    """The GroupsService servicer; `privacy` enforces `group_add` when given. Receipt
    summaries come from the router's group receipt tally (`receipts`)."""
    mutations = Mutations(store=store, config=config, clock=clock)
    return GroupsServicer(
        admin=GroupAdmin(
            mutations=mutations,
            screening=Screening(store=store, privacy=privacy, config=config),
            limiter=limiter,
        ),
        bans=GroupBans(mutations=mutations),
        invites=GroupInvites(mutations=mutations, limiter=limiter),
        queries=GroupQueries(mutations=mutations, devices=devices),
        receipts=receipts,
        authenticator=authenticator,
    )
