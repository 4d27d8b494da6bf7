"""Who may see what of a user's presence: the subject's privacy settings, and reciprocity
for last seen (a viewer who hides its last seen from someone does not see theirs)."""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass

from chatconnect.presence.domain.models import PresenceState, PresenceView, UserPresence
from chatconnect.users.domain.models import PrivacySettings, Visibility


def shown(visibility: Visibility, *, is_contact: bool) -> bool:
    """Whether something guarded by `visibility` is shown to someone (a contact or not)."""
    if visibility == Visibility.NOBODY:
        return False
    if visibility == Visibility.CONTACTS:
        return is_contact
    return True  # EVERYONE, and UNSPECIFIED (the default is everyone)


@dataclass(frozen=True)
class Relations:
    """What the rules need to know about one viewer and the subjects it looks at."""

    viewer_id: str
    settings: Mapping[str, PrivacySettings]
    """Settings of the viewer and of every subject that exists."""
    viewer_in_contacts_of: Set[str]
    """Subjects whose contact lists include the viewer."""
    contacts_of_viewer: Set[str]
    """Subjects in the viewer's contact list."""


def view(presence: UserPresence, relations: Relations, now: float) -> PresenceView:
    """`presence` as the viewer may see it; hidden parts are left empty, never faked."""
    subject = presence.user_id
    if subject == relations.viewer_id:
        return PresenceView(
            subject, presence.state, presence.devices, _last_seen(presence), now, True
        )
    settings = relations.settings.get(subject)
    viewer_settings = relations.settings.get(relations.viewer_id, PrivacySettings())
    if settings is None:
        # No such account: nothing to show, indistinguishable from a hidden one.
        return PresenceView(subject, PresenceState.UNSPECIFIED, (), None, now, False)
    is_contact = subject in relations.viewer_in_contacts_of
    online_shown = shown(settings.online, is_contact=is_contact)
    last_seen_shown = shown(settings.last_seen, is_contact=is_contact) and shown(
        viewer_settings.last_seen, is_contact=subject in relations.contacts_of_viewer
    )
    return PresenceView(
        subject,
        presence.state if online_shown else PresenceState.UNSPECIFIED,
        presence.devices if online_shown else (),
        _last_seen(presence) if last_seen_shown else None,
        now,
        last_seen_shown,
    )


def _last_seen(presence: UserPresence) -> float | None:
    return None if presence.online else presence.last_seen


def needs_contact_check(settings: PrivacySettings) -> bool:
    """Whether the subject's rules depend on whether the viewer is its contact."""
    return Visibility.CONTACTS in (settings.online, settings.last_seen)
