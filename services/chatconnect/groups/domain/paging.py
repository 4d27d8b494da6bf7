"""Page sizes and opaque page tokens of the groups listings.

A token carries the sort key of the last item returned (and, for GetGroupDevices, the
membership version the listing is bound to), so a page continues after that item even
when items before it were added or removed meanwhile.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from chatconnect.groups.domain.errors import PageSizeInvalid, PageTokenInvalid

T = TypeVar("T")
Key = tuple[Any, ...]

_NOT_OURS = "page_token was not issued by this server for this listing"


def page_size(requested: int, *, default: int, maximum: int) -> int:
    """The page size to use: the default for 0, at most `maximum`."""
    if requested < 0:
        raise PageSizeInvalid("page_size must not be negative")
    return min(requested or default, maximum)


def encode_token(listing: str, key: Key) -> str:
    """A token that continues `listing` after the item with sort key `key`."""
    return base64.urlsafe_b64encode(json.dumps([listing, *key]).encode()).decode()


def decode_token(listing: str, token: str, types: Sequence[type]) -> Key | None:
    """The sort key a token of `listing` continues after; None for "" (the first page)."""
    if not token:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, UnicodeDecodeError):
        raise PageTokenInvalid(_NOT_OURS) from None
    if not isinstance(value, list) or len(value) != len(types) + 1 or value[0] != listing:
        raise PageTokenInvalid(_NOT_OURS)
    key = value[1:]
    for item, kind in zip(key, types, strict=True):
        if not isinstance(item, kind) or isinstance(item, bool):
            raise PageTokenInvalid(_NOT_OURS)
    return tuple(key)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing."""

    items: list[T]
    next_token: str


def paginate(
    items: Sequence[T],
    *,
    listing: str,
    key: Callable[[T], Key],
    after: Key | None,
    size: int,
) -> Page[T]:
    """The page of `items` (sorted by `key`) that follows `after`."""
    ordered = sorted(items, key=key)
    if after is not None:
        ordered = [i for i in ordered if key(i) > after]
    page = ordered[:size]
    more = len(ordered) > size
    return Page(page, encode_token(listing, key(page[-1])) if more and page else "")
