"""Files: not written yet."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._state import EmulatorState


class FileStore:
    def __init__(self, state: EmulatorState) -> None:
        self._state = state
