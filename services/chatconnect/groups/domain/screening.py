"""Who may be added to a group: existing accounts, not banned, whose `group_add` privacy
setting lets the adder add them, and below their own group limit."""

from __future__ import annotations

from collections.abc import Sequence

from chatconnect.groups.config import GroupsConfig
from chatconnect.groups.domain.results import AddFailure, AddFailureReason
from chatconnect.groups.ports import GroupStore
from chatconnect.users.domain.models import Visibility
from chatconnect.users.ports import PrivacyDirectory


class Screening:
    """Sorts users to add into addable ones and failures with their reasons."""

    def __init__(
        self, *, store: GroupStore, privacy: PrivacyDirectory | None, config: GroupsConfig
    ) -> None:
        self._store = store
        self._privacy = privacy
        self._config = config

    async def screen(
        self, adder: str, user_ids: Sequence[str], *, group_id: str | None
    ) -> tuple[list[str], list[AddFailure]]:
        """The users `adder` may add (in the order given) and those it may not."""
        failures: dict[str, AddFailureReason] = {}
        existing = await self._store.existing_users(user_ids)
        for user_id in user_ids:
            if user_id not in existing:
                failures[user_id] = AddFailureReason.USER_NOT_FOUND
        candidates = [u for u in user_ids if u not in failures]
        if group_id is not None and candidates:
            for user_id in await self._store.bans_among(group_id, candidates):
                failures[user_id] = AddFailureReason.BANNED
        candidates = [u for u in candidates if u not in failures]
        for user_id in await self._restricted(adder, candidates):
            failures[user_id] = AddFailureReason.PRIVACY_RESTRICTED
        candidates = [u for u in candidates if u not in failures]
        counts = await self._store.group_counts(candidates)
        for user_id in candidates:
            if counts.get(user_id, 0) >= self._config.max_groups_per_user:
                failures[user_id] = AddFailureReason.TOO_MANY_GROUPS
        addable = [u for u in user_ids if u not in failures]
        return addable, [AddFailure(u, r) for u, r in failures.items()]

    async def _restricted(self, adder: str, user_ids: Sequence[str]) -> set[str]:
        """Users whose `group_add` setting keeps `adder` out: NOBODY, or CONTACTS when the
        adder is not among their contacts. A block shows the same way (never revealed)."""
        if self._privacy is None or not user_ids:
            return set()
        others = [u for u in user_ids if u != adder]
        settings = await self._privacy.privacy_settings(others)
        restricted: set[str] = set()
        for user_id in others:
            visibility = settings[user_id].group_add if user_id in settings else None
            if visibility == Visibility.CONTACTS:
                # Allowed only when the adder is among the user's own contacts.
                contacts = await self._privacy.contacts_among(user_id, [adder])
                allowed = adder in contacts
            else:
                allowed = visibility != Visibility.NOBODY
            if not allowed:
                restricted.add(user_id)
        return restricted
