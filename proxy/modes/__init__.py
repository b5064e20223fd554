"""Modes: one file each, one small interface (``base.Mode``)."""

from __future__ import annotations

from .auto import Auto
from .base import Mode
from .passthrough import Passthrough
from .record import Record
from .replay import Replay
from .verify import Verify

MODES: dict[str, Mode] = {mode.name: mode for mode in (Replay(), Record(), Auto(), Verify(), Passthrough())}

__all__ = ["MODES", "Mode"]
