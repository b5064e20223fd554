"""``seedtape ls`` and ``seedtape show``: cassettes as a person reads them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from seedtape.cassette import CassetteError, Recording, read_recording
from seedtape.episode import is_stream, response_json
from seedtape.store import CassetteStore

FIRST_WORDS = 8


def answer_text(response: Any) -> str:
    """The answer's text for display: content, tool calls, or an error message."""
    if not isinstance(response, dict):
        return ""
    if isinstance(response.get("error"), dict):
        return f"error: {response['error'].get('message', '')}"
    if response.get("object") == "list" and response.get("data"):
        return f"[{len(response['data'])} embedding(s)]"
    for choice in response.get("choices") or []:
        if "text" in choice:
            return str(choice.get("text") or "")
        message = choice.get("message") or {}
        if message.get("content"):
            return str(message["content"])
        calls = message.get("tool_calls") or []
        if calls:
            return "tool calls: " + ", ".join(f"{c['function']['name']}({c['function']['arguments']})" for c in calls)
    return ""


def first_words(text: str, count: int = FIRST_WORDS) -> str:
    words = text.split()
    return " ".join(words[:count]) + (" ..." if len(words) > count else "")


# Up to this many recordings ``ls`` reads every file (exact broken-file count); beyond
# it reads only the rows it prints and counts the rest from the folder listing.
FULL_SCAN_MAX = 10_000


def print_listing(root: Path, only: str | None, limit: int, console: Console | None = None) -> None:
    console = console or _console()
    store = CassetteStore(root, None)
    names = [only] if only else store.cassettes()
    counts = {name: store.count(name) for name in names}
    total = sum(counts.values())
    if total == 0:
        console.print(f"no recordings under {root}")
        return
    full = total <= FULL_SCAN_MAX
    table = Table(box=None, pad_edge=False)
    table.add_column("cassette", max_width=30, no_wrap=True, overflow="ellipsis")
    table.add_column("key", no_wrap=True, min_width=16)
    table.add_column("eps", justify="right", min_width=3)
    table.add_column("route", no_wrap=True, max_width=20)
    table.add_column("model", max_width=20, no_wrap=True, overflow="ellipsis")
    table.add_column("seed", justify="right")
    table.add_column("answer (first words)", no_wrap=True, overflow="ellipsis", max_width=50)
    shown = broken = 0
    for name in names:
        if not full and shown >= limit:
            break
        for path, recording in store.recordings(name, limit=None if full else limit - shown):
            if isinstance(recording, CassetteError):
                broken += 1
                if shown < limit:
                    table.add_row(name, path.stem, "-", "-", "-", "-", f"[red]broken: {recording}[/red]")
                    shown += 1
                continue
            if shown < limit:
                table.add_row(*_row(name, recording))
                shown += 1
    if shown:
        console.print(table)
    hidden = total - shown
    if hidden and len(names) > 1:
        _print_counts(console, counts, limit)
    tail = f" ({hidden} not shown: use --cassette or --limit)" if hidden else ""
    if broken:
        tail += f", {broken} broken" + ("" if full else " among those shown (files not shown are counted, not read)")
    console.print(f"{total} recording(s) in {len(names)} cassette(s){tail}")


def _print_counts(console: Console, counts: dict[str, int], limit: int) -> None:
    """Recordings per cassette, largest first: the summary when rows are left out."""
    table = Table(box=None, pad_edge=False)
    table.add_column("cassette", no_wrap=True, overflow="ellipsis", max_width=60)
    table.add_column("recordings", justify="right")
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    for name, count in ranked[:limit]:
        table.add_row(name, str(count))
    console.print()
    console.print(table)
    if len(ranked) > limit:
        console.print(f"... and {len(ranked) - limit} more cassette(s)")


def _row(cassette: str, recording: Recording) -> tuple[str, ...]:
    body = recording.request.get("body") or {}
    last = recording.episodes[-1] if recording.episodes else {}
    seed = body.get("seed")
    text = answer_text(response_json(last)) if last else ""
    route = recording.request.get("route", "")
    if is_stream(last):
        route += " (stream)"
    return (
        cassette,
        recording.key[:16],
        str(len(recording.episodes)),
        route,
        str(body.get("model", "")),
        "" if seed is None else str(seed),
        first_words(text),
    )


def _console() -> Console:
    """Wide enough for a row per recording when output goes to a file or a pipe."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    return console


def print_recording(root: Path, key: str, console: Console | None = None) -> int:
    console = console or _console()
    matches = CassetteStore(root, None).find(key)
    matches = [(c, p) for c, p in matches if p.stem.startswith(key[:16])]
    if not matches:
        console.print(f"[red]no recording with key {key!r} under {root}[/red]")
        return 1
    for cassette, path in matches:
        try:
            recording = read_recording(path)
        except CassetteError as exc:
            console.print(f"[red]{exc}[/red]")
            continue
        if not recording.key.startswith(key):
            continue
        _print_one(console, cassette, path, recording)
    return 0


def _print_one(console: Console, cassette: str, path: Path, recording: Recording) -> None:
    request = recording.request
    body = dict(request.get("body") or {})
    console.rule(f"[bold]{recording.key}[/bold]")
    console.print(f"file      {path}")
    console.print(f"cassette  {cassette}")
    target = request.get("api", "") + " " + request.get("route", "")
    if request.get("deployment"):
        target += f" deployment={request['deployment']}"
    if request.get("api_version"):
        target += f" api-version={request['api_version']}"
    console.print(f"route     {target}")
    messages = body.pop("messages", None)
    console.print("request   " + json.dumps(body, ensure_ascii=False, sort_keys=True))
    for message in messages or []:
        content = message.get("content") if isinstance(message, dict) else message
        role = message.get("role", "?") if isinstance(message, dict) else "?"
        console.print(
            f"  [cyan]{role:>9}[/cyan]: {content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)}", highlight=False
        )
    for number, episode in enumerate(recording.episodes, 1):
        response = response_json(episode)
        kind = f"stream, {len(episode['events'])} events" if is_stream(episode) else "json"
        console.print(
            f"\n[bold]episode {number}[/bold]  status {episode.get('status')}  {kind}  "
            f"fingerprint {episode.get('system_fingerprint') or '-'}  model {(response or {}).get('model', '-') if isinstance(response, dict) else '-'}  "
            f"recorded {episode.get('recorded_at', '?')}  latency {episode.get('latency_ms', '?')} ms"
        )
        console.print(answer_text(response) or json.dumps(response, ensure_ascii=False)[:400], highlight=False)
