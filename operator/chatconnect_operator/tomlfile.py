"""A TOML writer for the flat settings file the operator hands to ChatConnect pods.

The standard library reads TOML (tomllib) but does not write it, and the settings file
needs only tables of strings, integers, numbers and booleans: a JSON string is a valid
TOML basic string (the same escapes), so this stays a few lines instead of a dependency.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

Scalar = str | int | float | bool
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _value(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no TOML form here")
        return repr(value)
    return json.dumps(value)


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def render(sections: Mapping[str, Mapping[str, Scalar]], *, header: str = "") -> str:
    """One `[section]` table per entry, keys in the given order."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for section, values in sections.items():
        if lines:
            lines.append("")
        lines.append(f"[{_key(section)}]")
        lines.extend(f"{_key(key)} = {_value(value)}" for key, value in values.items())
    return "\n".join(lines) + "\n"
