"""Issuing device sessions: an access token plus a rotating refresh token."""

from __future__ import annotations

import hashlib
import secrets

from chatconnect.model import Clock, DeviceAddress
from chatconnect.runtime.auth import TokenIssuer
from chatconnect.users.domain.errors import RefreshTokenInvalid
from chatconnect.users.domain.models import DeviceSession
from chatconnect.users.ports import AccountStore


def hash_secret(secret: str) -> bytes:
    """The stored form of a bearer secret (refresh token, link secret): SHA-256."""
    return hashlib.sha256(secret.encode()).digest()


class SessionIssuer:
    """Creates and refreshes device sessions. Only hashes of refresh tokens are stored."""

    def __init__(
        self, *, store: AccountStore, tokens: TokenIssuer, refresh_ttl_seconds: int, clock: Clock
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._refresh_ttl = refresh_ttl_seconds
        self._clock = clock

    async def issue(self, device: DeviceAddress, incarnation: str) -> DeviceSession:
        """A fresh session for a device incarnation."""
        now = self._clock()
        access, expires = self._tokens.issue(device, incarnation, now=now)
        refresh = secrets.token_urlsafe(32)
        await self._store.save_refresh_token(
            hash_secret(refresh), device, incarnation, now + self._refresh_ttl
        )
        return DeviceSession(device, access, expires, refresh)

    async def refresh(self, refresh_token: str) -> DeviceSession:
        """Exchanges a refresh token (used once) for a new session."""
        if not refresh_token:
            raise RefreshTokenInvalid("refresh_token is required")
        taken = await self._store.take_refresh_token(hash_secret(refresh_token), self._clock())
        if taken is None:
            raise RefreshTokenInvalid(
                "the refresh token is unknown, expired or already used; register again"
            )
        device, incarnation = taken
        return await self.issue(device, incarnation)
