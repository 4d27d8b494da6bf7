"""Reads presence as a viewer may see it: the ephemeral store, the durable last seen when
the ephemeral store knows nothing of a user, and the privacy rules."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace

from chatconnect.model import Clock
from chatconnect.presence.domain.models import PresenceView, UserPresence
from chatconnect.presence.domain.visibility import Relations, needs_contact_check, view
from chatconnect.presence.ports import LastSeenStore, PresenceStore
from chatconnect.users.domain.models import Visibility
from chatconnect.users.ports import PrivacyDirectory


@dataclass(frozen=True)
class Seen:
    """One user's presence as stored, and as the viewer may see it."""

    presence: UserPresence
    view: PresenceView


class PresenceReader:
    """Presence of many users for one viewer, in a few reads."""

    def __init__(
        self,
        *,
        store: PresenceStore,
        last_seen: LastSeenStore,
        privacy: PrivacyDirectory,
        clock: Clock,
    ) -> None:
        self._store = store
        self._last_seen = last_seen
        self._privacy = privacy
        self._clock = clock

    async def read(self, viewer_id: str, user_ids: Sequence[str]) -> list[Seen]:
        """The presence of `user_ids` (in that order) as `viewer_id` may see it."""
        if not user_ids:
            return []
        now = self._clock()
        presences = await self._with_durable_last_seen(await self._store.read(user_ids, now))
        relations = await self._relations(viewer_id, user_ids)
        return [Seen(p, view(p, relations, now)) for p in presences]

    async def _with_durable_last_seen(self, presences: list[UserPresence]) -> list[UserPresence]:
        # Only users the ephemeral store knows nothing of (it restarted, or they were away
        # longer than it keeps them) cost a durable read.
        unknown = [p.user_id for p in presences if p.last_seen is None and not p.devices]
        if not unknown:
            return presences
        stored = await self._last_seen.read(unknown)
        return [
            replace(p, last_seen=stored[p.user_id]) if p.user_id in stored else p for p in presences
        ]

    async def _relations(self, viewer_id: str, user_ids: Sequence[str]) -> Relations:
        subjects = [u for u in dict.fromkeys(user_ids) if u != viewer_id]
        settings = await self._privacy.privacy_settings([viewer_id, *subjects])
        guarded = [u for u in subjects if u in settings and needs_contact_check(settings[u])]
        viewer_settings = settings.get(viewer_id)
        reciprocal = viewer_settings is not None and viewer_settings.last_seen == (
            Visibility.CONTACTS
        )
        answers = await asyncio.gather(
            *(self._privacy.contacts_among(u, [viewer_id]) for u in guarded),
            self._privacy.contacts_among(viewer_id, subjects) if reciprocal else _nothing(),
        )
        return Relations(
            viewer_id=viewer_id,
            settings=settings,
            viewer_in_contacts_of={u for u, found in zip(guarded, answers, strict=False) if found},
            contacts_of_viewer=answers[-1],
        )


async def _nothing() -> set[str]:
    return set()
