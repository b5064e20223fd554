"""What the pytest plugin knows at the end of a run about recordings no test used.

Reporting a recording as unused is a step towards deleting it, so the rules lean to
keeping: a cassette whose test failed, was skipped or deselected, or ran in a mode
that does not read recordings (passthrough, verify) is never checked; and when the
run did not cover the whole suite (``-k``, ``-m``, a path or node id, ``-x``
stopping early) only the cassettes this run's tests used are checked, because a
cassette nobody touched may belong to a test that simply did not run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from seedtape import Unused, find_unused, write_unused_report


@dataclass
class UnusedTracker:
    cassettes_dir: Path
    used: set[tuple[str, str]] = field(default_factory=set)
    ran: set[str] = field(default_factory=set)  # cassettes of tests that ran through the plugin
    protected: set[str] = field(default_factory=set)  # cassettes never reported
    partial_reasons: list[str] = field(default_factory=list)

    def note_proxy(self, cassette: str, mode: str, used: set[tuple[str, str]]) -> None:
        self.used |= used
        self.ran.add(cassette)
        self.ran.update(name for name, _ in used)
        from seedtape import MODES  # the mode registry loads the proxy; a proxy ran already

        if not MODES[mode].reads_recordings:
            self.protected.add(cassette)

    def protect(self, cassette: str) -> None:
        self.protected.add(cassette)

    def partial(self, reason: str) -> None:
        if reason not in self.partial_reasons:
            self.partial_reasons.append(reason)

    def scope(self) -> list[str] | None:
        """The cassettes to check (None: every cassette in the folder), protected ones left out later."""
        return None if not self.partial_reasons else sorted(self.ran)

    def unused(self) -> list[Unused]:
        scope = self.scope()
        found = find_unused(self.cassettes_dir, self.used, scope)
        return [u for u in found if u.cassette not in self.protected]

    def write(self, path: Path, unused: list[Unused]) -> None:
        write_unused_report(
            path,
            self.cassettes_dir,
            unused,
            partial=bool(self.partial_reasons),
            partial_reasons=self.partial_reasons,
            protected=sorted(self.protected),
        )


def partial_reasons(session: pytest.Session) -> list[str]:
    """Why this run may not have covered the whole suite (empty: it did)."""
    config = session.config
    reasons = []
    if config.option.keyword:
        reasons.append(f"-k {config.option.keyword}")
    if config.option.markexpr:
        reasons.append(f"-m {config.option.markexpr}")
    if session.shouldstop or session.shouldfail:
        reasons.append("the run stopped early")
    if config.args_source == pytest.Config.ArgsSource.ARGS and not _covers_suite(config):
        reasons.append("run on " + " ".join(config.args))
    return reasons


def _covers_suite(config: pytest.Config) -> bool:
    """Do the command-line paths name the whole suite (the rootdir or every testpaths entry)?"""
    if any("::" in arg for arg in config.args):
        return False
    base = config.invocation_params.dir
    given = {(base / arg).resolve() for arg in config.args}
    root = config.rootpath.resolve()
    suite = {(root / p).resolve() for p in config.getini("testpaths")} or {root}
    return root in given or suite <= given
