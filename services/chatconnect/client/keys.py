"""Client key material and the SDK's envelope cipher, built on libsodium (PyNaCl).

The SDK seals each message to the recipient device's signed prekey with a libsodium
sealed box (X25519 + XSalsa20-Poly1305). That is authenticated public-key encryption
without forward secrecy: good for the SDK, tests and the demo. Production clients use the
Signal protocol (libsignal) over the same prekey directory; the server cannot tell the
difference, since it only ever sees ciphertext.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.signing import SigningKey

from chatconnect.users.v1 import users_pb2


@dataclass
class DeviceKeyMaterial:
    """A device's private keys: the account identity and its own prekeys."""

    identity: SigningKey
    signed_prekey: PrivateKey
    signed_prekey_id: int = 1
    registration_id: int = field(default_factory=lambda: secrets.randbelow(16380) + 1)
    one_time_prekeys: dict[int, PrivateKey] = field(default_factory=dict)

    @classmethod
    def generate(
        cls, identity: SigningKey | None = None, *, one_time: int = 20
    ) -> DeviceKeyMaterial:
        """Fresh prekeys, under a new or an existing (linked device) identity."""
        material = cls(
            identity=identity or SigningKey.generate(), signed_prekey=PrivateKey.generate()
        )
        material.one_time_prekeys = {i + 1: PrivateKey.generate() for i in range(one_time)}
        return material

    def public_keys(self, *, include_identity: bool = True) -> users_pb2.DeviceKeys:
        """What the device publishes to the key directory."""
        spk_public = bytes(self.signed_prekey.public_key)
        return users_pb2.DeviceKeys(
            identity_key=bytes(self.identity.verify_key) if include_identity else b"",
            signed_prekey=users_pb2.SignedPreKey(
                key_id=self.signed_prekey_id,
                public_key=spk_public,
                signature=self.identity.sign(spk_public).signature,
            ),
            one_time_prekeys=[
                users_pb2.PreKey(key_id=key_id, public_key=bytes(key.public_key))
                for key_id, key in self.one_time_prekeys.items()
            ],
        )

    def open(self, ciphertext: bytes) -> bytes:
        """Decrypts an envelope sealed to this device."""
        return bytes(SealedBox(self.signed_prekey).decrypt(ciphertext))


def seal(recipient_prekey: bytes, plaintext: bytes) -> bytes:
    """Encrypts `plaintext` to a device's signed prekey."""
    return bytes(SealedBox(PublicKey(recipient_prekey)).encrypt(plaintext))


def seal_to_ephemeral(ephemeral_public: bytes, plaintext: bytes) -> bytes:
    """Encrypts a provisioning message to a linking device's ephemeral key."""
    return seal(ephemeral_public, plaintext)


def open_with(private: PrivateKey, ciphertext: bytes) -> bytes:
    """Decrypts with an arbitrary private key (the linking device's ephemeral key)."""
    return bytes(SealedBox(private).decrypt(ciphertext))
