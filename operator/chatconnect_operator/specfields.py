"""Reading a spec dict field by field, with errors that name the field's path.

`Fields` wraps one object of a spec ("spec.gateway") and reads typed values from it with
the doc's defaults; every failure raises `SpecError("spec.gateway.maxStep: ...")`, which
the handlers turn into kopf.PermanentError.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any


class SpecError(ValueError):
    """A spec field is missing or invalid; the message starts with the field's path."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class Fields:
    """Reads one object of a spec, naming `path.key` in every error."""

    def __init__(self, path: str, raw: Any) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise SpecError(path, f"must be an object, got {raw!r}")
        self.path, self.raw = path, raw

    def at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def present(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def string(
        self, key: str, default: str | None = None, pattern: re.Pattern[str] | None = None
    ) -> str:
        value = self.raw.get(key, default)
        if value is None:
            raise SpecError(self.at(key), "is required")
        if not isinstance(value, str) or not value:
            raise SpecError(self.at(key), f"must be a non-empty string, got {value!r}")
        if pattern is not None and not pattern.match(value):
            raise SpecError(self.at(key), f"{value!r} does not match {pattern.pattern}")
        return value

    def optional_string(self, key: str) -> str | None:
        return self.string(key) if self.present(key) else None

    def integer(self, key: str, default: int, low: int, high: int | None = None) -> int:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(self.at(key), f"must be an integer, got {value!r}")
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise SpecError(self.at(key), f"must be {bounds}, got {value}")
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecError(self.at(key), f"must be a number, got {value!r}")
        if not low <= value <= high:
            raise SpecError(self.at(key), f"must be from {low} to {high}, got {value}")
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise SpecError(self.at(key), f"must be true or false, got {value!r}")
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.raw.get(key, default)
        if value not in choices:
            raise SpecError(self.at(key), f"must be one of {', '.join(choices)}, got {value!r}")
        return str(value)

    def strings(self, key: str, min_items: int = 0) -> tuple[str, ...]:
        value = self.raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise SpecError(self.at(key), f"must be a list of non-empty strings, got {value!r}")
        if len(value) < min_items:
            raise SpecError(self.at(key), f"needs at least {min_items} item(s)")
        return tuple(value)

    def child(self, key: str) -> Fields:
        return Fields(self.at(key), self.raw.get(key))

    def resources(self, key: str, default: Callable[[], Mapping[str, Any]]) -> Mapping[str, Any]:
        value = self.raw.get(key)
        if value is None:
            return default()
        fields = Fields(self.at(key), value)
        out: dict[str, dict[str, str | int]] = {}
        for part in ("requests", "limits"):
            quantities = fields.raw.get(part)
            if quantities is None:
                continue
            if not isinstance(quantities, Mapping) or not all(
                isinstance(q, str | int) and not isinstance(q, bool) for q in quantities.values()
            ):
                raise SpecError(fields.at(part), "must map resource names to quantities")
            out[part] = dict(quantities)
        return out
