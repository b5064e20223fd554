"""What the pytest plugin prints: the replay-miss failure and the unused-recordings summary.

A replay miss reaches the test as ``openai.NotFoundError`` raised deep in the SDK;
its traceback says nothing the user can act on. The failure is rewritten to lead
with the proxy's own explanation (closest recording, differing fields), the line of
the test that made the call, and how to record it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from seedtape import MISS_TYPES, Miss

if TYPE_CHECKING:
    from client_shim.pytest_plugin.state import PluginState
    from seedtape import Settings, Unused

SHOWN_UNUSED = 30
_HINTS = {
    "seedtape_cassette_miss": "To record it: run this test once with --seedtape-mode auto (and real credentials), then commit the cassette folder.",
    "seedtape_unrecorded_route": "seedtape records the API families the README lists under 'What seedtape records'; replay never forwards any other route.",
    "seedtape_episodes_exhausted": "The test sends this request more times than were recorded: re-record it with --seedtape-mode record.",
}


def _is_the_miss(excinfo: pytest.ExceptionInfo[BaseException] | None) -> bool:
    """Is the test's own exception just the SDK's rendering of a replay miss?"""
    exc: BaseException | None = excinfo.value if excinfo is not None else None
    seen = 0
    while exc is not None and seen < 10:
        if getattr(exc, "type", None) in MISS_TYPES:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _call_site(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException] | None) -> str | None:
    """``file:line`` of the test's own frame that made the failing call."""
    if excinfo is None:
        return None
    for entry in reversed(excinfo.traceback):
        if Path(entry.path) == item.path:
            return f"{item.path.name}:{entry.lineno + 1} (in {entry.name})"
    return None


def miss_repr(
    item: pytest.Item, settings: Settings, misses: Sequence[Miss], original: Any, excinfo: pytest.ExceptionInfo[BaseException] | None
) -> str:
    lines = [f"seedtape replay miss: {miss.message}" for miss in misses]
    site = _call_site(item, excinfo)
    if site:
        lines.append(f"  called from {site}")
    lines.append(f"  cassette {settings.cassette!r} in {settings.cassettes_dir} (mode {settings.mode})")
    hint = _HINTS.get(misses[0].type)
    if hint:
        lines.append(hint)
    if original is not None and not _is_the_miss(excinfo):
        lines += ["", "The test also failed with:", str(original)]
    return "\n".join(lines)


def unused_summary(state: PluginState, unused: Sequence[Unused]) -> str:
    tracker = state.tracker
    lines = []
    if tracker.partial_reasons:
        lines.append(
            f"partial run ({'; '.join(tracker.partial_reasons)}): only the {len(tracker.ran)} cassette(s) "
            "this run's tests used were checked"
        )
    if tracker.protected:
        lines.append(
            f"{len(tracker.protected)} cassette(s) of tests that failed, were skipped or deselected, "
            "or ran in passthrough/verify mode were not checked"
        )
    if not unused:
        lines.append("no unused recordings")
    else:
        lines.append(f"{len(unused)} unused recording(s) in {state.cassettes_dir}:")
        for entry in unused[:SHOWN_UNUSED]:
            lines.append(f"  {entry.file}  {entry.model}".rstrip())
        if len(unused) > SHOWN_UNUSED:
            lines.append(f"  ... and {len(unused) - SHOWN_UNUSED} more")
    lines.append(f"report: {state.report_path}")
    if unused:
        lines.append("remove them with: seedtape prune --unused" + _report_option(state))
    return "\n".join(lines)


def _report_option(state: PluginState) -> str:
    default = Path(".seedtape-cache") / "unused.json"
    try:
        if state.report_path.resolve() == default.resolve():
            return ""
    except OSError:
        pass
    return f" --report {state.report_path}"
