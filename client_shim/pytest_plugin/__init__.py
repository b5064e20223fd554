"""pytest plugin (entry point ``pytest11``): each test's OpenAI calls recorded once, replayed offline.

Every test that uses a ``seedtape_*`` fixture gets an in-process proxy of its own
(no port, no server) whose cassette is ``<module>/<test>`` and whose session is the
test's own, so episode counters restart with every test. ``--seedtape-mode``
defaults to ``replay`` when ``$CI`` is set (CI never calls the network) and to
``auto`` on a laptop (record what is missing, replay the rest).

The heavy imports (the openai SDK, the proxy app) happen in the fixtures, not here:
the plugin is loaded into every pytest run of an environment that has seedtape.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import pytest

from client_shim.pytest_plugin.naming import default_cassette, session_id
from client_shim.pytest_plugin.output import miss_repr, unused_summary
from client_shim.pytest_plugin.state import PluginState
from client_shim.pytest_plugin.unused import UnusedTracker, partial_reasons
from seedtape import Settings, default_upstream

if TYPE_CHECKING:
    import httpx
    import openai
    from _pytest.terminal import TerminalReporter

    from seedtape import InProcessProxy

MARKER = "seedtape"
FALSY = ("", "0", "false", "no", "off")


STATE = pytest.StashKey[PluginState]()
_SUMMARY = pytest.StashKey[str]()
PROXY = pytest.StashKey["InProcessProxy"]()
MISSES_SEEN = pytest.StashKey[int]()


def ci_default_mode() -> str:
    """``replay`` when ``$CI`` is set (to anything but a false-ish value), else ``auto``."""
    return "replay" if os.environ.get("CI", "").strip().lower() not in FALSY else "auto"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("seedtape", "seedtape: record and replay OpenAI/Azure calls")
    group.addoption(
        "--seedtape-mode",
        metavar="MODE",
        default=None,
        help="Mode of every test's in-process proxy (one of seedtape.MODE_NAMES; `seedtape serve --help` lists them). "
        "Default: replay when $CI is set, else auto.",
    )
    group.addoption(
        "--seedtape-cassettes",
        metavar="DIR",
        default=None,
        help="Cassettes folder; a relative path is taken from the rootdir (so it can sit in addopts). Default: cassettes.",
    )
    group.addoption(
        "--seedtape-upstream",
        metavar="URL",
        default=None,
        help="Upstream for modes that call it. Default: $AZURE_OPENAI_ENDPOINT, else the OpenAI API.",
    )
    group.addoption(
        "--seedtape-report-unused",
        action="store_true",
        default=False,
        help="After the run, list recordings no test used and write .seedtape-cache/unused.json "
        "(remove them with 'seedtape prune --unused').",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "seedtape(cassette=None, mode=None, **settings): the test's cassette (default <module>/<test>), "
        "its mode (overrides --seedtape-mode), and any other seedtape Settings field (ignore_fields=..., repeats=...).",
    )
    # Relative to the rootdir, not the current directory: the same addopts line must find
    # the same cassettes whether pytest runs from the project root or a subfolder.
    mode = config.getoption("seedtape_mode")
    if mode is not None:
        from seedtape import MODE_NAMES  # the mode registry loads the proxy: only when asked

        if mode not in MODE_NAMES:
            raise pytest.UsageError(f"--seedtape-mode {mode!r}: expected one of {', '.join(MODE_NAMES)}")
    cassettes_dir = config.rootpath / (config.getoption("seedtape_cassettes") or "cassettes")
    cache_dir = config.rootpath / ".seedtape-cache"
    config.stash[STATE] = PluginState(
        mode=mode or ci_default_mode(),
        cassettes_dir=cassettes_dir.resolve(),
        cache_dir=cache_dir,
        upstream=config.getoption("seedtape_upstream") or default_upstream(),
        report_unused=config.getoption("seedtape_report_unused"),
        tracker=UnusedTracker(cassettes_dir.resolve()),
    )


# Settings of one test ---------------------------------------------------------
_TUPLE_FIELDS = {f.name for f in fields(Settings) if str(f.type).startswith("tuple")}


def marker_options(item: pytest.Item) -> dict[str, Any]:
    """The seedtape markers' keywords, nearest (function) winning over class and module."""
    options: dict[str, Any] = {}
    for mark in reversed(list(item.iter_markers(MARKER))):
        if mark.args:
            options["cassette"] = mark.args[0]
        options.update(mark.kwargs)
    return options


def item_cassette_default(item: pytest.Item) -> str:
    module = getattr(item, "module", None)
    cls = getattr(item, "cls", None)
    return default_cassette(module.__name__ if module is not None else item.path.stem, item.name, cls.__name__ if cls else None)


class MarkerError(ValueError):
    """A ``seedtape`` marker that cannot be turned into settings."""


def settings_for(item: pytest.Item, state: PluginState) -> Settings:
    """The in-process proxy's settings for one test: run options, then its marker."""
    from seedtape import validate_cassette_name

    options = marker_options(item)
    cassette = options.pop("cassette", None) or item_cassette_default(item)
    mode = options.pop("mode", None) or state.mode
    options = {k: tuple(v) if k in _TUPLE_FIELDS and isinstance(v, list) else v for k, v in options.items()}
    try:
        return Settings(
            mode=mode,
            upstream=state.upstream,
            cassettes_dir=state.cassettes_dir,
            cache_dir=state.cache_dir,
            cassette=validate_cassette_name(cassette),
            session=session_id(item.nodeid),
        ).with_(**options)
    except (TypeError, ValueError) as exc:
        raise MarkerError(f"@pytest.mark.seedtape: {exc}") from exc


def uses_seedtape(item: pytest.Item) -> bool:
    names = getattr(item, "fixturenames", ())
    return any(name.startswith("seedtape_") for name in names) or item.get_closest_marker(MARKER) is not None


def _cassette_or_none(item: pytest.Item, state: PluginState) -> str | None:
    try:
        return settings_for(item, state).cassette
    except MarkerError:
        return None


# Fixtures -----------------------------------------------------------------------
@pytest.fixture
def seedtape_settings(request: pytest.FixtureRequest) -> Settings:
    """This test's proxy settings (override the fixture to change them in code)."""
    try:
        return settings_for(request.node, request.config.stash[STATE])
    except MarkerError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def seedtape_upstream_transport() -> httpx.AsyncBaseTransport | None:
    """The proxy's upstream transport: None is the network; override it to stub upstream."""
    return None


@pytest.fixture
def seedtape_cassette(seedtape_settings: Settings) -> str:
    """This test's cassette name."""
    return seedtape_settings.cassette


@pytest.fixture
def seedtape_proxy(
    request: pytest.FixtureRequest, seedtape_settings: Settings, seedtape_upstream_transport: httpx.AsyncBaseTransport | None
) -> Iterator[InProcessProxy]:
    """An in-process seedtape proxy for this test alone (its cassette, mode and session)."""
    from seedtape import InProcessProxy

    proxy = InProcessProxy(seedtape_settings, upstream_transport=seedtape_upstream_transport)
    request.node.stash[PROXY] = proxy
    try:
        yield proxy
    finally:
        request.config.stash[STATE].tracker.note_proxy(proxy.settings.cassette, proxy.settings.mode, proxy.used())
        proxy.close()


def _client_options(proxy: InProcessProxy, key_variable: str) -> dict[str, Any]:
    """Headers naming the test's cassette, mode and session, and the caller's real key.

    The key matters only when a request goes upstream (recording): the proxy forwards
    it and never writes it down. In replay any key will do, so a missing one is fine.
    """
    from seedtape import DUMMY_KEY

    settings = proxy.settings
    return {
        "cassette": settings.cassette,
        "mode": settings.mode,
        "session": settings.session,
        "api_key": os.environ.get(key_variable) or DUMMY_KEY,
    }


@pytest.fixture
def seedtape_client(seedtape_proxy: InProcessProxy) -> Iterator[openai.OpenAI]:
    """A sync ``openai.OpenAI`` answered by this test's in-process proxy."""
    client = seedtape_proxy.openai(**_client_options(seedtape_proxy, "OPENAI_API_KEY"))
    with client:
        yield client


@pytest.fixture
def seedtape_async_client(seedtape_proxy: InProcessProxy) -> openai.AsyncOpenAI:
    """An ``openai.AsyncOpenAI`` answered by this test's in-process proxy (no socket to close)."""
    return seedtape_proxy.async_openai(**_client_options(seedtape_proxy, "OPENAI_API_KEY"))


@pytest.fixture
def seedtape_azure_client(seedtape_proxy: InProcessProxy) -> Iterator[openai.AzureOpenAI]:
    """A sync ``openai.AzureOpenAI`` answered by this test's in-process proxy."""
    client = seedtape_proxy.azure(**_client_options(seedtape_proxy, "AZURE_OPENAI_API_KEY"))
    with client:
        yield client


@pytest.fixture
def seedtape_async_azure_client(seedtape_proxy: InProcessProxy) -> openai.AsyncAzureOpenAI:
    """An ``openai.AsyncAzureOpenAI`` answered by this test's in-process proxy."""
    return seedtape_proxy.async_azure(**_client_options(seedtape_proxy, "AZURE_OPENAI_API_KEY"))


@pytest.fixture
def seedtape_app(seedtape_proxy: InProcessProxy) -> Any:
    """This test's proxy as an ASGI app, for an ASGI client of your own."""
    return seedtape_proxy.app()


# Replay misses fail the test with the proxy's message -----------------------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    proxy = item.stash.get(PROXY, None)
    if proxy is not None:
        seen = item.stash.get(MISSES_SEEN, 0)
        new = proxy.misses[seen:]
        item.stash[MISSES_SEEN] = len(proxy.misses)
        if new and not hasattr(report, "wasxfail"):
            report.outcome = "failed"
            report.longrepr = miss_repr(item, proxy.settings, new, report.longrepr, call.excinfo)
    state = item.config.stash[STATE]
    if state.report_unused and (report.failed or report.skipped) and uses_seedtape(item):
        cassette = _cassette_or_none(item, state)
        if cassette:
            state.tracker.protect(cassette)
    return report


# Unused recordings -----------------------------------------------------------------
def pytest_deselected(items: list[pytest.Item]) -> None:
    if not items:
        return
    state = items[0].config.stash[STATE]
    if not state.report_unused:
        return
    state.tracker.partial("some tests were deselected")
    for item in items:
        if uses_seedtape(item):
            cassette = _cassette_or_none(item, state)
            if cassette:
                state.tracker.protect(cassette)


def _distributed(config: pytest.Config) -> bool:
    """Is this run split over pytest-xdist workers (whose used recordings this process never sees)?"""
    return (
        hasattr(config, "workerinput")
        or bool(getattr(config.option, "numprocesses", None))
        or (getattr(config.option, "dist", "no") != "no")
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None or not state.report_unused:
        return
    if hasattr(session.config, "workerinput"):
        return  # the controller says it once
    if _distributed(session.config):
        session.config.stash[_SUMMARY] = "not available with pytest-xdist (-n/--dist): run without it to list unused recordings"
        return
    if exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        session.config.stash[_SUMMARY] = f"run did not complete (exit status {int(exitstatus)}): no unused-recordings report written"
        return
    for reason in partial_reasons(session):
        state.tracker.partial(reason)
    unused = state.tracker.unused()
    state.tracker.write(state.report_path, unused)
    session.config.stash[_SUMMARY] = unused_summary(state, unused)


def pytest_terminal_summary(terminalreporter: TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    text = config.stash.get(_SUMMARY, None)
    if text is None:
        return
    terminalreporter.write_sep("=", "seedtape: unused recordings")
    for line in text.splitlines():
        terminalreporter.write_line(line)
