"""Checks on uploaded public keys; signatures are verified with `cryptography`."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from chatconnect.keys.domain.errors import KeyInvalid, SignatureInvalid
from chatconnect.keys.domain.models import DeviceKeys, PreKey, SignedPreKey
from chatconnect.runtime.errors import LimitExceeded

KEY_BYTES = 32
SIGNATURE_BYTES = 64


def check_identity_key(identity_key: bytes) -> Ed25519PublicKey:
    """Parses an Ed25519 identity public key."""
    if len(identity_key) != KEY_BYTES:
        raise KeyInvalid(f"identity_key must be {KEY_BYTES} bytes, got {len(identity_key)}")
    try:
        return Ed25519PublicKey.from_public_bytes(identity_key)
    except ValueError:
        raise KeyInvalid("identity_key is not an Ed25519 public key") from None


def check_prekey(key: PreKey, field_name: str) -> None:
    """Checks that a one-time prekey is an X25519 public key."""
    _check_x25519(key.public_key, field_name)


def check_signed_prekey(identity_key: bytes, signed: SignedPreKey) -> None:
    """Checks the signed prekey and its signature by `identity_key`."""
    verifier = check_identity_key(identity_key)
    _check_x25519(signed.public_key, "signed_prekey.public_key")
    if len(signed.signature) != SIGNATURE_BYTES:
        raise SignatureInvalid(f"signed_prekey.signature must be {SIGNATURE_BYTES} bytes")
    try:
        verifier.verify(signed.signature, signed.public_key)
    except InvalidSignature:
        raise SignatureInvalid(
            "signed_prekey.signature does not verify with the identity key"
        ) from None


def check_prekeys(keys: tuple[PreKey, ...], *, limit: int) -> None:
    """Checks a batch of one-time prekeys against the per-upload limit."""
    if len(keys) > limit:
        raise LimitExceeded(
            "one_time_prekeys",
            setting="keys.max_prekeys_per_upload",
            limit=limit,
            actual=len(keys),
        )
    for index, key in enumerate(keys):
        check_prekey(key, f"one_time_prekeys[{index}].public_key")


def check_device_keys(keys: DeviceKeys, *, prekey_limit: int) -> None:
    """Checks everything a registering or linking device publishes."""
    check_signed_prekey(keys.identity_key, keys.signed_prekey)
    check_prekeys(keys.one_time_prekeys, limit=prekey_limit)


def _check_x25519(public_key: bytes, field_name: str) -> None:
    if len(public_key) != KEY_BYTES:
        raise KeyInvalid(f"{field_name} must be {KEY_BYTES} bytes, got {len(public_key)}")
    try:
        X25519PublicKey.from_public_bytes(public_key)
    except ValueError:
        raise KeyInvalid(f"{field_name} is not an X25519 public key") from None
