"""Which keys of a table this process's writes changed, told once they are committed.

A cache in front of the embedded store (devices/device_cache.py) must forget what a write
changes, whichever code path wrote it. The writer connection carries TEMP triggers (they
exist for that connection only, so another program writing the file needs nothing of
ours) that call back into Python with the changed row's key; the keys collect during the
transaction, on the writer's thread, and the listeners hear of them after the COMMIT that
covers them and before any writer in that group learns its write is durable. Writes by
other processes are not seen, so a cache relying on this serves one process only.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Callable

Listener = Callable[[set[str]], None]
"""Told the keys a committed group of writes changed; runs on the event loop, must not
block or raise."""

_FUNCTION = "chatconnect_changed"


class Watches:
    """The watched tables of one database, their listeners, and the changes not yet told."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = defaultdict(list)
        self._changed: list[tuple[str, str]] = []
        """(table, key) of every watched row a statement changed since the last report.
        Appended on the writer's thread; swapped out on the loop only while the write
        lock is held, when no statement runs."""

    def add(self, table: str, listener: Listener) -> bool:
        """Registers `listener`; True if `table` was not watched before (its triggers
        are to be installed)."""
        first = table not in self._listeners
        self._listeners[table].append(listener)
        return first

    def install(self, conn: sqlite3.Connection, table: str, key_column: str) -> None:
        """Creates the function and `table`'s triggers on `conn`. Runs on its thread."""
        if not (table.isidentifier() and key_column.isidentifier()):
            raise ValueError(f"not a plain SQL name: {table}.{key_column}")
        conn.create_function(_FUNCTION, 2, self._note)
        new, old = (
            f"{_FUNCTION}('{table}', NEW.{key_column})",
            f"{_FUNCTION}('{table}', OLD.{key_column})",
        )
        for event, calls in (("INSERT", new), ("DELETE", old), ("UPDATE", f"{old}, {new}")):
            conn.execute(
                f"CREATE TEMP TRIGGER IF NOT EXISTS watch_{table}_{event.lower()} "
                f"AFTER {event} ON main.{table} BEGIN SELECT {calls}; END"
            ).close()

    def report(self) -> None:
        """Tells the listeners what changed since the last report."""
        if not self._changed:
            return
        changed, self._changed = self._changed, []
        by_table: dict[str, set[str]] = defaultdict(set)
        for table, key in changed:
            by_table[table].add(key)
        for table, keys in by_table.items():
            for listener in self._listeners[table]:
                listener(keys)

    def _note(self, table: str, key: str) -> None:
        self._changed.append((table, key))
