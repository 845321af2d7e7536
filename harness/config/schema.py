"""Tables -> dataclasses, checked against the dataclass's annotations, with one-line errors.

The one validator behind board files (boards.py) and lab files (labs.py): a key the dataclass does
not have, a value of the wrong type, or a value outside a ``Literal[...]`` is a ConfigError that
names where (the file, and for lab files the device) and the key:

    targets/b.toml: unknown key 'console.baud' (known: ...); remove or rename it
    targets/b.toml: key 'capabilities.net' must be bool, got str 'yes'
    targets/b.toml: key 'network.nic' is 'pci'; use "device" or "board"
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from harness.errors import ConfigError


@functools.cache
def hints(cls: type) -> dict[str, Any]:
    """The dataclass's field annotations, resolved (postponed annotations included)."""
    return get_type_hints(cls)


def choices(hint: Any) -> tuple | None:
    """The allowed values of a ``Literal[...]`` annotation, else None."""
    return get_args(hint) if get_origin(hint) is Literal else None


def type_ok(value: Any, hint: Any) -> bool:
    """Whether a TOML value fits an annotation (bool is not an int; an int is a float)."""
    origin = get_origin(hint) or hint
    if origin is Literal:
        return value in get_args(hint) and all(type(value) is type(c) for c in get_args(hint) if c == value)
    if origin in (Union, types.UnionType):
        return any(type_ok(value, arm) for arm in get_args(hint))
    if hint is type(None):
        return value is None
    if origin is Any:
        return True
    if origin is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is list:
        (item,) = get_args(hint) or (Any,)
        return isinstance(value, list) and all(type_ok(v, item) for v in value)
    if origin is dict:
        key, item = get_args(hint) or (Any, Any)
        return isinstance(value, dict) and all(type_ok(k, key) and type_ok(v, item) for k, v in value.items())
    return isinstance(value, origin)


def one_of(options: Iterable[Any]) -> str:
    """``use "a" or "b"`` / ``use one of a, b, c``: the tail of an error about a closed choice."""
    options = list(options)
    if len(options) == 2:
        return f'use "{options[0]}" or "{options[1]}"'
    return f"use one of {', '.join(str(o) for o in options)}"


def unknown_key(where: str, key: str, known: Iterable[str]) -> ConfigError:
    return ConfigError(f"{where}: unknown key '{key}' (known: {', '.join(sorted(known))}); remove or rename it")


def want(value: Any, kind: type | tuple[type, ...], where: str, key: str, what: str) -> Any:
    """``value`` if it is a ``kind`` (a bool is never an int), else a one-line error saying ``what``."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds and int in kinds)
    if not ok:
        raise ConfigError(f"{where}: key '{key}' must be {what}, got {type(value).__name__} {value!r}")
    return value


def check_value(cls: type, name: str, value: Any, where: str, key: str) -> Any:
    """One field's value checked against its annotation in ``cls``."""
    hint = hints(cls)[name]
    allowed = choices(hint)
    if allowed is not None:
        if value not in allowed or not type_ok(value, hint):
            raise ConfigError(f"{where}: key '{key}' is {value!r}; {one_of(allowed)}")
        return value
    if not type_ok(value, hint):
        shown = next(f.type for f in dataclasses.fields(cls) if f.name == name)
        raise ConfigError(f"{where}: key '{key}' must be {shown}, got {type(value).__name__} {value!r}")
    return value


def check_table(cls: type, data: Any, where: str, prefix: str = "", keys: Iterable[str] | None = None) -> dict:
    """A (partial) table for ``cls`` checked key by key; ``keys`` narrows which fields may appear.
    ``prefix`` is how the table's keys are written in errors (``"console."``)."""
    if not isinstance(data, dict):
        table = prefix.rstrip(".") or "table"
        raise ConfigError(f"{where}: key '{table}' must be a table, got {type(data).__name__} {data!r}")
    known = [f.name for f in dataclasses.fields(cls) if f.init] if keys is None else list(keys)
    for name, value in data.items():
        if name not in known:
            raise unknown_key(where, prefix + name, known)
        check_value(cls, name, value, where, prefix + name)
    return dict(data)


def fill(cls: type, data: Any, where: str, prefix: str = "", *, base: Any = None,
         keys: Iterable[str] | None = None) -> Any:  # fmt: skip
    """A ``cls`` from a table: ``base`` (default: ``cls()``) with the table's keys checked and applied."""
    values = check_table(cls, data, where, prefix, keys)
    return dataclasses.replace(base if base is not None else cls(), **values)


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file as a dict, or a one-line ConfigError naming the file (``what``: "target file")."""
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
