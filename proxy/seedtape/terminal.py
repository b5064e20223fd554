"""Rendering rich output to a string: for reports written to files and for tests."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console


def render_text(renderable: Any, width: int, color: bool = False) -> str:
    """ANSI colours only when asked for, so files and CI logs stay plain text."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        force_terminal=color,
        color_system="standard" if color else None,
        no_color=not color,
        highlight=False,
        emoji=False,
    )
    console.print(renderable)
    return buffer.getvalue()
