"""``seedtape demo``: the seed documents' scenarios, end to end, on the built-in simulator.

Everything a user would do by hand: a real proxy on 127.0.0.1 in front of the
simulator, the real ``openai`` SDK, record in auto mode, then replay the same calls
offline (upstream unreachable) and show they come back identical, in order.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
from rich.console import Console
from rich.table import Table
from rich.text import Text

from seedtape.app import create_app
from seedtape.config import Settings
from seedtape.drift.report import rich_diff
from seedtape.drift.worddiff import word_diff
from seedtape.serving import serve_in_thread
from seedtape.sim import transport_for

DEPLOYMENT = "gpt-4"
API_VERSION = "2024-02-01"
PANDA = {"system": "You always produce 3-sentence answers.", "prompt": "Create a story about red panda.", "temperature": 0.1}
UNIVERSE = {
    "system": "You are a helpful assistant.",
    "prompt": "Tell me a story about how the universe began?",
    "temperature": 0.7,
    "max_tokens": 50,
}
OFFLINE_UPSTREAM = "http://127.0.0.1:9"  # discard port: nothing listens, so any upstream call fails


@dataclass
class Call:
    label: str
    text: str
    cache: str
    episode: str
    fingerprint: str


def _ask(client: openai.AzureOpenAI, scenario: dict[str, Any], seed: int | None, label: str, stream: bool = False) -> Call:
    params: dict[str, Any] = {
        "model": DEPLOYMENT,
        "temperature": scenario["temperature"],
        "messages": [{"role": "system", "content": scenario["system"]}, {"role": "user", "content": scenario["prompt"]}],
    }
    if "max_tokens" in scenario:
        params["max_tokens"] = scenario["max_tokens"]
    if seed is not None:
        params["seed"] = seed
    if stream:
        raw = client.chat.completions.with_raw_response.create(stream=True, **params)
        chunks = list(raw.parse())
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        fingerprint = next((c.system_fingerprint for c in chunks if c.system_fingerprint), "") or ""
        label += f" (stream, {len(chunks)} chunks)"
    else:
        raw = client.chat.completions.with_raw_response.create(**params)
        completion = raw.parse()
        text = completion.choices[0].message.content or ""
        fingerprint = completion.system_fingerprint or ""
    return Call(label, text, raw.headers.get("x-seedtape-cache", "?"), raw.headers.get("x-seedtape-episode", "-"), fingerprint)


def _script(client: openai.AzureOpenAI) -> list[Call]:
    calls = [_ask(client, PANDA, None, f"panda, no seed #{i}") for i in (1, 2)]
    calls += [_ask(client, PANDA, 42, f"panda, seed=42 #{i}") for i in (1, 2)]
    calls += [_ask(client, UNIVERSE, None, f"universe, no seed #{i}") for i in (1, 2, 3)]
    calls += [_ask(client, UNIVERSE, 42, f"universe, seed=42 #{i}") for i in (1, 2, 3)]
    calls.append(_ask(client, PANDA, 7, "panda, seed=7", stream=True))
    return calls


def _word_diff(a: str, b: str) -> Text:
    """Inline word diff (difflib, as the seed notebook does): removed ``[-red-]``, added
    ``{+green+}``; the markers keep it readable in a file or a CI log, without colour."""
    diff = word_diff(a, b)
    line = Text(f"first difference at word {diff.first_divergence}, similarity {diff.similarity:.2f}: ")
    return line.append_text(rich_diff(diff.ops))


def _table(title: str, calls: list[Call]) -> Table:
    table = Table(title=title, title_justify="left", box=None, pad_edge=False, header_style="bold")
    table.add_column("request", no_wrap=True, min_width=30)
    table.add_column("cache", no_wrap=True, min_width=8)
    table.add_column("ep", justify="right", min_width=2)
    table.add_column("fingerprint", no_wrap=True, min_width=10)
    table.add_column("answer", no_wrap=True)
    for call in calls:
        text = " ".join(call.text.split())
        table.add_row(call.label, call.cache, call.episode, call.fingerprint, text[:70] + ("…" if len(text) > 70 else ""))
    return table


def run_phase(cassettes: Path, cache: Path, mode: str, upstream: str) -> list[Call]:
    settings = Settings(mode=mode, upstream=upstream, cassettes_dir=cassettes, cache_dir=cache, cassette="demo")
    with serve_in_thread(create_app(settings, upstream_transport=transport_for(upstream))) as base_url:
        client = openai.AzureOpenAI(azure_endpoint=base_url, api_key="demo-key-not-a-secret", api_version=API_VERSION, max_retries=0)
        return _script(client)


def run_demo(keep: Path | None = None, console: Console | None = None) -> tuple[list[Call], list[Call]]:
    console = console or Console()
    if not console.is_terminal or console.width < 120:
        console = Console(width=140, force_terminal=console.is_terminal)
    workdir = Path(tempfile.mkdtemp(prefix="seedtape-demo-"))
    cassettes = keep or workdir / "cassettes"
    try:
        console.rule("[bold]seedtape demo[/bold]: the seed experiments through a real proxy, real openai SDK, simulated Azure")
        console.print(f"cassettes: {cassettes}/demo   upstream: built-in simulator (honours seed like Azure documents)\n")
        recorded = run_phase(cassettes, workdir / "cache", "auto", "sim")
        console.print(
            _table("1. auto mode: first calls go upstream and are recorded; seeded repeats are served from the cassette", recorded)
        )
        panda = [c.text for c in recorded[:4]]
        console.print("\nWithout a seed the two panda stories differ" + (":" if panda[0] != panda[1] else " (they happened to match)."))
        if panda[0] != panda[1]:
            console.print(_word_diff(panda[0], panda[1]))
        console.print(f"With seed=42 they are {'identical' if panda[2] == panda[3] else 'DIFFERENT'}.\n")

        replayed = run_phase(cassettes, workdir / "cache-2", "replay", OFFLINE_UPSTREAM)
        console.print(_table(f"2. replay mode, upstream unreachable ({OFFLINE_UPSTREAM}): everything comes from the cassette", replayed))
        same = sum(a.text == b.text for a, b in zip(recorded, replayed, strict=False))
        console.print(
            f"\n[bold]{same}/{len(recorded)}[/bold] replayed answers are identical to the recorded ones, in the same order, "
            f"with no network: the unseeded stories replay as the same two different stories."
        )
        files = sorted((cassettes / "demo").glob("*.json"))
        where = f"see them with: seedtape ls --cassettes {cassettes}" if keep else "run with --keep DIR to keep them"
        console.print(f"{len(files)} cassette files written (one per key, pretty JSON for git diffs); {where}")
        return recorded, replayed
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
