"""Privacy settings and contact lists: what the caller may change, and how much."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from chatconnect.model import Clock, DeviceAddress
from chatconnect.runtime.errors import FieldInvalid, UserNotFound
from chatconnect.users.config import UsersConfig
from chatconnect.users.domain.errors import TooManyUsers
from chatconnect.users.domain.models import PrivacyChanges, PrivacySettings
from chatconnect.users.domain.registration import check_request_id
from chatconnect.users.ports import PrivacyStore

MAX_USER_ID_LENGTH = 64
"""Longer than any user id the server hands out (UUIDs), short enough to keep junk out of
the store's queries."""

_PAGE_TOKEN_PREFIX = b"contacts:"


@dataclass(frozen=True)
class ContactsChange:
    """The outcome of UpdateContacts."""

    contact_count: int
    ignored_user_ids: tuple[str, ...]
    """Ids asked to be added that were not: no account has them, or they are the caller."""


@dataclass(frozen=True)
class ContactsPage:
    """One page of a contact list."""

    user_ids: list[str]
    next_page_token: str


def _page_token(last_user_id: str) -> str:
    return base64.urlsafe_b64encode(_PAGE_TOKEN_PREFIX + last_user_id.encode()).decode()


def _after(page_token: str) -> str:
    """The last user id of the previous page; tokens are opaque to clients, so anything
    this server did not issue is a bad request."""
    if not page_token:
        return ""
    try:
        raw = base64.urlsafe_b64decode(page_token.encode())
    except (binascii.Error, ValueError):
        raise FieldInvalid("page_token", "not a token this server issued") from None
    if not raw.startswith(_PAGE_TOKEN_PREFIX):
        raise FieldInvalid("page_token", "not a token this server issued")
    try:
        return raw[len(_PAGE_TOKEN_PREFIX) :].decode()
    except UnicodeDecodeError:
        raise FieldInvalid("page_token", "not a token this server issued") from None


def _check_user_ids(field_name: str, user_ids: Sequence[str]) -> list[str]:
    """The ids without repeats, in order; empty or over-long ids are a bad request."""
    for user_id in user_ids:
        if not user_id:
            raise FieldInvalid(field_name, "contains an empty user id")
        if len(user_id) > MAX_USER_ID_LENGTH:
            raise FieldInvalid(field_name, f"user ids are at most {MAX_USER_ID_LENGTH} characters")
    return list(dict.fromkeys(user_ids))


class PrivacyService:
    """The caller's own privacy settings and contact list; enforcement of them lives in
    the services that show what they guard (presence, groups), through PrivacyDirectory."""

    def __init__(self, *, store: PrivacyStore, config: UsersConfig, clock: Clock) -> None:
        self._store = store
        self._config = config
        self._clock = clock

    async def settings(self, caller: DeviceAddress) -> PrivacySettings:
        """The caller's settings (the defaults until changed)."""
        found = await self._store.privacy_settings([caller.user_id])
        if caller.user_id not in found:
            raise UserNotFound(caller.user_id)
        return found[caller.user_id]

    async def update_settings(
        self, caller: DeviceAddress, *, request_id: str, changes: PrivacyChanges
    ) -> PrivacySettings:
        """Changes the values `changes` sets. Setting values is idempotent by nature, so a
        repeat of the request needs no record: it sets the same values again."""
        check_request_id(request_id)
        return await self._store.update_privacy_settings(caller.user_id, changes)

    async def update_contacts(
        self,
        caller: DeviceAddress,
        *,
        request_id: str,
        add_user_ids: Sequence[str],
        remove_user_ids: Sequence[str],
    ) -> ContactsChange:
        """Adds and removes contacts, all or nothing, within `users.max_contacts`."""
        check_request_id(request_id)
        named = len(add_user_ids) + len(remove_user_ids)
        if named > self._config.max_contacts_per_request:
            raise TooManyUsers(
                "add_user_ids and remove_user_ids",
                setting="users.max_contacts_per_request",
                limit=self._config.max_contacts_per_request,
                actual=named,
            )
        add = _check_user_ids("add_user_ids", add_user_ids)
        remove = _check_user_ids("remove_user_ids", remove_user_ids)
        both = set(add) & set(remove)
        if both:
            raise FieldInvalid(
                "remove_user_ids", f"{len(both)} user id(s) are also in add_user_ids"
            )
        # Unknown ids are dropped rather than refused: address books go stale, and one
        # deleted account must not make a client's whole sync fail.
        known = await self._store.existing_users([u for u in add if u != caller.user_id])
        count = await self._store.update_contacts(
            caller.user_id,
            request_id=request_id,
            add=[u for u in add if u in known],
            remove=remove,
            max_contacts=self._config.max_contacts,
            now=self._clock(),
            remember_seconds=self._config.contacts_request_ttl_seconds,
        )
        return ContactsChange(count, tuple(u for u in add if u not in known))

    async def list_contacts(
        self, caller: DeviceAddress, *, page_size: int, page_token: str
    ) -> ContactsPage:
        """One page of the caller's contacts in user id order."""
        if page_size < 0:
            raise FieldInvalid("page_size", "must not be negative")
        size = min(
            page_size or self._config.contacts_page_size, self._config.max_contacts_page_size
        )
        # One more than the page tells whether another page follows.
        found = await self._store.list_contacts(
            caller.user_id, after=_after(page_token), limit=size + 1
        )
        page = found[:size]
        more = len(found) > size
        return ContactsPage(page, _page_token(page[-1]) if more else "")
