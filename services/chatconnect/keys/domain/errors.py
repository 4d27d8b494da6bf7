"""Errors of the key directory."""

from __future__ import annotations

from chatconnect.runtime.errors import ChatConnectError


class KeyInvalid(ChatConnectError):
    """A public key has the wrong length or is not a valid curve point."""


class SignatureInvalid(ChatConnectError):
    """The signed prekey's signature does not verify with the identity key."""


class IdentityKeyMismatch(ChatConnectError):
    """The request names an identity key other than the account's."""
