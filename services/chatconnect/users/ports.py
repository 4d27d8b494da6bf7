"""Storage and provider ports of the users service."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from chatconnect.model import DeviceAddress
from chatconnect.users.domain.models import (
    NewDevice,
    PrivacyChanges,
    PrivacySettings,
    Registration,
    Verification,
)


class AccountStore(abc.ABC):
    """Accounts, verifications and refresh tokens."""

    @abc.abstractmethod
    async def create_verification(self, verification: Verification) -> Verification:
        """Stores `verification`, or returns the one already stored for the same phone
        number and request id."""

    @abc.abstractmethod
    async def get_verification(self, verification_id: str) -> Verification | None:
        """The verification with this id, if any."""

    @abc.abstractmethod
    async def reserve_attempt(self, verification_id: str, *, max_attempts: int) -> bool:
        """Atomically counts one attempt at the code; False when `max_attempts` are used
        up (so concurrent guesses can never exceed the limit)."""

    @abc.abstractmethod
    async def register(
        self,
        *,
        verification: Verification,
        request_id: str,
        new_user_id: str,
        primary: NewDevice,
        now: float,
    ) -> Registration:
        """Atomically creates the account (or takes over the number's account, removing
        every old device, its sessions, keys and inbox) with `primary` as device 1, and
        marks the verification completed by `request_id`."""

    @abc.abstractmethod
    async def save_refresh_token(
        self, token_hash: bytes, device: DeviceAddress, incarnation: str, expires_at: float
    ) -> None:
        """Stores the hash of a new refresh token."""

    @abc.abstractmethod
    async def take_refresh_token(
        self, token_hash: bytes, now: float
    ) -> tuple[DeviceAddress, str] | None:
        """Consumes a refresh token: returns its device and incarnation and deletes it, or
        None if it is unknown or expired."""


class VerificationProvider(abc.ABC):
    """Delivers verification codes (SMS, voice, ...)."""

    @abc.abstractmethod
    async def send_code(self, phone_number: str, code: str, *, locale: str) -> None:
        """Sends `code` to `phone_number`; raises ProviderUnavailable on failure."""


class PrivacyDirectory(abc.ABC):
    """Read access to privacy settings and contact lists, for the services that enforce
    them (presence: who sees online and last seen; groups: who may add whom)."""

    @abc.abstractmethod
    async def privacy_settings(self, user_ids: Sequence[str]) -> dict[str, PrivacySettings]:
        """The settings of each user that exists (defaults where never changed); users
        that do not exist are absent."""

    @abc.abstractmethod
    async def contacts_among(self, owner_id: str, candidates: Sequence[str]) -> set[str]:
        """Which of `candidates` are in `owner_id`'s contacts (one read, however many
        candidates)."""


class PrivacyStore(PrivacyDirectory):
    """Changes to privacy settings and contact lists (the users service's own writes)."""

    @abc.abstractmethod
    async def update_privacy_settings(
        self, user_id: str, changes: PrivacyChanges
    ) -> PrivacySettings:
        """Applies the values `changes` sets, keeping the others; returns the settings now
        in force."""

    @abc.abstractmethod
    async def existing_users(self, user_ids: Sequence[str]) -> set[str]:
        """Which of `user_ids` have an account."""

    @abc.abstractmethod
    async def update_contacts(
        self,
        owner_id: str,
        *,
        request_id: str,
        add: Sequence[str],
        remove: Sequence[str],
        max_contacts: int,
        now: float,
        remember_seconds: float,
    ) -> int:
        """Adds `add` to and removes `remove` from the owner's contacts, atomically;
        returns how many contacts the owner has afterwards.

        Raises TooManyContacts, changing nothing, when the list would exceed
        `max_contacts`. `request_id` is remembered for `remember_seconds`: a repeat within
        that time changes nothing and returns the count the first one returned.
        """

    @abc.abstractmethod
    async def list_contacts(self, owner_id: str, *, after: str, limit: int) -> list[str]:
        """Up to `limit` of the owner's contacts in user id order, those after `after`
        (all from the first when `after` is empty)."""
