"""Secrets the operator generates once per cluster: the token-signing key and the TURN
shared secret. Generated with `cryptography` and `secrets`, never hand-rolled; the caller
stores them in a Secret created once and never regenerated (rotating the signing key
would log every device out)."""

from __future__ import annotations

import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def generate_signing_key_pem() -> bytes:
    """A fresh Ed25519 private key as unencrypted PKCS#8 PEM (what auth.signing_key_file
    expects)."""
    return Ed25519PrivateKey.generate().private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def generate_turn_secret() -> str:
    """The static auth secret of the TURN REST API scheme: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)
