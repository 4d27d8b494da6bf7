"""Device authentication: short-lived signed access tokens (JWT, EdDSA).

The users service issues tokens; every service verifies them with the same key pair and
then checks that the device is still linked with the same incarnation, so an unlinked
device or a device replaced by a re-registration is refused at once, not when its token
expires.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chatconnect.model import DeviceAddress
from chatconnect.runtime.errors import NotAuthenticated

AUDIENCE = "chatconnect-device"
ALGORITHM = "EdDSA"


@dataclass(frozen=True)
class DeviceClaims:
    """What a verified access token says."""

    device: DeviceAddress
    incarnation: str
    expires_at: float


class DeviceSessions(Protocol):
    """Answers whether a device incarnation is still linked."""

    async def is_current(self, device: DeviceAddress, incarnation: str) -> bool:
        """True while the device exists with this incarnation."""
        ...


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """Reads the token signing key, creating it (mode 0600) on first start."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise SystemExit(
                f"{path} is not an Ed25519 private key; remove it or fix auth.signing_key_file"
            )
        return key
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    return key


class TokenIssuer:
    """Signs access tokens."""

    def __init__(self, key: Ed25519PrivateKey, *, issuer: str, ttl_seconds: int) -> None:
        self._key = key
        self._issuer = issuer
        self._ttl = ttl_seconds

    def issue(self, device: DeviceAddress, incarnation: str, *, now: float) -> tuple[str, float]:
        """A token for `device` and the time it expires."""
        expires = now + self._ttl
        claims = {
            "iss": self._issuer,
            "aud": AUDIENCE,
            "sub": device.user_id,
            "dev": device.device_id,
            "inc": incarnation,
            "iat": int(now),
            "exp": int(expires),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM), float(int(expires))


class Authenticator:
    """Verifies access tokens and that their device is still linked."""

    def __init__(self, key: Ed25519PrivateKey, *, issuer: str, sessions: DeviceSessions) -> None:
        self._public = key.public_key()
        self._issuer = issuer
        self._sessions = sessions

    def verify(self, token: str, *, now: float | None = None) -> DeviceClaims:
        """Checks signature, issuer, audience and expiry of `token`."""
        if not token:
            raise NotAuthenticated(
                "TOKEN_MISSING", "send the access token as `authorization: Bearer <token>`"
            )
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self._issuer,
                options={"require": ["exp", "sub", "dev", "inc"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated(
                "TOKEN_EXPIRED", "the access token expired; call RefreshSession"
            ) from None
        except jwt.PyJWTError:
            raise NotAuthenticated("TOKEN_INVALID", "the access token is not valid") from None
        if now is not None and claims["exp"] <= now:
            raise NotAuthenticated("TOKEN_EXPIRED", "the access token expired; call RefreshSession")
        device_id = claims["dev"]
        if not isinstance(device_id, int) or not isinstance(claims["sub"], str):
            raise NotAuthenticated("TOKEN_INVALID", "the access token is not valid")
        return DeviceClaims(
            DeviceAddress(claims["sub"], device_id), str(claims["inc"]), float(claims["exp"])
        )

    async def authenticate(self, token: str) -> DeviceClaims:
        """Verifies `token` and that its device is still linked."""
        claims = self.verify(token, now=time.time())
        if not await self._sessions.is_current(claims.device, claims.incarnation):
            raise NotAuthenticated(
                "DEVICE_REVOKED", "this device was unlinked; register or link it again"
            )
        return claims
