"""Modes: one file each, one small interface (``base.Mode``), one registry (here).

The registry is the only list of mode names: the CLI's choices, the pytest plugin's
``--seedtape-mode`` and the ``x-seedtape-mode`` header check all read it.
"""

from __future__ import annotations

from seedtape.errors import ProxyError
from seedtape.modes.auto import Auto
from seedtape.modes.base import Mode
from seedtape.modes.passthrough import Passthrough
from seedtape.modes.record import Record
from seedtape.modes.replay import Replay
from seedtape.modes.verify import Verify

MODES: dict[str, Mode] = {mode.name: mode for mode in (Replay(), Record(), Auto(), Verify(), Passthrough())}
MODE_NAMES: tuple[str, ...] = tuple(MODES)
MODE_HEADER = "x-seedtape-mode"

__all__ = ["MODES", "MODE_HEADER", "MODE_NAMES", "Mode", "check_mode", "mode_named"]


def check_mode(name: str) -> str:
    """A mode name from settings; ValueError names the known ones (start-up errors)."""
    if name not in MODES:
        raise ValueError(f"unknown mode {name!r}; expected one of {', '.join(MODE_NAMES)}")
    return name


def mode_named(header: str | None, default: str) -> Mode:
    """The mode of one request: its ``x-seedtape-mode`` header, else the server's.

    An empty header is no header (a client template that left it blank).
    """
    name = (header or default).strip().lower()
    mode = MODES.get(name)
    if mode is None:
        raise ProxyError(
            400, f"unknown {MODE_HEADER} {name[:40]!r}; expected one of {', '.join(MODE_NAMES)}", "invalid_request_error", "invalid_mode"
        )
    return mode
