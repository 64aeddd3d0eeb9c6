"""Where the loop says what it is doing: the command line shows it, the tests stay silent."""

from __future__ import annotations

from typing import Protocol


class LoopProgress(Protocol):
    """Where the loop says what it is doing: short notes, and progress messages of trainings."""

    def note(self, text: str) -> None: ...

    def training(self, label: str, data: dict) -> None: ...


class SilentProgress:
    def note(self, text: str) -> None:
        pass

    def training(self, label: str, data: dict) -> None:
        pass
