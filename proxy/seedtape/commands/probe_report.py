"""``seedtape probe report FILE``: reproducibility over time, per model and fingerprint.

The history a ``seedtape probe --history FILE`` run appends to (one JSON line per run,
commands/probe.py) drawn the way a person asks about it: "it drifted on Tuesday when
the fingerprint changed". Per model, one line per arm of TARr@N (and TARa@N when the
runs parsed answers) over the runs in time order, a band under the chart coloured by
the fingerprint each run saw, and a dashed marker where the fingerprint changed.

Formats: ``table`` (terminal), ``json`` (the same numbers) and ``html``: one offline
file with inline CSS and inline SVG, no script and no external address, like
``seedtape report``'s page. Every text from a history line is escaped.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from seedtape.terminal import render_text

FORMATS = ("table", "json", "html")
REPORT_SCHEMA = "seedtape.probe-report/1"
# Arm lines and fingerprint bands: distinct at a glance, and on a white page.
ARM_COLOURS = ("#1e88e5", "#d81b60", "#43a047", "#fb8c00", "#8e24aa", "#00897b", "#6d4c41", "#3949ab", "#c0ca33", "#546e7a")
FINGERPRINT_COLOURS = ("#90caf9", "#ffcc80", "#a5d6a7", "#ce93d8", "#ef9a9a", "#80cbc4", "#fff59d", "#b0bec5")
CHANGE_COLOUR = "#b71c1c"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def model_key(run: Mapping[str, Any]) -> str:
    """The model a run is filed under: the one requested, and what the service said it is."""
    seen = sorted(_dict(run.get("models_seen")))
    asked = str(run.get("model") or "?")
    return asked if not seen or seen == [asked] else f"{asked} ({', '.join(seen)})"


def fingerprint_key(run: Mapping[str, Any]) -> str:
    """The fingerprints one run saw, most frequent first (``(none)`` when the API names none)."""
    counts = _dict(run.get("fingerprints"))
    if len(counts) > 1:  # the Responses arm names none: that is no second backend
        counts = {fp: n for fp, n in counts.items() if fp != "(none)"}
    ranked = sorted(counts, key=lambda fp: (-int(counts[fp]), fp))
    return " + ".join(ranked) if ranked else "(none)"


def arm_names(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    names: list[str] = []
    for run in runs:
        for arm in run.get("arms") or []:
            name = str(_dict(arm).get("name"))
            if name not in names:
                names.append(name)
    return names


def summarize(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Runs grouped per model in time order, with the points where the fingerprint changed."""
    models: dict[str, list[Mapping[str, Any]]] = {}
    for run in sorted(runs, key=lambda r: str(r.get("time") or "")):
        models.setdefault(model_key(run), []).append(run)
    out = []
    for model, model_runs in models.items():
        changes = []
        for before, after in pairwise(model_runs):
            if fingerprint_key(before) != fingerprint_key(after):
                changes.append({"time": after.get("time"), "from": fingerprint_key(before), "to": fingerprint_key(after)})
        out.append(
            {
                "model": model,
                "arms": arm_names(model_runs),
                "runs": [
                    {
                        "time": run.get("time"),
                        "upstream": run.get("upstream"),
                        "fingerprint": fingerprint_key(run),
                        "arms": {a["name"]: a for a in (_dict(x) for x in run.get("arms") or []) if "name" in a},
                    }
                    for run in model_runs
                ],
                "fingerprint_changes": changes,
            }
        )
    return {"runs": len(runs), "models": out}


def _rate(value: Any) -> str:
    return f"{100 * value:.0f}%" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def _when(value: Any) -> str:
    """``2026-11-24 09:30`` from an ISO time (the history's), as it came when it does not parse."""
    try:
        return datetime.fromisoformat(str(value)).astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(value)


# --------------------------------------------------------------------------- table


def render_table(runs: Sequence[Mapping[str, Any]], width: int = 130, color: bool = False) -> str:
    summary = summarize(runs)
    parts: list[Any] = [Text(f"seedtape probe history: {summary['runs']} run(s)", style="bold")]
    for model in summary["models"]:
        grid = Table(title=f"{model['model']}: TARr@N per arm (TARa@N in brackets when answers were parsed)", title_justify="left")
        grid.add_column("time", no_wrap=True)
        grid.add_column("fingerprint", no_wrap=True)
        for name in model["arms"]:
            grid.add_column(name, justify="right", no_wrap=True)
        changed_at = {c["time"] for c in model["fingerprint_changes"]}
        for run in model["runs"]:
            cells = []
            for name in model["arms"]:
                arm = _dict(run["arms"].get(name))
                cell = _rate(arm.get("tarr"))
                if arm.get("tara") is not None:
                    cell += f" ({_rate(arm.get('tara'))})"
                cells.append(cell)
            fingerprint = Text(run["fingerprint"], style="bold yellow" if run["time"] in changed_at else "")
            if run["time"] in changed_at:
                fingerprint.append("  <- new", style="bold yellow")
            grid.add_row(_when(run["time"]), fingerprint, *cells)
        parts.append(grid)
    return render_text(Group(*parts), width, color)


def render_json(runs: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps({"schema": REPORT_SCHEMA, **summarize(runs)}, indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- html

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;background:#fff;
  margin:2rem auto;max-width:72rem;padding:0 1rem}
h1{margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.meta{color:#555}
table{border-collapse:collapse;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.changed td{background:#fff3e0}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.4em;vertical-align:middle}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _colours(names: Sequence[str], palette: Sequence[str]) -> dict[str, str]:
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def svg_chart(model: Mapping[str, Any], metric: str = "tarr", label: str = "TARr@N") -> str:
    """Lines per arm over the runs, a fingerprint band, dashed markers at a change."""
    runs, arms = model["runs"], model["arms"]
    left, top, plot_w, plot_h, band_h = 64, 24, 760, 260, 18
    width, height = left + plot_w + 210, top + plot_h + band_h + 70
    step = plot_w / max(1, len(runs) - 1) if len(runs) > 1 else 0.0

    def x(i: int) -> float:
        return left + (i * step if len(runs) > 1 else plot_w / 2)

    def y(value: float) -> float:
        return top + plot_h * (1 - value)

    parts = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"></rect>']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e0e0e0"></line>')
        parts.append(f'<text x="{left - 8}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="12">{100 * tick:.0f}%</text>')
    parts.append(
        f'<text x="14" y="{top + plot_h / 2}" font-size="12" transform="rotate(-90 14 {top + plot_h / 2})" '
        f'text-anchor="middle">{_e(label)}</text>'
    )
    fingerprints = list(dict.fromkeys(run["fingerprint"] for run in runs))
    fp_colour = _colours(fingerprints, FINGERPRINT_COLOURS)
    band_y = top + plot_h + 8
    half = step / 2 if len(runs) > 1 else plot_w / 2
    for i, run in enumerate(runs):
        x0 = max(left, x(i) - half)
        x1 = min(left + plot_w, x(i) + half)
        parts.append(
            f'<rect class="fingerprint" x="{x0:.1f}" y="{band_y}" width="{x1 - x0:.1f}" height="{band_h}" '
            f'fill="{fp_colour[run["fingerprint"]]}"><title>{_e(run["fingerprint"])}</title></rect>'
        )
        parts.append(f'<text x="{x(i):.1f}" y="{band_y + band_h + 16}" text-anchor="middle" font-size="11">{_e(_when(run["time"]))}</text>')
    for i, (before, after) in enumerate(pairwise(runs)):
        if before["fingerprint"] != after["fingerprint"]:
            mid = (x(i) + x(i + 1)) / 2
            parts.append(
                f'<line class="change" x1="{mid:.1f}" x2="{mid:.1f}" y1="{top}" y2="{band_y + band_h}" stroke="{CHANGE_COLOUR}" '
                f'stroke-width="3" stroke-dasharray="6 4"></line>'
                f'<text x="{mid + 4:.1f}" y="{top + 14}" font-size="12" fill="{CHANGE_COLOUR}">fingerprint: {_e(after["fingerprint"])}</text>'
            )
    arm_colour = _colours(arms, ARM_COLOURS)
    for number, name in enumerate(arms):
        # Arms at the same value would hide each other: each line sits a little apart.
        nudge = (number - (len(arms) - 1) / 2) * 2.5
        points = [
            (x(i), y(float(value)) + nudge)
            for i, run in enumerate(runs)
            for value in [_dict(run["arms"].get(name)).get(metric)]
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        ]
        if not points:
            continue
        colour = arm_colour[name]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(f'<polyline class="arm" points="{path}" fill="none" stroke="{colour}" stroke-width="3"></polyline>')
        parts.extend(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="5" fill="{colour}"></circle>' for px, py in points)
    legend_x = left + plot_w + 20
    for row, name in enumerate(arms):
        ly = top + 10 + row * 20
        parts.append(
            f'<rect x="{legend_x}" y="{ly - 9}" width="14" height="10" fill="{arm_colour[name]}"></rect>'
            f'<text x="{legend_x + 20}" y="{ly}" font-size="12">{_e(name)}</text>'
        )
    for row, fingerprint in enumerate(fingerprints):
        ly = top + 30 + (len(arms) + row) * 20
        parts.append(
            f'<rect x="{legend_x}" y="{ly - 9}" width="14" height="10" fill="{fp_colour[fingerprint]}"></rect>'
            f'<text x="{legend_x + 20}" y="{ly}" font-size="12">{_e(fingerprint)}</text>'
        )
    title = f"{label} per arm over time, {model['model']}"
    return (
        f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'aria-label="{_e(title)}"><title>{_e(title)}</title>{"".join(parts)}</svg>'
    )


def _runs_table(model: Mapping[str, Any]) -> str:
    changed_at = {c["time"] for c in model["fingerprint_changes"]}
    head = "".join(f"<th>{_e(h)}</th>" for h in ("time", "upstream", "fingerprint", *model["arms"]))
    rows = []
    for run in model["runs"]:
        cells = []
        for name in model["arms"]:
            arm = _dict(run["arms"].get(name))
            text = _rate(arm.get("tarr")) + (f" ({_rate(arm.get('tara'))})" if arm.get("tara") is not None else "")
            cells.append(f'<td class="n">{_e(text)}</td>')
        css = ' class="changed"' if run["time"] in changed_at else ""
        rows.append(
            f"<tr{css}><td>{_e(_when(run['time']))}</td><td><code>{_e(run.get('upstream') or '-')}</code></td>"
            f"<td><code>{_e(run['fingerprint'])}</code></td>{''.join(cells)}</tr>"
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_html(runs: Sequence[Mapping[str, Any]]) -> str:
    summary = summarize(runs)
    body = [
        "<h1>seedtape probe: reproducibility over time</h1>",
        f'<p class="meta">{summary["runs"]} run(s); TARr@N: share of prompts whose N raw outputs were all identical '
        "(TARa@N: parsed answers); the band under each chart is the system_fingerprint each run saw, "
        "a dashed line marks a change.</p>",
    ]
    for model in summary["models"]:
        body.append(f"<section><h2>{_e(model['model'])}</h2>")
        body.append(svg_chart(model))
        if any(_dict(run["arms"].get(name)).get("tara") is not None for run in model["runs"] for name in model["arms"]):
            body.append(svg_chart(model, "tara", "TARa@N"))
        changes = model["fingerprint_changes"]
        if changes:
            body.append(
                "<ul>"
                + "".join(
                    f"<li>{_e(_when(c['time']))}: fingerprint <code>{_e(c['from'])}</code> &rarr; <code>{_e(c['to'])}</code></li>"
                    for c in changes
                )
                + "</ul>"
            )
        body.append(_runs_table(model))
        body.append("</section>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>seedtape probe history</title><style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def render(runs: Sequence[Mapping[str, Any]], fmt: str = "table", *, color: bool = False, width: int = 130) -> str:
    if fmt == "table":
        return render_table(runs, width, color)
    if fmt == "json":
        return render_json(runs)
    if fmt == "html":
        return render_html(runs)
    raise ValueError(f"unknown format {fmt!r}: choose from {', '.join(FORMATS)}")
