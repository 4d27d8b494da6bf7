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
    max_sender_key_distributions: int = setting(
        10_000,
        "sender-key distribution envelopes one group send may carry (one per member device "
        "that lacks the sender's current key)",
        check=positive,
    )
    max_bans: int = setting(10_000, "users one group may ban", check=positive)
    membership_cache_groups: int = setting(
        64,
        "groups whose membership each process keeps in memory between sends, each re-used "
        "only while the group is unchanged (its revision is read on every use); 0 turns "
        "this off",
        check=lambda value: None if value >= 0 else "must be 0 or more",
    )
    max_join_requests: int = setting(
        1000, "pending join requests one group may hold", check=positive
    )
    invite_lookups_per_minute: int = setting(
        30,
        "invite link previews and joins one account may make per minute (against scraping "
        "invite codes)",
        check=positive,
    )
    groups_created_per_hour: int = setting(
        100, "groups one account may create per hour", check=positive
    )
    request_id_ttl_seconds: int = setting(
        86_400,
        "how long a mutating request's result is kept for retries with the same request_id",
        check=positive,
    )
