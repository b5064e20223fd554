"""What the plugin settled once per run from the command line (shared by its modules)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from client_shim.pytest_plugin.unused import UnusedTracker

REPORT_NAME = "unused.json"


@dataclass
class PluginState:
    """What the plugin settled once per run from the command line."""

    mode: str
    cassettes_dir: Path
    cache_dir: Path
    upstream: str
    report_unused: bool
    tracker: UnusedTracker

    @property
    def report_path(self) -> Path:
        return self.cache_dir / REPORT_NAME
