"""Command-line flags from a benchmark's documented `Args` dataclass (CleanRL's style, one parser for all)."""

from __future__ import annotations

import argparse
import dataclasses


def parse_dataclass(cls, description: str):
    """`cls(**flags)`: one `--flag-name` per field, typed by its default, helped by its `help` metadata;
    a bool field is a switch that is off unless given."""
    parser = argparse.ArgumentParser(description=description)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            parser.add_argument(flag, action="store_true", help=f.metadata["help"])
        else:
            parser.add_argument(
                flag, type=type(f.default), default=f.default, help=f"{f.metadata['help']} (default: {f.default!r})"
            )
    return cls(**vars(parser.parse_args()))
