"""The JSON round trip of records and settings: `to_dict`/`from_dict`, and atomic `write_json`/`read_json`.

Every record written to a run folder goes through here, so a run can be read
by a person and read back on resume. `from_dict` follows the dataclass's type
hints (nested records, enums, tuples, optional fields) and ignores fields it
does not know, so a newer file reads in an older autoreward.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import types
import typing
from pathlib import Path
from typing import Any


def to_dict(record) -> Any:
    """A JSON-ready copy of a record (enums become their values, tuples lists)."""
    if dataclasses.is_dataclass(record):
        return {f.name: to_dict(getattr(record, f.name)) for f in dataclasses.fields(record)}
    if isinstance(record, enum.Enum):
        return record.value
    if isinstance(record, (list, tuple)):
        return [to_dict(v) for v in record]
    if isinstance(record, dict):
        return {k: to_dict(v) for k, v in record.items()}
    return record


def from_dict(cls, data: Any):
    """Rebuild a record of type `cls` from `to_dict`'s output."""
    return _convert(cls, data)


def _convert(kind, value):
    if value is None:
        return None
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        return _convert(options[0], value) if len(options) == 1 else value
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        known = {f.name for f in dataclasses.fields(kind)}
        return kind(**{k: _convert(hints[k], v) for k, v in value.items() if k in known})
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind(value)
    if origin is tuple:
        args = typing.get_args(kind)
        return tuple(_convert(args[0], v) for v in value) if args else tuple(value)
    if origin is dict:
        key_kind, value_kind = typing.get_args(kind)
        keyed = int if key_kind is int else (lambda key: key)  # JSON writes every key as a string
        return {keyed(k): _convert(value_kind, v) for k, v in value.items()}
    return value


# The longest string and the most items `checked` takes from a worker: a record is never this large.
MAX_STRING = 100_000
MAX_ITEMS = 100_000


def checked(cls, data: Any):
    """Rebuild a record of type `cls` from data a worker produced, checking it against the type hints first.

    Unlike `from_dict`, which trusts its input (a run folder's own records), every value must have its
    hint's type: numbers are finite ints or floats (never a bool, a string or NaN), strings and
    collections are bounded, a record's fields are all known and none is missing. A mismatch raises
    ValueError naming the path (`curve[3].fitness: expected a finite number, got 'x'`).
    """
    return _checked(cls, data, "")


def _checked(kind, value, where: str):
    label = where or "the value"
    if kind is Any or kind is typing.Any:
        return value
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _checked(option, value, where)
            except ValueError as error:
                errors.append(str(error))
        raise ValueError(errors[0] if len(errors) == 1 else f"{label}: expected {kind}, got {_shown(value)}")
    if origin is typing.Literal:
        if value not in typing.get_args(kind) or isinstance(value, bool) != any(
            isinstance(a, bool) for a in typing.get_args(kind)
        ):
            raise ValueError(f"{label}: expected one of {typing.get_args(kind)}, got {_shown(value)}")
        return value
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise ValueError(f"{label}: expected a {kind.__name__} record, got {_shown(value)}")
        hints = typing.get_type_hints(kind)
        fields = {f.name: f for f in dataclasses.fields(kind)}
        unknown = sorted(set(value) - set(fields), key=str)
        if unknown:
            raise ValueError(f"{label}: {kind.__name__} has no field {str(unknown[0])[:80]!r}")
        missing = [
            name
            for name, f in fields.items()
            if name not in value and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise ValueError(f"{label}: the {kind.__name__} record lacks {missing[0]!r}")
        return kind(**{k: _checked(hints[k], v, f"{where}.{k}" if where else k) for k, v in value.items()})
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        try:
            return kind(value)
        except (ValueError, TypeError):
            raise ValueError(f"{label}: expected one of {[m.value for m in kind]}, got {_shown(value)}") from None
    if origin in (tuple, list):
        if not isinstance(value, list) or len(value) > MAX_ITEMS:
            raise ValueError(f"{label}: expected a list of at most {MAX_ITEMS} items, got {_shown(value)}")
        args = [a for a in typing.get_args(kind) if a is not Ellipsis]
        items = [_checked(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)] if args else list(value)
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict) or len(value) > MAX_ITEMS:
            raise ValueError(f"{label}: expected a mapping of at most {MAX_ITEMS} items, got {_shown(value)}")
        key_kind, value_kind = typing.get_args(kind)
        result = {}
        for key, item in value.items():
            if not isinstance(key, str) or len(key) > MAX_STRING:
                raise ValueError(f"{label}: a key is not a short string")
            if key_kind is int:
                try:
                    key = int(key)
                except ValueError:
                    raise ValueError(f"{label}: key {key[:80]!r} is not a whole number") from None
            result[key] = _checked(value_kind, item, f"{where}[{str(key)[:40]!r}]")
        return result
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{label}: expected true or false, got {_shown(value)}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2**63:
            raise ValueError(f"{label}: expected a whole number, got {_shown(value)}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{label}: expected a finite number, got {_shown(value)}")
        return float(value)
    if kind is str:
        if not isinstance(value, str) or len(value) > MAX_STRING:
            raise ValueError(f"{label}: expected a string of at most {MAX_STRING} characters, got {_shown(value)}")
        return value
    raise ValueError(f"{label}: a {kind} cannot be taken from a worker")


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def write_json(path: Path, record) -> None:
    """Write a record (or plain data) as indented JSON, atomically: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(to_dict(record), indent=2, allow_nan=True) + "\n")
    temporary.replace(path)


def read_json(path: Path, cls=None):
    data = json.loads(Path(path).read_text())
    return from_dict(cls, data) if cls is not None else data
