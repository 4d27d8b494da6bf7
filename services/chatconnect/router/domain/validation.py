"""Checks on a send before anything is looked up or stored."""

from __future__ import annotations

from chatconnect.groups.config import GroupsConfig
from chatconnect.model import CLIENT_ENVELOPE_TYPES, DeviceAddress, EnvelopeType
from chatconnect.router.config import RouterConfig
from chatconnect.router.domain.errors import (
    CiphertextsMissing,
    ClientMessageIdInvalid,
    ContentMissing,
    DestinationMissing,
    DeviceAddressedTwice,
    EnvelopeTooLarge,
    EnvelopeTypeInvalid,
    GroupContentMissing,
    NotAParticipant,
    TooManyDevices,
    TooManyKeyDistributions,
)
from chatconnect.router.domain.models import OutgoingMessage


def check_outgoing(
    sender: DeviceAddress,
    message: OutgoingMessage,
    config: RouterConfig,
    groups_config: GroupsConfig,
) -> None:
    """Rejects malformed sends with the first problem found."""
    cmid = message.client_message_id
    if not cmid or len(cmid) > config.max_client_message_id_length or not cmid.isprintable():
        raise ClientMessageIdInvalid(
            f"client_message_id must be 1..{config.max_client_message_id_length} printable "
            "characters (a UUID is fine)"
        )
    destination = message.destination
    if not destination.user_id and not destination.group_id:
        raise DestinationMissing("destination must name a user or a group")
    if destination.group_id:
        _check_group_content(message, config, groups_config)
    else:
        if not message.ciphertexts:
            raise CiphertextsMissing("ciphertexts must hold one entry per addressed device")
        if len(message.ciphertexts) > config.max_devices_per_send:
            raise TooManyDevices(
                "ciphertexts",
                setting="router.max_devices_per_send",
                limit=config.max_devices_per_send,
                actual=len(message.ciphertexts),
            )
    participants = {sender.user_id, destination.user_id}
    seen: set[DeviceAddress] = set()
    for index, ciphertext in enumerate(message.ciphertexts):
        where = f"ciphertexts[{index}]"
        if ciphertext.device in seen:
            raise DeviceAddressedTwice(f"{where} addresses device {ciphertext.device} again")
        seen.add(ciphertext.device)
        if ciphertext.device == sender:
            raise NotAParticipant(f"{where} addresses the sending device itself")
        if destination.user_id and ciphertext.device.user_id not in participants:
            raise NotAParticipant(
                f"{where} addresses user {ciphertext.device.user_id}, who is neither the "
                "recipient nor the sender"
            )
        if ciphertext.type not in CLIENT_ENVELOPE_TYPES:
            raise EnvelopeTypeInvalid(f"{where}.type must be a ciphertext type")
        if destination.group_id and ciphertext.type != EnvelopeType.SENDER_KEY_DISTRIBUTION:
            raise EnvelopeTypeInvalid(
                f"{where}.type must be SENDER_KEY_DISTRIBUTION in a group send (the message "
                "itself goes in group_content)"
            )
        if not ciphertext.content:
            raise ContentMissing(f"{where}.content is empty")
        if len(ciphertext.content) > config.max_envelope_bytes:
            raise EnvelopeTooLarge(
                f"{where}.content",
                setting="router.max_envelope_bytes",
                limit=config.max_envelope_bytes,
                actual=len(ciphertext.content),
            )


def _check_group_content(
    message: OutgoingMessage, config: RouterConfig, groups_config: GroupsConfig
) -> None:
    if not message.group_content:
        raise GroupContentMissing(
            "group_content must hold the message encrypted with your sender key"
        )
    if len(message.group_content) > config.max_envelope_bytes:
        raise EnvelopeTooLarge(
            "group_content",
            setting="router.max_envelope_bytes",
            limit=config.max_envelope_bytes,
            actual=len(message.group_content),
        )
    if len(message.ciphertexts) > groups_config.max_sender_key_distributions:
        raise TooManyKeyDistributions(
            "ciphertexts",
            setting="groups.max_sender_key_distributions",
            limit=groups_config.max_sender_key_distributions,
            actual=len(message.ciphertexts),
        )
