"""``seedtape report``: the drift log rendered for a terminal, a machine, CI or a browser.

All four formats are built from the same :func:`summarize` numbers and the same log
entries (see :mod:`seedtape.drift` for the entry schema), so they never disagree. Only
``rich`` and the standard library are used: the HTML page is one file with inline CSS
and an inline SVG chart, no script and no external address, so it opens offline and
can be attached to a CI run as is. Every text that came from a model or a log is
escaped (``html.escape`` for HTML, ElementTree for XML) before it is written.

Variety is not drift. A request that did not ask for determinism (its family's rule:
no ``seed`` and a temperature above 0, images, ...) is classed ``variety`` when its
answer changed; the headline counts only the requests that were meant to repeat, and
``unrecorded`` is a count of its own. Every format shows each request's seed,
temperature and the reason it was (or was not) meant to repeat.

``--fail-on`` rules: ``content``, ``variety``, ``fingerprint``, ``model``, ``unrecorded``
match the flag of the same name (``content`` is only ever set on a request meant to
repeat); ``any`` matches any flag but ``variety``. A request fails when one rule
matches; :func:`exit_code` is 1 when any request fails.
"""

from __future__ import annotations

import html
import json
import re
import socket
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET

from rich.console import Group
from rich.table import Table
from rich.text import Text

from seedtape.drift.compare import CLASSES, DRIFT_FLAGS, FLAG_ORDER, classify
from seedtape.drift.worddiff import ADDED, EQUAL, REMOVED, trim_ops
from seedtape.terminal import render_text

FORMATS = ("table", "json", "junit", "html")
FAIL_ON_RULES = ("content", "variety", "fingerprint", "model", "unrecorded", "any")
REPORT_SCHEMA = "seedtape.report/1"
DEFAULT_WORST = 10
HTML_MAX_DIFFS = 500
CHANGED_ROWS = 100  # table: rows of the "changed requests" table at most

CLASS_LABELS = {
    "identical": "identical",
    "fingerprint-only": "fingerprint only",
    "model-only": "model only",
    "content-same-fingerprint": "content drift, same fingerprint",
    "content-new-fingerprint": "content drift, new fingerprint",
    "variety": "variety (not meant to repeat)",
    "unrecorded": "unrecorded",
}
CLASS_COLOURS = {
    "identical": "#2e7d32",
    "fingerprint-only": "#f9a825",
    "model-only": "#6a1b9a",
    "content-same-fingerprint": "#ef6c00",
    "content-new-fingerprint": "#c62828",
    "variety": "#1e88e5",
    "unrecorded": "#757575",
}
# Column heads for the per-cassette table, narrow enough for an 80-column terminal.
CLASS_SHORT = {
    "identical": "identical",
    "fingerprint-only": "fp only",
    "model-only": "model only",
    "content-same-fingerprint": "content/same fp",
    "content-new-fingerprint": "content/new fp",
    "variety": "variety",
    "unrecorded": "unrecorded",
}
RICH_CLASS_STYLES = {
    "identical": "green",
    "fingerprint-only": "yellow",
    "model-only": "magenta",
    "content-same-fingerprint": "dark_orange",
    "content-new-fingerprint": "red",
    "variety": "blue",
    "unrecorded": "bright_black",
}


# --------------------------------------------------------------------------- rules


def parse_fail_on(values: Iterable[str]) -> set[str]:
    """Rules from CLI values (repeatable, comma lists allowed); unknown ones are an error."""
    rules = {part.strip().lower() for value in values for part in value.split(",") if part.strip()}
    unknown = rules - set(FAIL_ON_RULES)
    if unknown:
        raise ValueError(f"unknown --fail-on rule(s) {', '.join(sorted(unknown))}: choose from {', '.join(FAIL_ON_RULES)}")
    return rules


def flags_of(entry: Mapping[str, Any]) -> list[str]:
    flags = entry.get("flags")
    return [f for f in FLAG_ORDER if isinstance(flags, list) and f in flags]


def class_of(entry: Mapping[str, Any]) -> str:
    """The entry's class; derived from its flags when the entry names none we know."""
    value = entry.get("class")
    return value if value in CLASSES else classify(flags_of(entry))


def failed_rules(entry: Mapping[str, Any], fail_on: Iterable[str]) -> list[str]:
    """The ``--fail-on`` rules this entry matches, in rule order."""
    flags = set(flags_of(entry))
    rules = set(fail_on)
    return [r for r in FAIL_ON_RULES if r in rules and ((r == "any" and flags - {"variety"}) or r in flags)]


def exit_code(entries: Sequence[Mapping[str, Any]], fail_on: Iterable[str]) -> int:
    """1 when any entry matches a ``--fail-on`` rule, else 0 (the CI contract)."""
    rules = set(fail_on)
    return 1 if any(failed_rules(entry, rules) for entry in entries) else 0


# --------------------------------------------------------------------------- facts


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def model_of(entry: Mapping[str, Any]) -> str:
    """The model a reader knows the request by: the response's, else the request's."""
    model = _dict(entry.get("model"))
    request = _dict(entry.get("request"))
    for value in (model.get("live"), model.get("recorded"), request.get("model"), request.get("deployment")):
        if value:
            return str(value)
    return "?"


def fingerprints_of(entry: Mapping[str, Any]) -> tuple[str, str]:
    fingerprint = _dict(entry.get("fingerprint"))
    recorded = fingerprint.get("recorded") or ("(unrecorded)" if "unrecorded" in flags_of(entry) else "(unknown)")
    return str(recorded), str(fingerprint.get("live") or "(none)")


def similarity_of(entry: Mapping[str, Any]) -> float | None:
    value = entry.get("similarity")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def deterministic_of(entry: Mapping[str, Any]) -> bool:
    """Was the request meant to repeat? Logs written before the split said nothing: yes
    (they were all compared as drift, so reading them keeps what they meant)."""
    for value in (entry.get("deterministic"), _dict(entry.get("request")).get("deterministic")):
        if isinstance(value, bool):
            return value
    return True


def seed_text(entry: Mapping[str, Any]) -> str:
    request = _dict(entry.get("request"))
    if "seed" not in request:
        return "?"
    return "-" if request["seed"] is None else str(request["seed"])


def temperature_text(entry: Mapping[str, Any]) -> str:
    """The request's temperature; ``default`` when it set none (the API's default)."""
    request = _dict(entry.get("request"))
    if "temperature" not in request:
        return "?"
    return "default" if request["temperature"] is None else str(request["temperature"])


def reason_text(entry: Mapping[str, Any]) -> str:
    """Why the request was (or was not) meant to repeat, as its family's rule said."""
    reason = _dict(entry.get("request")).get("determinism")
    return str(reason) if reason else "?"


def request_line(entry: Mapping[str, Any]) -> str:
    """``seed 42, temperature 0.7, meant to repeat: yes (seed)``: what each format shows."""
    meant = "yes" if deterministic_of(entry) else "no"
    return f"seed {seed_text(entry)}, temperature {temperature_text(entry)}, meant to repeat: {meant} ({reason_text(entry)})"


def is_drift(entry: Mapping[str, Any]) -> bool:
    """A request meant to repeat that did not: what the headline counts."""
    return deterministic_of(entry) and any(flag in DRIFT_FLAGS for flag in flags_of(entry))


def case_name(entry: Mapping[str, Any]) -> str:
    """``<key prefix> <model> #<episode>``: short, stable and unique per verified request."""
    key = str(entry.get("key") or "?")[:16]
    episode = entry.get("episode")
    return f"{key} {model_of(entry)} #{episode if episode is not None else '?'}"


def cassette_of(entry: Mapping[str, Any]) -> str:
    return str(entry.get("cassette") or "default")


def worst_drifts(entries: Sequence[Mapping[str, Any]], limit: int = DEFAULT_WORST, flag: str = "content") -> list[Mapping[str, Any]]:
    """Content drifts (or, with ``flag="variety"``, variety), lowest similarity first."""
    drifted = [e for e in entries if flag in flags_of(e)]
    drifted.sort(key=lambda e: (similarity_of(e) if similarity_of(e) is not None else 2.0, cassette_of(e), case_name(e)))
    return drifted[:limit]


def changed(entries: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Every request that was not identical: drift first, then variety, then unrecorded."""
    order = {name: i for i, name in enumerate(("content-new-fingerprint", "content-same-fingerprint", "fingerprint-only", "model-only"))}
    rows = [e for e in entries if class_of(e) != "identical"]
    rows.sort(key=lambda e: (not is_drift(e), order.get(class_of(e), 9), class_of(e), cassette_of(e), case_name(e)))
    return rows


def summarize(entries: Sequence[Mapping[str, Any]], fail_on: Iterable[str] = (), worst: int = DEFAULT_WORST) -> dict[str, Any]:
    """Every number the formats show, as plain JSON.

    ``meant_to_repeat`` counts recorded requests that asked for determinism, ``drifted``
    those of them that did not repeat; ``not_meant_to_repeat`` and ``variety`` the
    others; ``unrecorded`` had nothing to compare with.
    """
    rules = set(fail_on)
    classes = Counter(class_of(e) for e in entries)
    per_cassette: dict[str, Counter[str]] = {}
    for entry in entries:
        per_cassette.setdefault(cassette_of(entry), Counter())[class_of(entry)] += 1
    pairs: dict[tuple[str, str, str], list[int]] = {}
    for entry in entries:
        counts = pairs.setdefault((model_of(entry), *fingerprints_of(entry)), [0, 0, 0])
        counts[0] += 1
        counts[1] += "content" in flags_of(entry)
        counts[2] += "variety" in flags_of(entry)
    recorded = [e for e in entries if class_of(e) != "unrecorded"]
    return {
        "total": len(entries),
        "meant_to_repeat": sum(1 for e in recorded if deterministic_of(e)),
        "drifted": sum(1 for e in entries if is_drift(e)),
        "not_meant_to_repeat": sum(1 for e in recorded if not deterministic_of(e)),
        "variety": classes.get("variety", 0),
        "unrecorded": classes.get("unrecorded", 0),
        "classes": {name: classes.get(name, 0) for name in CLASSES},
        "flags": {flag: sum(1 for e in entries if flag in flags_of(e)) for flag in FLAG_ORDER},
        "cassettes": [
            {"cassette": name, "total": sum(c.values()), "classes": {k: c.get(k, 0) for k in CLASSES}}
            for name, c in sorted(per_cassette.items())
        ],
        "fingerprints": [
            {"model": m, "recorded": r, "live": live, "total": t, "content_drift": d, "variety": v}
            for (m, r, live), (t, d, v) in sorted(pairs.items())
        ],
        "worst": [
            {
                "cassette": cassette_of(e),
                "name": case_name(e),
                "class": class_of(e),
                "similarity": similarity_of(e),
                "first_divergence": e.get("first_divergence"),
                "seed": _dict(e.get("request")).get("seed"),
                "temperature": _dict(e.get("request")).get("temperature"),
            }
            for e in worst_drifts(entries, worst)
        ],
        "fail_on": sorted(rules),
        "failing": sum(1 for e in entries if failed_rules(e, rules)),
        "exit_code": exit_code(entries, rules),
    }


def headline(summary: Mapping[str, Any]) -> str:
    """The sentence every format opens with: drift among the requests meant to repeat."""
    return f"{summary['drifted']} of {summary['meant_to_repeat']} requests meant to repeat drifted"


def aside(summary: Mapping[str, Any]) -> str:
    """What else was verified, counted apart from drift."""
    return (
        f"{summary['total']} verified: {summary['meant_to_repeat']} meant to repeat (seed, temperature 0, or a family that "
        f"always repeats), {summary['not_meant_to_repeat']} not ({summary['variety']} of them varied, as asked), "
        f"{summary['unrecorded']} unrecorded"
    )


def _ops(entry: Mapping[str, Any]) -> list[list[str]]:
    diff = _dict(entry.get("diff"))
    ops = diff.get("ops")
    return [[str(op[0]), str(op[1])] for op in ops if isinstance(op, list) and len(op) == 2] if isinstance(ops, list) else []


def inline_diff(ops: Sequence[Sequence[str]]) -> str:
    """``wdiff`` style text: ``[-removed-] {+added+}``, readable in any CI log."""
    parts = []
    for tag, text in ops:
        parts.append(f"[-{text}-]" if tag == REMOVED else f"{{+{text}+}}" if tag == ADDED else text)
    return " ".join(p for p in parts if p)


def _choice_lines(entry: Mapping[str, Any]) -> list[str]:
    """Per-choice details other than the word diff, one line each."""
    lines: list[str] = []
    for choice in entry.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        where = f"choice {choice.get('index')}" if entry.get("kind") != "embedding" else f"vector {choice.get('index')}"
        if choice.get("missing"):
            lines.append(f"{where}: missing in {choice['missing']}")
        if isinstance(choice.get("finish_reason"), dict):
            fr = choice["finish_reason"]
            lines.append(f"{where}: finish_reason {fr.get('recorded')} -> {fr.get('live')}")
        for field in ("tool_calls", "function_call"):
            for call in choice.get(field) or []:
                label = f"{where}: {field}[{call.get('index')}]"
                if call.get("missing"):
                    lines.append(f"{label} missing in {call['missing']}")
                for part in ("name", "arguments"):
                    if isinstance(call.get(part), dict):
                        lines.append(f"{label} {part} {call[part].get('recorded')} -> {call[part].get('live')}")
        if "refusal" in choice:
            lines.append(f"{where}: refusal changed")
        if "cosine" in choice:
            lines.append(f"{where}: cosine similarity {choice['cosine']}")
        if isinstance(choice.get("dimensions"), dict):
            dims = choice["dimensions"]
            lines.append(f"{where}: dimensions {dims.get('recorded')} -> {dims.get('live')}")
    return lines


def _usage_line(entry: Mapping[str, Any]) -> str | None:
    delta = _dict(_dict(entry.get("usage")).get("delta"))
    changed = {k: v for k, v in delta.items() if v}
    return "usage delta: " + ", ".join(f"{k} {v:+d}" for k, v in sorted(changed.items())) if changed else None


def describe(entry: Mapping[str, Any]) -> list[str]:
    """A plain-text account of one entry (JUnit failure text, table fallback)."""
    recorded_fp, live_fp = fingerprints_of(entry)
    status = _dict(entry.get("fingerprint")).get("status") or "?"
    model = _dict(entry.get("model"))
    lines = [
        f"class: {class_of(entry)}; flags: {', '.join(flags_of(entry)) or 'none'}",
        f"request: {request_line(entry)}",
        f"fingerprint: {recorded_fp} -> {live_fp} ({status})",
        f"model: {model.get('recorded') or '?'} -> {model.get('live') or '?'}",
    ]
    similarity = similarity_of(entry)
    if "content" in flags_of(entry) or "variety" in flags_of(entry):
        first = entry.get("first_divergence")
        shown = "?" if similarity is None else similarity
        lines.append(f"similarity: {shown}; first divergence at word {'-' if first is None else first}")
        diff = _dict(entry.get("diff"))
        if diff:
            lines.append("removed: " + " ".join(map(str, diff.get("removed") or [])))
            lines.append("added: " + " ".join(map(str, diff.get("added") or [])))
            lines.append("diff: " + inline_diff(_ops(entry)))
    lines.extend(_choice_lines(entry))
    usage = _usage_line(entry)
    if usage:
        lines.append(usage)
    return lines


# --------------------------------------------------------------------------- table


def table(entries: Sequence[Mapping[str, Any]], fail_on: Iterable[str] = (), worst: int = DEFAULT_WORST) -> Group:
    """The terminal report as rich renderables, for a CLI to ``console.print``."""
    summary = summarize(entries, fail_on, worst)
    parts: list[Any] = [Text(f"seedtape drift report: {headline(summary)}", style="bold"), Text(aside(summary), style="dim")]
    parts.append(_classes_table(summary))
    parts.append(_cassettes_table(summary))
    parts.append(_fingerprints_table(summary))
    parts.extend(_changed_renderables(entries))
    parts.extend(_worst_renderables(entries, worst))
    parts.append(_verdict(summary))
    return Group(*parts)


def _share(count: int, total: int) -> str:
    return f"{100 * count / total:.0f}%" if total else "-"


def _classes_table(summary: Mapping[str, Any]) -> Table:
    grid = Table(title="Drift classes", title_justify="left")
    grid.add_column("class")
    grid.add_column("requests", justify="right")
    grid.add_column("share", justify="right")
    for name in CLASSES:
        count = summary["classes"][name]
        grid.add_row(Text(CLASS_LABELS[name], style=RICH_CLASS_STYLES[name]), str(count), _share(count, summary["total"]))
    return grid


def _cassettes_table(summary: Mapping[str, Any]) -> Table:
    grid = Table(title="Per cassette", title_justify="left")
    grid.add_column("cassette")
    grid.add_column("requests", justify="right")
    for name in CLASSES:
        grid.add_column(Text(CLASS_SHORT[name], style=RICH_CLASS_STYLES[name]), justify="right")
    for row in summary["cassettes"]:
        grid.add_row(row["cassette"], str(row["total"]), *(str(row["classes"][name]) for name in CLASSES))
    return grid


def _fingerprints_table(summary: Mapping[str, Any]) -> Table:
    grid = Table(title="Model and fingerprint (recorded -> live)", title_justify="left")
    for column in ("model", "recorded", "live", "requests", "content drift", "variety"):
        grid.add_column(column, justify="right" if column in ("requests", "content drift", "variety") else "left")
    for row in summary["fingerprints"]:
        moved = row["recorded"] != row["live"] and not row["recorded"].startswith("(")
        live = Text(row["live"], style="yellow" if moved else "")
        grid.add_row(row["model"], row["recorded"], live, str(row["total"]), str(row["content_drift"]), str(row.get("variety", 0)))
    return grid


def _changed_renderables(entries: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Every request that was not identical, with the seed, temperature and reason."""
    rows = changed(entries)
    if not rows:
        return []
    grid = Table(title="Changed requests (drift first; variety was not meant to repeat)", title_justify="left")
    grid.add_column("cassette", max_width=16, no_wrap=True, overflow="ellipsis")
    grid.add_column("request", no_wrap=True)
    grid.add_column("seed", justify="right")
    grid.add_column("temp", justify="right")
    grid.add_column("meant to repeat", no_wrap=True, overflow="ellipsis")
    grid.add_column("class", no_wrap=True)
    grid.add_column("similarity", justify="right")
    for entry in rows[:CHANGED_ROWS]:
        similarity = similarity_of(entry)
        meant = ("yes: " if deterministic_of(entry) else "no: ") + reason_text(entry)
        episode = entry.get("episode")
        grid.add_row(
            cassette_of(entry),
            f"{str(entry.get('key') or '?')[:16]} #{episode if episode is not None else '?'}",
            seed_text(entry),
            temperature_text(entry),
            meant,
            Text(CLASS_SHORT[class_of(entry)], style=RICH_CLASS_STYLES[class_of(entry)]),
            "-" if similarity is None else f"{similarity:.3f}",
        )
    parts: list[Any] = [grid]
    if len(rows) > CHANGED_ROWS:
        parts.append(Text(f"... {len(rows) - CHANGED_ROWS} more changed requests (see --format json)", style="dim"))
    return parts


def rich_diff(ops: Sequence[Sequence[str]], indent: str = "") -> Text:
    """Removed words in red, added in green, both also wdiff-marked (``[-x-]``, ``{+y+}``)
    so the diff still reads in a log without colour. Long unchanged runs are trimmed."""
    text = Text(indent)
    for tag, words in trim_ops([list(op) for op in ops]):
        if len(text) > len(indent):
            text.append(" ")
        if tag == REMOVED:
            text.append(f"[-{words}-]", style="red")
        elif tag == ADDED:
            text.append(f"{{+{words}+}}", style="green")
        else:
            text.append(words)
    return text


def _worst_renderables(entries: Sequence[Mapping[str, Any]], worst: int) -> list[Any]:
    chosen = worst_drifts(entries, worst)
    if not chosen:
        return [Text("No content drift among the requests meant to repeat.", style="green")]
    parts: list[Any] = [Text(f"Worst drifts ({len(chosen)} of {sum(1 for e in entries if 'content' in flags_of(e))})", style="bold")]
    for entry in chosen:
        similarity = similarity_of(entry)
        header = Text(f"{cassette_of(entry)}  {case_name(entry)}  ", style="bold")
        header.append(CLASS_LABELS[class_of(entry)], style=RICH_CLASS_STYLES[class_of(entry)])
        header.append(f"  similarity {similarity:.3f}" if similarity is not None else "")
        if entry.get("first_divergence") is not None:
            header.append(f", first divergence at word {entry['first_divergence']}")
        parts.append(header)
        parts.append(Text("  " + request_line(entry), style="dim"))
        ops = _ops(entry)
        if ops:
            parts.append(rich_diff(ops))
        for line in _choice_lines(entry):
            parts.append(Text("  " + line, style="dim"))
    return parts


def _verdict(summary: Mapping[str, Any]) -> Text:
    if not summary["fail_on"]:
        return Text("No --fail-on rule: exit 0.", style="dim")
    rules = ",".join(summary["fail_on"])
    if summary["failing"]:
        return Text(f"--fail-on {rules}: {summary['failing']} request(s) fail -> exit 1", style="bold red")
    return Text(f"--fail-on {rules}: nothing fails -> exit 0", style="bold green")


def render_table(
    entries: Sequence[Mapping[str, Any]],
    fail_on: Iterable[str] = (),
    *,
    color: bool = False,
    width: int = 110,
    worst: int = DEFAULT_WORST,
) -> str:
    """The terminal report as a string; ANSI colours only when ``color`` is asked for."""
    return render_text(table(entries, fail_on, worst), width, color)


# --------------------------------------------------------------------------- json


def render_json(entries: Sequence[Mapping[str, Any]], fail_on: Iterable[str] = ()) -> str:
    """Summary plus the entries, each with the rules it fails (for machines)."""
    rules = set(fail_on)
    document = {
        "schema": REPORT_SCHEMA,
        "generated_at": _now(),
        "summary": summarize(entries, rules),
        "entries": [{**entry, "failed_rules": failed_rules(entry, rules)} for entry in entries],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- junit

# XML 1.0 cannot carry most control characters, even escaped; model output can.
_XML_INVALID = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    return _XML_INVALID.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def render_junit(entries: Sequence[Mapping[str, Any]], fail_on: Iterable[str] = ()) -> str:
    """JUnit XML in the layout pytest's ``junit_family=xunit2`` writes (junit-10.xsd).

    One ``<testcase>`` per verified request, with ``<properties>`` naming its seed,
    temperature and whether (and why) it was meant to repeat; a ``<failure>`` when a
    ``--fail-on`` rule matches, carrying the diff as text; drift or variety that fails
    no rule goes to ``<system-out>`` so it is still visible in CI.
    """
    rules = set(fail_on)
    failures = sum(1 for e in entries if failed_rules(e, rules))
    counts = {"tests": str(len(entries)), "failures": str(failures), "errors": "0"}
    root = ET.Element("testsuites", {"name": "seedtape", **counts, "time": "0.000"})
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": "seedtape.drift",
            **counts,
            "skipped": "0",
            "time": "0.000",
            "timestamp": _now(),
            "hostname": xml_safe(socket.gethostname()),
        },
    )
    for entry in entries:
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": xml_safe(cassette_of(entry)), "name": xml_safe(case_name(entry)), "time": "0.000"},
        )
        properties = ET.SubElement(case, "properties")
        for name, value in (
            ("seed", seed_text(entry)),
            ("temperature", temperature_text(entry)),
            ("meant_to_repeat", "yes" if deterministic_of(entry) else "no"),
            ("determinism", reason_text(entry)),
            ("class", class_of(entry)),
        ):
            ET.SubElement(properties, "property", {"name": name, "value": xml_safe(value)})
        matched = failed_rules(entry, rules)
        text = xml_safe("\n".join(describe(entry)))
        if matched:
            message = f"drift ({', '.join(flags_of(entry))}) fails --fail-on {','.join(matched)}"
            failure = ET.SubElement(case, "failure", {"type": "seedtape.drift", "message": xml_safe(message)})
            failure.text = text
        elif flags_of(entry):
            ET.SubElement(case, "system-out").text = text
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# --------------------------------------------------------------------------- html

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;background:#fff;
  margin:2rem auto;max-width:72rem;padding:0 1rem}
h1{margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.meta{color:#555}.headline{font-size:1.1rem;font-weight:600}
details{margin:1rem 0}summary{cursor:pointer;font-weight:600}
table{border-collapse:collapse;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.4em;vertical-align:middle}
.verdict{font-weight:600;padding:.4rem .6rem;border-radius:4px;display:inline-block}
.verdict.fail{background:#fdecea;color:#b71c1c}.verdict.pass{background:#e8f5e9;color:#1b5e20}
article.drift{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem;margin:1rem 0}
article.drift h3{margin:.2rem 0;font-size:1rem;font-family:ui-monospace,Menlo,Consolas,monospace}
.badge{display:inline-block;border-radius:3px;padding:0 .4em;margin-right:.3em;color:#fff;font-size:.85em}
.sbs{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
.side{background:#fafafa;border:1px solid #eee;border-radius:4px;padding:.5rem .7rem;
  white-space:pre-wrap;word-wrap:break-word}
.side h4{margin:0 0 .3rem 0;font-size:.85rem;color:#555;text-transform:uppercase;letter-spacing:.05em}
del{background:#ffd7d5;color:#82071e;text-decoration:line-through}
ins{background:#ccffd8;color:#055d20;text-decoration:none}
ul.details{margin:.4rem 0 0 0;padding-left:1.2rem;color:#333}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def render_html(entries: Sequence[Mapping[str, Any]], fail_on: Iterable[str] = ()) -> str:
    """One self-contained page: summary, class chart, per-cassette and fingerprint tables,
    then a side-by-side diff for every content drift (worst first)."""
    rules = set(fail_on)
    summary = summarize(entries, rules)
    body = [
        "<h1>seedtape drift report</h1>",
        f'<p class="headline">{_e(headline(summary))}</p>',
        f'<p class="meta">{_e(aside(summary))}; generated {_e(_now())}</p>',
        _html_verdict(summary),
        '<section id="summary"><h2>Summary</h2>',
        _html_classes(summary),
        _svg_chart(summary),
        "</section>",
        _html_cassettes(summary),
        _html_fingerprints(summary),
        _html_requests(entries),
        _html_drifts(entries, rules),
        _html_variety(entries, rules),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>seedtape drift report</title><style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _html_verdict(summary: Mapping[str, Any]) -> str:
    if not summary["fail_on"]:
        return ""
    rules = _e(",".join(summary["fail_on"]))
    if summary["failing"]:
        return f'<p class="verdict fail">--fail-on {rules}: {summary["failing"]} request(s) fail</p>'
    return f'<p class="verdict pass">--fail-on {rules}: nothing fails</p>'


def _html_table(head: Sequence[str], rows: Iterable[Sequence[str]], numeric_from: int) -> str:
    """A table from already-escaped cells; columns from ``numeric_from`` on are numbers."""
    header = "".join(f"<th>{_e(title)}</th>" for title in head)
    body = "".join(
        "<tr>" + "".join(f'<td class="n">{c}</td>' if i >= numeric_from else f"<td>{c}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def _html_classes(summary: Mapping[str, Any]) -> str:
    rows = [
        (
            f'<span class="swatch" style="background:{CLASS_COLOURS[name]}"></span>{_e(CLASS_LABELS[name])}',
            str(summary["classes"][name]),
            _share(summary["classes"][name], summary["total"]),
        )
        for name in CLASSES
    ]
    return _html_table(("class", "requests", "share"), rows, numeric_from=1)


def _svg_chart(summary: Mapping[str, Any]) -> str:
    """A horizontal bar per class; inline SVG needs no namespace URL inside HTML."""
    label_w, bar_w, row_h = 230, 420, 26
    top = max(summary["classes"].values(), default=0) or 1
    height = row_h * len(CLASSES) + 10
    bars = []
    for row, name in enumerate(CLASSES):
        count = summary["classes"][name]
        y = 5 + row * row_h
        width = round(bar_w * count / top) if count else 0
        bars.append(
            f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end" font-size="13">{_e(CLASS_LABELS[name])}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{width}" height="{row_h - 8}" fill="{CLASS_COLOURS[name]}"></rect>'
            f'<text x="{label_w + width + 6}" y="{y + 17}" font-size="13">{count}</text>'
        )
    return (
        f'<svg class="chart" role="img" width="{label_w + bar_w + 60}" height="{height}" '
        f'viewBox="0 0 {label_w + bar_w + 60} {height}" aria-label="requests per drift class">'
        f"<title>requests per drift class</title>{''.join(bars)}</svg>"
    )


def _html_cassettes(summary: Mapping[str, Any]) -> str:
    head = ("cassette", "requests", *(CLASS_LABELS[name] for name in CLASSES))
    rows = [(_e(row["cassette"]), str(row["total"]), *(str(row["classes"][name]) for name in CLASSES)) for row in summary["cassettes"]]
    return f'<section id="cassettes"><h2>Per cassette</h2>{_html_table(head, rows, numeric_from=1)}</section>'


def _html_fingerprints(summary: Mapping[str, Any]) -> str:
    head = ("model", "recorded fingerprint", "live fingerprint", "requests", "content drift", "variety")
    rows = [
        (
            _e(r["model"]),
            f"<code>{_e(r['recorded'])}</code>",
            f"<code>{_e(r['live'])}</code>",
            str(r["total"]),
            str(r["content_drift"]),
            str(r.get("variety", 0)),
        )
        for r in summary["fingerprints"]
    ]
    return f'<section id="fingerprints"><h2>Model and fingerprint</h2>{_html_table(head, rows, numeric_from=3)}</section>'


def _html_side(ops: Sequence[Sequence[str]], show: str, mark: str, tag_name: str) -> str:
    """One side of the diff: unchanged words plain, this side's own changes marked."""
    parts = []
    for tag, text in ops:
        if tag == EQUAL:
            parts.append(_e(text))
        elif tag == show:
            parts.append(f"<{tag_name}>{_e(text)}</{tag_name}>")
    return " ".join(p for p in parts if p) or f"<em>{_e(mark)}</em>"


def _html_requests(entries: Sequence[Mapping[str, Any]]) -> str:
    """Every request that changed, with what it asked for: the seed, the temperature and
    the family's reason it was (or was not) meant to repeat."""
    rows = changed(entries)
    if not rows:
        return ""
    head = ("cassette", "request", "seed", "temperature", "meant to repeat", "class", "similarity")
    cells = [
        (
            _e(cassette_of(e)),
            f"<code>{_e(case_name(e))}</code>",
            _e(seed_text(e)),
            _e(temperature_text(e)),
            _e(("yes: " if deterministic_of(e) else "no: ") + reason_text(e)),
            f'<span class="swatch" style="background:{CLASS_COLOURS[class_of(e)]}"></span>{_e(CLASS_LABELS[class_of(e)])}',
            "-" if similarity_of(e) is None else f"{similarity_of(e):.3f}",
        )
        for e in rows[:HTML_MAX_DIFFS]
    ]
    more = f"<p>{len(rows) - HTML_MAX_DIFFS} more not shown; see the JSON report.</p>" if len(rows) > HTML_MAX_DIFFS else ""
    return f'<section id="requests"><h2>Changed requests</h2>{_html_table(head, cells, numeric_from=6)}{more}</section>'


def _html_variety(entries: Sequence[Mapping[str, Any]], rules: set[str]) -> str:
    """Variety's diffs, folded away: they were asked for, so they are not drift."""
    varied = worst_drifts(entries, len(entries), flag="variety")
    if not varied:
        return ""
    shown = varied[:HTML_MAX_DIFFS]
    articles = "\n".join(_html_entry(entry, rules) for entry in shown)
    return (
        f'<section id="variety"><details><summary>Variety: {len(varied)} request(s) not meant to repeat answered '
        f"differently (no seed and a temperature above 0, or a family that never repeats): not drift</summary>\n"
        f"{articles}</details></section>"
    )


def _html_drifts(entries: Sequence[Mapping[str, Any]], rules: set[str]) -> str:
    drifted = [e for e in entries if flags_of(e) and "variety" not in flags_of(e)]
    content = worst_drifts(drifted, len(drifted))
    others = [e for e in drifted if "content" not in flags_of(e)]
    ordered = content + others
    shown = ordered[:HTML_MAX_DIFFS]
    parts = ['<section id="drifts"><h2>Drifted requests</h2>']
    if not ordered:
        parts.append("<p>No drift: every verified request meant to repeat matched its recording.</p>")
    parts.extend(_html_entry(entry, rules) for entry in shown)
    if len(ordered) > len(shown):
        parts.append(f"<p>{len(ordered) - len(shown)} more drifted requests not shown; see the JSON report.</p>")
    parts.append("</section>")
    return "\n".join(parts)


def _html_entry(entry: Mapping[str, Any], rules: set[str]) -> str:
    name = class_of(entry)
    badges = "".join(f'<span class="badge" style="background:{CLASS_COLOURS[classify([f])]}">{_e(f)}</span>' for f in flags_of(entry))
    failing = failed_rules(entry, rules)
    if failing:
        badges += f'<span class="badge" style="background:#b71c1c">fails --fail-on {_e(",".join(failing))}</span>'
    recorded_fp, live_fp = fingerprints_of(entry)
    similarity = similarity_of(entry)
    model = _dict(entry.get("model"))
    facts = [
        f"class: <strong>{_e(CLASS_LABELS[name])}</strong>",
        _e(request_line(entry)),
        f"fingerprint: <code>{_e(recorded_fp)}</code> &rarr; <code>{_e(live_fp)}</code>",
        f"model: {_e(model.get('recorded') or '?')} &rarr; {_e(model.get('live') or '?')}",
    ]
    if ("content" in flags_of(entry) or "variety" in flags_of(entry)) and similarity is not None:
        first = entry.get("first_divergence")
        facts.append(f"similarity {similarity:.3f}" + (f", first divergence at word {_e(first)}" if first is not None else ""))
    ops = _ops(entry)
    sides = ""
    if ops:
        sides = (
            '<div class="sbs">'
            f'<div class="side recorded"><h4>recorded</h4>{_html_side(ops, REMOVED, "(empty)", "del")}</div>'
            f'<div class="side live"><h4>live</h4>{_html_side(ops, ADDED, "(empty)", "ins")}</div>'
            "</div>"
        )
    extra = _choice_lines(entry) + ([_usage_line(entry)] if _usage_line(entry) else [])
    details = '<ul class="details">' + "".join(f"<li>{_e(line)}</li>" for line in extra) + "</ul>" if extra else ""
    return (
        f'<article class="drift {_e(name)}"><h3>{_e(cassette_of(entry))} &middot; {_e(case_name(entry))}</h3>'
        f"<p>{badges}</p><p>{' &middot; '.join(facts)}</p>{sides}{details}</article>"
    )


# --------------------------------------------------------------------------- entry point


def render(
    entries: Sequence[Mapping[str, Any]],
    fmt: str = "table",
    fail_on: Iterable[str] = (),
    *,
    color: bool = False,
    width: int = 110,
    worst: int = DEFAULT_WORST,
) -> str:
    """The drift log as ``table``, ``json``, ``junit`` or ``html`` text."""
    rules = parse_fail_on(fail_on)
    if fmt == "table":
        return render_table(entries, rules, color=color, width=width, worst=worst)
    if fmt == "json":
        return render_json(entries, rules)
    if fmt == "junit":
        return render_junit(entries, rules)
    if fmt == "html":
        return render_html(entries, rules)
    raise ValueError(f"unknown report format {fmt!r}: choose from {', '.join(FORMATS)}")
