"""The pytest plugin, run the way users run it: inner pytest sessions through ``pytester`` (issue 5, items 2 and 5).

The inner sessions record in auto mode against the simulator served by uvicorn on
127.0.0.1 (``--seedtape-upstream``), then replay with ``CI`` set and the upstream's
call count unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import openai  # noqa: F401
import pytest
from click.testing import CliRunner

# Imported here once: pytester's inline runs drop the modules a run imported, so
# anything heavy the inner sessions use would otherwise be imported again every run.
import seedtape.client.inprocess  # noqa: F401
from client_shim.pytest_plugin import ci_default_mode
from client_shim.pytest_plugin.naming import MAX_SEGMENT, default_cassette, sanitize_segment, session_id
from seedtape.cli import main as seedtape_cli
from seedtape.serving import serve_in_thread
from seedtape.sim.simulator import SimConfig, Simulator, create_simulator

pytest_plugins = ["pytester"]

STORY_TESTS = """
import openai
import pytest

PANDA = [{"role": "system", "content": "You always produce 3-sentence answers."},
         {"role": "user", "content": "Create a story about red panda."}]


@pytest.fixture
def anyio_backend():
    return "asyncio"


def ask(client, **extra):
    return client.chat.completions.create(model="gpt-4o-mini", messages=PANDA, **extra).choices[0].message.content


def test_seeded(seedtape_client, seedtape_proxy):
    print("MODE=" + seedtape_proxy.settings.mode)
    assert "panda" in ask(seedtape_client, seed=SEED, temperature=0.1)


def test_same_prompt_twice_gives_two_stories(seedtape_client):
    assert ask(seedtape_client, temperature=0.7) != ask(seedtape_client, temperature=0.7)


def test_azure(seedtape_azure_client):
    assert "panda" in ask(seedtape_azure_client, seed=3)


@pytest.mark.anyio
async def test_async_stream(seedtape_async_client):
    stream = await seedtape_async_client.chat.completions.create(
        model="gpt-4o-mini", messages=PANDA, seed=42, stream=True, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].usage is not None


@pytest.mark.anyio
async def test_async_azure(seedtape_async_azure_client):
    answer = await seedtape_async_azure_client.chat.completions.create(model="gpt-4o-mini", messages=PANDA, seed=5)
    assert "panda" in answer.choices[0].message.content


@pytest.mark.parametrize("who", ["red/panda cub", "fox"])
def test_parametrized(seedtape_client, seedtape_cassette, who):
    print("CASSETTE=" + seedtape_cassette)
    ask(seedtape_client, seed=1, user=who)
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Simulator, str]]:
    """The simulator, keeping what it receives (``.received``) to check what was forwarded."""
    simulator = create_simulator(SimConfig(keep_requests=True))
    with serve_in_thread(simulator.app) as url:
        yield simulator, url


class Project:
    """One inner pytest project: its tests, its cassettes, and runs of it."""

    def __init__(self, pytester: pytest.Pytester, sim: Simulator, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pytester = pytester
        self.sim = sim
        self.url = url
        self.monkeypatch = monkeypatch
        self.cassettes = pytester.path / "cassettes"
        sim.reset()

    def write(self, source: str = STORY_TESTS, name: str = "test_story", seed: int = 42) -> None:
        self.pytester.makepyfile(**{name: source.replace("SEED", str(seed))})

    def run(self, *args: str, ci: bool = False) -> pytest.RunResult:
        if ci:
            self.monkeypatch.setenv("CI", "true")
        else:
            self.monkeypatch.delenv("CI", raising=False)
        # hypothesis's plugin would import hypothesis afresh in every inner run (a second each)
        plain = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-s")
        return self.pytester.runpytest(*plain, "--seedtape-upstream", self.url, *args)

    def files(self) -> list[str]:
        return sorted(p.relative_to(self.cassettes).as_posix() for p in self.cassettes.rglob("*.json"))


@pytest.fixture
def project(pytester: pytest.Pytester, upstream: tuple[Simulator, str], monkeypatch: pytest.MonkeyPatch) -> Project:
    sim, url = upstream
    return Project(pytester, sim, url, monkeypatch)


def printed(result: pytest.RunResult, name: str) -> str:
    """The value an inner test printed as ``NAME=value``."""
    found = re.search(rf"{name}=([^\n]*)$", result.stdout.str(), re.MULTILINE)  # the whole line: answers end with a full stop
    assert found, f"{name}= not printed"
    return found.group(1)


def recorded_project(project: Project) -> Project:
    project.write()
    project.run().assert_outcomes(passed=7)
    return project


# Record once, replay in CI -----------------------------------------------------------------
OPENAI_SECRET = "sk-seedtape-plugin-SECRET-0123456789"
AZURE_SECRET = "azkey-seedtape-plugin-SECRET-0123456789"


def test_record_locally_then_replay_in_ci(project: Project) -> None:
    project.monkeypatch.setenv("OPENAI_API_KEY", OPENAI_SECRET)
    project.monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_SECRET)
    project.write()
    first = project.run()
    first.assert_outcomes(passed=7)
    first.stdout.fnmatch_lines(["*MODE=auto*"])
    calls = project.sim.calls
    assert calls == len(project.sim.received) == 8  # the unseeded prompt twice: two episodes
    # Recording forwards the caller's real keys upstream, and writes them nowhere.
    sent = {(c.path.startswith("/openai/"), c.headers.get("authorization") or c.headers.get("api-key")) for c in project.sim.received}
    assert sent == {(False, f"Bearer {OPENAI_SECRET}"), (True, AZURE_SECRET)}
    written = [p for p in project.pytester.path.rglob("*") if p.is_file() and not p.name.endswith(".py")]
    assert written and not [p for p in written if OPENAI_SECRET.encode() in p.read_bytes() or AZURE_SECRET.encode() in p.read_bytes()]
    folders = {f.rsplit("/", 1)[0] for f in project.files()}
    assert folders == {
        "test_story/test_seeded",
        "test_story/test_same_prompt_twice_gives_two_stories",
        "test_story/test_azure",
        "test_story/test_async_stream",
        "test_story/test_async_azure",
        "test_story/test_parametrized[red_panda_cub]",
        "test_story/test_parametrized[fox]",
    }

    project.monkeypatch.delenv("OPENAI_API_KEY")  # CI has no credentials
    project.monkeypatch.delenv("AZURE_OPENAI_API_KEY")
    replay = project.run(ci=True)
    replay.assert_outcomes(passed=7)
    replay.stdout.fnmatch_lines(["*MODE=replay*", "*CASSETTE=test_story/test_parametrized[[]red_panda_cub[]]*"])
    assert project.sim.calls == calls  # nothing reached upstream


def test_each_test_is_its_own_session(project: Project) -> None:
    """Episode counters restart with every test: the second test's first request is
    served episode 1 of the shared cassette, not recorded as episode 3."""
    source = """
import pytest

def story(client):
    answer = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], temperature=1)
    return answer.choices[0].message.content

@pytest.mark.seedtape(cassette="shared")
def test_first(seedtape_client):
    print("FIRST=" + story(seedtape_client) + "|" + story(seedtape_client))

@pytest.mark.seedtape(cassette="shared")
def test_second(seedtape_client):
    print("SECOND=" + story(seedtape_client))
"""
    project.write(source)
    recorded = project.run()
    recorded.assert_outcomes(passed=2)
    assert project.sim.calls == 2
    first, second = printed(recorded, "FIRST"), printed(recorded, "SECOND")
    one, two = first.split("|")
    assert one != two and second == one
    replayed = project.run(ci=True)
    assert (printed(replayed, "FIRST"), printed(replayed, "SECOND")) == (first, second)
    assert project.sim.calls == 2


def test_explicit_mode_beats_the_ci_default(project: Project) -> None:
    project.write()
    project.run("--seedtape-mode", "auto", ci=True).assert_outcomes(passed=7)
    assert project.sim.calls == 8


def test_cassettes_option_and_app_fixture(project: Project) -> None:
    source = """
import httpx
import pytest

@pytest.fixture
def anyio_backend():
    return "asyncio"

@pytest.mark.anyio
async def test_own_asgi_client(seedtape_app, seedtape_cassette):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=seedtape_app), base_url="http://t") as client:
        answer = await client.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}], "seed": 1},
            headers={"authorization": "Bearer sk-test"},
        )
    assert answer.status_code == 200
    assert answer.headers["x-seedtape-cache"] in ("recorded", "hit")
"""
    project.write(source, name="test_app")
    project.run("--seedtape-cassettes", "elsewhere/tapes").assert_outcomes(passed=1)
    assert [p.parent.name for p in (project.pytester.path / "elsewhere/tapes/test_app").rglob("*.json")] == ["test_own_asgi_client"]
    project.run("--seedtape-cassettes", "elsewhere/tapes", ci=True).assert_outcomes(passed=1)
    assert project.sim.calls == 1


# A miss fails the test with the proxy's message ----------------------------------------------------
def test_replay_miss_fails_with_closest_recording_and_differing_fields(project: Project) -> None:
    recorded_project(project)
    project.write(seed=7)
    result = project.run(ci=True)
    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines(
        [
            (
                "*seedtape replay miss: no recording for this request in cassette 'test_story/test_seeded'. "
                "Closest recorded request: key * (model gpt-4o-mini); differs in: seed: 7 != 42"
            ),
            "*called from test_story.py:* (in ask)",
            "*To record it: run this test once with --seedtape-mode auto*",
        ]
    )
    assert "Error code: 404" not in result.stdout.str()  # the SDK's rendering is replaced, not repeated


def test_a_swallowed_miss_still_fails_the_test(project: Project) -> None:
    source = """
import openai

def test_tolerant(seedtape_client):
    try:
        seedtape_client.chat.completions.create(model="m", messages=[{"role": "user", "content": "never recorded"}])
    except openai.NotFoundError:
        pass
"""
    project.write(source)
    result = project.run(ci=True)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*seedtape replay miss: no recording for this request in cassette 'test_story/test_tolerant' (the cassette is empty)*"]
    )


# The marker -----------------------------------------------------------------------------------
MARKED = """
import pytest

pytestmark = pytest.mark.seedtape(cassette="module-wide")

def ask(client):
    return client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hello"}], seed=9)

def test_module_cassette(seedtape_cassette, seedtape_client):
    assert seedtape_cassette == "module-wide"
    ask(seedtape_client)

@pytest.mark.seedtape("shelf/panda")
def test_positional_cassette(seedtape_cassette, seedtape_client):
    assert seedtape_cassette == "shelf/panda"
    ask(seedtape_client)

@pytest.mark.seedtape(cassette="never-recorded", mode="replay")
def test_pinned_to_replay(seedtape_client):
    ask(seedtape_client)

@pytest.mark.seedtape(cassette="live", mode="passthrough")
def test_passthrough(seedtape_client):
    ask(seedtape_client)

@pytest.mark.seedtape(ignore_fields=["user"])
def test_settings_from_the_marker(seedtape_settings, seedtape_cassette):
    assert seedtape_settings.ignore_fields == ("user",)
    assert seedtape_cassette == "module-wide"

@pytest.mark.seedtape(cassette="../outside")
def test_bad_name(seedtape_client):
    pass
"""


def test_marker_overrides_cassette_mode_and_settings(project: Project) -> None:
    project.write(MARKED, name="test_marked")
    result = project.run()
    result.assert_outcomes(passed=4, failed=1, errors=1)
    result.stdout.fnmatch_lines(["*test_pinned_to_replay*", "*seedtape replay miss*cassette 'never-recorded'*(the cassette is empty)*"])
    result.stdout.fnmatch_lines(["*@pytest.mark.seedtape: invalid cassette name '../outside'*"])
    assert {f.rsplit("/", 1)[0] for f in project.files()} == {"module-wide", "shelf/panda"}
    assert project.sim.calls == 2 + 1  # module-wide and shelf recorded, passthrough forwarded and not stored


# Unused recordings ------------------------------------------------------------------------------
def read_report(project: Project) -> dict[str, object]:
    return json.loads((project.pytester.path / ".seedtape-cache" / "unused.json").read_text())


@pytest.mark.slow
def test_unused_recordings_reported_then_pruned(project: Project) -> None:
    recorded_project(project)
    before = project.files()
    # The suite changes: a test is renamed, another now asks with another seed (and is re-recorded).
    source = STORY_TESTS.replace("def test_azure(", "def test_azure_renamed(").replace("seed=3", "seed=4")
    project.write(source)
    project.run().assert_outcomes(passed=7)

    result = project.run("--seedtape-report-unused", ci=True)
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(
        [
            "*= seedtape: unused recordings =*",
            "1 unused recording(s) in *",
            "  test_story/test_azure/*.json  gpt-4o-mini",
            "report: *unused.json",
            "remove them with: seedtape prune --unused",
        ]
    )
    report = read_report(project)
    assert report["partial"] is False
    [entry] = report["unused"]  # type: ignore[misc]
    assert entry["cassette"] == "test_story/test_azure"

    project.monkeypatch.chdir(project.pytester.path)
    outcome = CliRunner().invoke(seedtape_cli, ["prune", "--unused"])  # the report's default place, from the rootdir
    assert outcome.exit_code == 0, outcome.output
    assert "removed 1 unused recording(s)" in outcome.output
    assert not (project.cassettes / "test_story" / "test_azure").exists()  # the emptied folder went too
    assert set(before) - set(project.files()) == {entry["file"]}

    again = project.run("--seedtape-report-unused", ci=True)
    again.assert_outcomes(passed=7)
    again.stdout.fnmatch_lines(["no unused recordings"])


def test_unused_report_keeps_what_did_not_run(project: Project) -> None:
    """Skipped, failed and deselected tests' cassettes are never listed; a -k run checks only what it used."""
    recorded_project(project)
    skipped = STORY_TESTS.replace("def test_azure(", "@pytest.mark.skip(reason='flaky today')\ndef test_azure(")
    failing = skipped.replace('print("MODE=" + seedtape_proxy.settings.mode)', "assert False, 'broken'")
    project.write(failing)
    result = project.run("--seedtape-report-unused", ci=True)
    result.assert_outcomes(passed=5, failed=1, skipped=1)
    assert read_report(project)["unused"] == []
    assert sorted(read_report(project)["protected"]) == ["test_story/test_azure", "test_story/test_seeded"]  # type: ignore[arg-type]

    # An orphan folder (a test deleted long ago) is listed by a full run, not by a -k run.
    kept = next((project.cassettes / "test_story" / "test_azure").glob("*.json"))
    orphan = project.cassettes / "test_story" / "test_deleted" / kept.name
    orphan.parent.mkdir()
    orphan.write_text(kept.read_text())
    project.write()
    partial = project.run("--seedtape-report-unused", "-k", "seeded or azure", ci=True)
    partial.assert_outcomes(passed=3, deselected=4)
    partial.stdout.fnmatch_lines(
        ["partial run (*-k seeded or azure*): only the 3 cassette(s) this run's tests used were checked", "no unused recordings"]
    )
    assert read_report(project)["partial"] is True

    full = project.run("--seedtape-report-unused", ci=True)
    full.assert_outcomes(passed=7)
    full.stdout.fnmatch_lines(["1 unused recording(s) in *", f"  test_story/test_deleted/{kept.name}  gpt-4o-mini"])


# Names and defaults -------------------------------------------------------------------------------
def test_default_cassette_names_are_valid_and_distinct() -> None:
    assert default_cassette("tests.test_story", "test_x") == "tests.test_story/test_x"
    assert default_cassette("test_story", "test_x", "TestPanda") == "test_story/TestPanda.test_x"
    assert default_cassette("m", "test_x[red/panda cub-é]") == "m/test_x[red_panda_cub-_]"
    long_a, long_b = default_cassette("m", "test_" + "a" * 300), default_cassette("m", "test_" + "a" * 299 + "b")
    assert long_a != long_b and len(long_a.split("/")[1]) == MAX_SEGMENT
    assert sanitize_segment("..") == "__" and sanitize_segment("") == "_"
    assert session_id("t.py::a") != session_id("t.py::b") and session_id("t.py::a") == session_id("t.py::a")


@pytest.mark.parametrize(
    ("value", "mode"),
    [(None, "auto"), ("", "auto"), ("false", "auto"), ("0", "auto"), ("true", "replay"), ("1", "replay"), ("yes", "replay")],
)
def test_ci_variable_picks_the_default_mode(monkeypatch: pytest.MonkeyPatch, value: str | None, mode: str) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert ci_default_mode() == mode


def test_upstream_transport_fixture_stubs_upstream(project: Project) -> None:
    """Overriding ``seedtape_upstream_transport`` records from a stub instead of the network."""
    project.pytester.makeconftest("""
import httpx
import pytest

@pytest.fixture
def seedtape_upstream_transport():
    answer = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "stubbed"}, "finish_reason": "stop"}]}
    return httpx.MockTransport(lambda request: httpx.Response(200, json=answer))
""")
    project.write("""
def test_stubbed(seedtape_client):
    answer = seedtape_client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "stubbed"
""")
    project.run("--seedtape-mode", "record").assert_outcomes(passed=1)
    assert project.sim.calls == 0 and project.sim.received == [] and project.files()[0].startswith("test_story/test_stubbed/")
