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
