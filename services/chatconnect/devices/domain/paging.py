"""Page sizes and opaque page tokens of ListReadMarkers and ListTombstones."""

from __future__ import annotations

import base64
import json

from chatconnect.devices.domain.errors import PageTokenInvalid
from chatconnect.devices.domain.models import TombstoneCursor
from chatconnect.runtime.errors import FieldInvalid

_MARKERS = "m1:"
_TOMBSTONES = "t1:"


def page_size(requested: int, *, default: int, maximum: int) -> int:
    """The page size to use: the default for 0, at most `maximum` (the server may return
    fewer than asked)."""
    if requested < 0:
        raise FieldInvalid("page_size", "must not be negative")
    if requested == 0:
        return default
    return min(requested, maximum)


def _encode(prefix: str, body: str) -> str:
    return base64.urlsafe_b64encode(f"{prefix}{body}".encode()).decode()


def _decode(prefix: str, token: str) -> str:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise PageTokenInvalid("page_token was not issued by this server") from None
    if not text.startswith(prefix):
        raise PageTokenInvalid("page_token was not issued by this server for this list")
    return text[len(prefix) :]


def encode_marker_token(conversation_key: str) -> str:
    """A token for "continue after this conversation"."""
    return _encode(_MARKERS, conversation_key)


def decode_marker_token(token: str) -> str:
    """The conversation key a ListReadMarkers token continues after; "" for the start."""
    return _decode(_MARKERS, token) if token else ""


def encode_tombstone_token(cursor: TombstoneCursor) -> str:
    """A token for "continue after this tombstone"."""
    body = [cursor.delete_time, cursor.conversation_key, cursor.server_message_id]
    return _encode(_TOMBSTONES, json.dumps(body))


def decode_tombstone_token(token: str) -> TombstoneCursor:
    """The tombstone a ListTombstones token continues after."""
    try:
        delete_time, key, message_id = json.loads(_decode(_TOMBSTONES, token))
        cursor = TombstoneCursor(float(delete_time), str(key), str(message_id))
    except (ValueError, TypeError):
        raise PageTokenInvalid("page_token was not issued by this server") from None
    return cursor
