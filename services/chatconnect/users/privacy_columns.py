"""How privacy settings map to table columns, shared by the embedded and ScyllaDB adapters.

A column is null until its owner changes it, and null reads as the default: accounts that
never changed anything need no row, and a change writes only the columns it names, so two
concurrent changes of different settings never undo each other.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from chatconnect.users.domain.models import PrivacyChanges, PrivacySettings, Visibility

COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(PrivacySettings))
"""One column per setting, named like the field."""

_DEFAULTS = PrivacySettings()


class Row(Protocol):
    """A stored row read by column name (sqlite3.Row, or the CQL driver's dict)."""

    def __getitem__(self, key: str, /) -> Any: ...


def settings_from_row(row: Row | None) -> PrivacySettings:
    """The settings a row (or no row) stands for; null columns are the defaults."""
    if row is None:
        return _DEFAULTS
    values: dict[str, Any] = {}
    for name in COLUMNS:
        stored = row[name]
        if stored is None:
            continue
        default = getattr(_DEFAULTS, name)
        values[name] = bool(stored) if isinstance(default, bool) else Visibility(stored)
    return dataclasses.replace(_DEFAULTS, **values)


def changed_columns(changes: PrivacyChanges) -> dict[str, int | bool]:
    """The columns `changes` writes, with their stored values (Visibility as its number)."""
    columns: dict[str, int | bool] = {}
    for name in COLUMNS:
        value = getattr(changes, name)
        if value is None:
            continue
        columns[name] = value if isinstance(value, bool) else int(value)
    return columns
