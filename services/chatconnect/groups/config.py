"""Settings of the groups service and of group sends (section [groups])."""

from __future__ import annotations

from dataclasses import dataclass

from chatconnect.runtime.config import positive, setting


@dataclass(frozen=True)
class GroupsConfig:
    """Group membership, invite links and the group send path."""

    max_members: int = setting(1024, "members one group may have", check=positive)
    max_groups_per_user: int = setting(5000, "groups one user may belong to", check=positive)
    max_info_bytes: int = setting(4096, "largest encrypted title or description", check=positive)
    invite_link_ttl_seconds: int = setting(
        0, "how long an invite link works; 0 means until revoked"
    )
    max_users_per_request: int = setting(
        1024, "users one add, remove, ban or approve request may name", check=positive
    )
    fan_out_on_read_threshold: int = setting(
        512,
        "groups with more members than this store each message once in a group log that "
        "devices sync by cursor, instead of writing it into every member device's inbox",
        check=positive,
    )
    fan_out_batch_size: int = setting(
        256, "device inboxes written per batch when fanning a group message out", check=positive
    )
