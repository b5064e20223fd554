"""``seedtape ls`` and ``seedtape show``: cassettes as a person reads them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
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


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: text, input_text
        return " ".join(str(p.get("text")) for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def prompt_text(body: Any) -> str:
    """What the caller asked: the last user message (chat, Responses), else the prompt or input."""
    if not isinstance(body, dict):
        return ""
    messages = body.get("messages") if isinstance(body.get("messages"), list) else body.get("input")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return _message_text(message.get("content"))
    for field in ("input", "prompt"):
        value = body.get(field)
        if isinstance(value, str):
            return value
        if isinstance(value, list) and value and isinstance(value[0], str):
            return value[0]
    return ""


def age(recorded_at: Any, now: datetime | None = None) -> str:
    """How long ago an episode was recorded: ``45s``, ``12m``, ``5h``, ``3d``."""
    try:
        when = datetime.fromisoformat(str(recorded_at).replace("Z", "+00:00"))
    except ValueError:
        return "?"
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = max(0, int(((now or datetime.now(UTC)) - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit == "d" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


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
    table.add_column("cassette", max_width=24, no_wrap=True, overflow="ellipsis")
    table.add_column("key", no_wrap=True, min_width=16)
    table.add_column("api", no_wrap=True, min_width=8)
    table.add_column("deployment/model", max_width=20, no_wrap=True, overflow="ellipsis")
    table.add_column("route", no_wrap=True, max_width=26, overflow="ellipsis")
    table.add_column("seed", justify="right", no_wrap=True, min_width=4)
    table.add_column("temp", justify="right", no_wrap=True, min_width=4)
    table.add_column("eps", justify="right", no_wrap=True, min_width=3)
    table.add_column("age", justify="right", no_wrap=True, min_width=5)
    table.add_column("asked (last user message)", no_wrap=True, overflow="ellipsis", max_width=40)
    shown = broken = 0
    for name in names:
        if not full and shown >= limit:
            break
        for path, recording in store.recordings(name, limit=None if full else limit - shown):
            if isinstance(recording, CassetteError):
                broken += 1
                if shown < limit:
                    table.add_row(name, path.stem, "-", "-", "-", "-", "-", "-", "-", f"[red]broken: {recording}[/red]")
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
    """What tells recordings apart: where it went, what it asked, how many times, how long ago."""
    request = recording.request
    body = request.get("body") or {}
    last = recording.episodes[-1] if recording.episodes else {}
    seed, temperature = body.get("seed"), body.get("temperature")
    route = request.get("route", "")
    if is_stream(last):
        route += " (stream)"
    return (
        cassette,
        recording.key[:16],
        str(request.get("api") or ""),
        str(request.get("deployment") or body.get("model") or ""),
        route,
        "" if seed is None else str(seed),
        "" if temperature is None else str(temperature),
        str(len(recording.episodes)),
        age(last.get("recorded_at")) if last else "-",
        first_words(" ".join(prompt_text(body).split())),
    )


def _console() -> Console:
    """Wide enough for a row per recording when output goes to a file or a pipe."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=180)
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
