"""Sender keys for group messages: each device encrypts a group message once, with its own
symmetric key for the group, and hands that key to every member device once, sealed to the
device's key (a sender-key distribution). Whoever leaves makes every sender rotate.

The symmetric encryption is libsodium's secretbox (XSalsa20-Poly1305) through PyNaCl.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from nacl.exceptions import CryptoError
from nacl.secret import SecretBox

_KEY_ID_BYTES = 8


@dataclass
class _OwnKey:
    key_id: bytes
    key: bytes
    holders: set[tuple[str, int]] = field(default_factory=set)
    """Member devices that were sent this key."""


class SenderKeys:
    """This device's sender keys, and the keys other members' devices sent it."""

    def __init__(self) -> None:
        self._own: dict[str, _OwnKey] = {}
        self._received: dict[tuple[str, str, int], dict[bytes, bytes]] = {}

    def own(self, group_id: str) -> _OwnKey:
        """This device's current key for the group (created on first use)."""
        if group_id not in self._own:
            self._own[group_id] = _OwnKey(
                secrets.token_bytes(_KEY_ID_BYTES), secrets.token_bytes(SecretBox.KEY_SIZE)
            )
        return self._own[group_id]

    def rotate(self, group_id: str) -> None:
        """Forgets the current key: the next send makes and distributes a new one (after a
        member left, so it cannot read what follows)."""
        self._own.pop(group_id, None)

    def devices_lacking(
        self, group_id: str, devices: list[tuple[str, int]]
    ) -> list[tuple[str, int]]:
        """Which of `devices` have not been sent the current key."""
        holders = self.own(group_id).holders
        return [d for d in devices if d not in holders]

    def mark_sent(self, group_id: str, devices: list[tuple[str, int]]) -> None:
        """The key reached these devices (the send carrying it was accepted)."""
        self.own(group_id).holders.update(devices)

    def distribution(self, group_id: str) -> bytes:
        """The plaintext of a distribution of the current key (to be sealed per device)."""
        own = self.own(group_id)
        return own.key_id + own.key

    def encrypt(self, group_id: str, plaintext: bytes) -> bytes:
        """The message encrypted once for the whole group."""
        own = self.own(group_id)
        return own.key_id + bytes(SecretBox(own.key).encrypt(plaintext))

    def accept(self, group_id: str, sender: tuple[str, int], distribution: bytes) -> None:
        """Keeps a key another member's device distributed."""
        key_id, key = distribution[:_KEY_ID_BYTES], distribution[_KEY_ID_BYTES:]
        self._received.setdefault((group_id, *sender), {})[key_id] = key

    def decrypt(self, group_id: str, sender: tuple[str, int], content: bytes) -> bytes | None:
        """The plaintext, or None when this device lacks the key or the content is bad."""
        key = self._received.get((group_id, *sender), {}).get(content[:_KEY_ID_BYTES])
        if key is None:
            return None
        try:
            return bytes(SecretBox(key).decrypt(content[_KEY_ID_BYTES:]))
        except CryptoError:
            return None
