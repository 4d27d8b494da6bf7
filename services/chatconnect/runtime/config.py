"""Typed configuration: frozen dataclasses filled from a TOML file and the environment.

Every setting is a dataclass field declared with `setting(default, "what it does")`. A
value comes from, in rising precedence: the default, the `[section]` table of the TOML
file, and the environment variable `CHATCONNECT_<SECTION>__<FIELD>` (for example
`CHATCONNECT_ROUTER__MAX_ENVELOPE_BYTES=131072`). Values are parsed and checked once at
start; an error names the key and the variable at fault.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

ENV_PREFIX = "CHATCONNECT_"

T = TypeVar("T")


class ConfigError(Exception):
    """A configuration value is missing, malformed or out of range."""


def setting(default: Any, doc: str, *, check: Callable[[Any], str | None] | None = None) -> Any:
    """Declares one setting: its default, a one-line description and an optional check.

    `check` returns None when the value is acceptable, or says why it is not.
    """
    return dataclasses.field(default=default, metadata={"doc": doc, "check": check})


def positive(value: Any) -> str | None:
    """A check for settings that must be greater than zero."""
    return None if value > 0 else "must be greater than 0"


def one_of(*choices: str) -> Callable[[Any], str | None]:
    """A check for settings that take one of a few words."""

    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def env_name(section: str, key: str) -> str:
    """The environment variable that overrides `section.key`."""
    return f"{ENV_PREFIX}{section.upper()}__{key.upper()}"


def load_section(cls: type[T], section: str, table: Mapping[str, Any], env: Mapping[str, str]) -> T:
    """Builds the dataclass `cls` for `[section]` from a TOML table and the environment."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"unknown setting {section}.{unknown[0]}; known settings of [{section}]: "
            + ", ".join(sorted(known))
        )
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = f"{section}.{f.name}"
        variable = env_name(section, f.name)
        raw: Any
        if variable in env:
            raw, origin = env[variable], f"environment variable {variable}"
        elif f.name in table:
            raw, origin = table[f.name], "config file"
        else:
            continue
        try:
            value = _coerce(raw, hints[f.name])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{key} (from {origin}): {exc}") from None
        check = f.metadata.get("check")
        problem = check(value) if check else None
        if problem:
            raise ConfigError(f"{key} (from {origin}) {problem}; got {raw!r}")
        values[f.name] = value
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        check = f.metadata.get("check")
        if f.name not in values and check and check(f.default):
            raise ConfigError(f"{section}.{f.name}: default {f.default!r} {check(f.default)}")
    return cls(**values)


def read_file(path: Path | None) -> dict[str, Any]:
    """Reads a TOML configuration file; None means no file."""
    if path is None:
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _coerce(raw: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if raw in (None, ""):
            return None
        return _coerce(raw, options[0])
    if hint is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {raw!r}")
    if hint is int:
        if isinstance(raw, bool):
            raise ValueError(f"expected an integer, got {raw!r}")
        try:
            return int(str(raw).replace("_", ""))
        except ValueError:
            raise ValueError(f"expected an integer, got {raw!r}") from None
    if hint is float:
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
    if hint is str:
        return str(raw)
    if hint is Path:
        return Path(str(raw)).expanduser()
    if origin is tuple:
        items = raw if isinstance(raw, list) else [s for s in str(raw).split(",") if s.strip()]
        (item_hint, _ellipsis) = typing.get_args(hint)
        return tuple(
            _coerce(item.strip() if isinstance(item, str) else item, item_hint) for item in items
        )
    raise TypeError(f"unsupported setting type {hint!r}")


def describe(cls: type[Any], section: str) -> list[tuple[str, str, str, str]]:
    """(key, environment variable, default, description) for every setting of `cls`."""
    rows = []
    for f in dataclasses.fields(cls):
        default = str(f.default) if isinstance(f.default, Path) else repr(f.default)
        rows.append((f"{section}.{f.name}", env_name(section, f.name), default, f.metadata["doc"]))
    return rows
