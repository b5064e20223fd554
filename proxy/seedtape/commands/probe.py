"""``seedtape probe``: the seed documents' reproducibility experiment, as a library call.

The two documents seedtape grew from send one chat request several times without a
``seed`` and several times with ``seed=42`` and compare the answers with ``difflib``:
without a seed the stories differ, with one they are the same "almost always", and
``system_fingerprint`` tells when the backend changed. :func:`run_probe` runs exactly
that against any client (a real service, a seedtape proxy, the simulator) and
:func:`render_probe` prints what the documents print, with numbers: per arm the
distinct outputs, the exact-match rate over pairs, the mean pairwise word similarity,
the first word where outputs part, the fingerprints seen and the word diff of the first
differing pair.

Every probe request carries ``x-seedtape-mode: passthrough`` so that, sent through a
seedtape proxy, it reaches the live service and is never recorded or served from a
cassette (a cached answer would make the seeded arm look perfect).
"""

from __future__ import annotations

import json as jsonlib
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Any

import openai
from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from seedtape.config import OPENAI_UPSTREAM, SIM_UPSTREAM
from seedtape.drift.report import rich_diff
from seedtape.drift.worddiff import word_diff
from seedtape.terminal import render_text

DEFAULT_SYSTEM = "You always produce 3-sentence answers."
DEFAULT_PROMPT = "Create a story about red panda."
PASSTHROUGH_HEADERS = {"x-seedtape-mode": "passthrough"}
NO_FINGERPRINT = "(none)"

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``progress(arm, done, total)`` before the first and after every request."""


@dataclass(slots=True)
class Sample:
    """One answer (or the reason there is none)."""

    text: str | None
    fingerprint: str | None = None
    model: str | None = None
    finish_reason: str | None = None
    latency_ms: int = 0
    error: str | None = None


@dataclass(slots=True)
class ArmResult:
    """One arm of the experiment (``unseeded`` or ``seeded``) and its statistics."""

    name: str
    seed: int | None
    samples: list[Sample] = field(default_factory=list)
    distinct: int = 0
    exact_match_rate: float | None = None
    mean_similarity: float | None = None
    first_divergence: int | None = None
    fingerprints: dict[str, int] = field(default_factory=dict)
    diff: dict[str, Any] | None = None

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.samples if s.error is None and s.text is not None]

    @property
    def errors(self) -> int:
        return sum(1 for s in self.samples if s.error is not None)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["errors"] = self.errors
        return data


@dataclass(slots=True)
class ProbeResult:
    model: str
    params: dict[str, Any]
    arms: list[ArmResult]

    def arm(self, name: str) -> ArmResult:
        return next(a for a in self.arms if a.name == name)

    @property
    def fingerprints(self) -> dict[str, int]:
        """Fingerprints over the whole run; more than one means the backend moved."""
        total: Counter[str] = Counter()
        for arm in self.arms:
            total.update(arm.fingerprints)
        return dict(total)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "params": dict(self.params),
            "arms": [a.to_json() for a in self.arms],
            "fingerprints": self.fingerprints,
        }


# --------------------------------------------------------------------------- statistics


def arm_statistics(arm: ArmResult) -> ArmResult:
    """Fill in the arm's numbers from its samples (pure: no network).

    Pairs are all ``i < j`` of the successful outputs; with fewer than two outputs the
    pairwise numbers stay ``None`` rather than pretending to be perfect.
    """
    texts = arm.texts
    arm.distinct = len(set(texts))
    arm.fingerprints = dict(Counter(s.fingerprint or NO_FINGERPRINT for s in arm.samples if s.error is None))
    pairs = list(combinations(range(len(texts)), 2))
    if not pairs:
        return arm
    diffs = {(i, j): word_diff(texts[i], texts[j]) for i, j in pairs}
    arm.exact_match_rate = round(sum(1 for i, j in pairs if texts[i] == texts[j]) / len(pairs), 6)
    arm.mean_similarity = round(sum(d.similarity for d in diffs.values()) / len(diffs), 6)
    divergences = [d.first_divergence for (i, j), d in diffs.items() if texts[i] != texts[j] and d.first_divergence is not None]
    arm.first_divergence = min(divergences) if divergences else None
    first_pair = next(((i, j) for i, j in pairs if texts[i] != texts[j]), None)
    if first_pair is not None:
        arm.diff = {"pair": [first_pair[0] + 1, first_pair[1] + 1], **diffs[first_pair].to_json()}
    return arm


# --------------------------------------------------------------------------- running


def _request(client: openai.OpenAI, params: dict[str, Any]) -> Sample:
    """Send one request; an API error becomes a sample with ``error`` set.

    The error keeps only the exception type, status and error code, never the message:
    a 401 message quotes part of the key, and probe output ends up in CI logs.
    """
    started = time.monotonic()
    try:
        response = client.chat.completions.create(**params)
    except openai.APIError as exc:
        status = getattr(exc, "status_code", None)
        code = getattr(exc, "code", None)
        details = ", ".join(str(x) for x in (f"HTTP {status}" if status else None, code) if x)
        return Sample(text=None, error=f"{type(exc).__name__}" + (f" ({details})" if details else ""))
    latency = int((time.monotonic() - started) * 1000)
    choice = response.choices[0] if response.choices else None
    message = choice.message if choice else None
    return Sample(
        text=(message.content or "") if message else "",
        fingerprint=response.system_fingerprint or None,
        model=response.model or None,
        finish_reason=choice.finish_reason if choice else None,
        latency_ms=latency,
    )


def request_params(
    model: str,
    *,
    seed: int | None,
    temperature: float,
    max_tokens: int | None,
    system: str,
    prompt: str,
) -> dict[str, Any]:
    """The chat request of one arm; ``seed`` and ``max_tokens`` only when given."""
    params: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
        "temperature": temperature,
        "extra_headers": dict(PASSTHROUGH_HEADERS),
    }
    if seed is not None:
        params["seed"] = seed
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    return params


def run_probe(
    client: openai.OpenAI,
    model: str,
    n: int = 4,
    seed: int = 42,
    temperature: float = 0.7,
    max_tokens: int | None = None,
    system: str = DEFAULT_SYSTEM,
    prompt: str = DEFAULT_PROMPT,
    progress: ProgressCallback | None = None,
) -> ProbeResult:
    """Send the request ``n`` times without a seed, then ``n`` times with ``seed``.

    Arms run one after the other, as in the documents; ``AzureOpenAI`` works the same
    (``model`` is then the deployment name).
    """
    if n < 2:
        raise ValueError("a probe needs n >= 2: outputs can only be compared in pairs")
    arms = [ArmResult("unseeded", None), ArmResult("seeded", seed)]
    total, done = 2 * n, 0
    for arm in arms:
        params = request_params(model, seed=arm.seed, temperature=temperature, max_tokens=max_tokens, system=system, prompt=prompt)
        if progress:
            progress(arm.name, done, total)
        for _ in range(n):
            arm.samples.append(_request(client, params))
            done += 1
            if progress:
                progress(arm.name, done, total)
        arm_statistics(arm)
    params = {
        "n": n,
        "seed": seed,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "system": system,
        "prompt": prompt,
    }
    return ProbeResult(model=model, params=params, arms=arms)


@contextmanager
def progress_bar(console: Console | None = None, transient: bool = True) -> Iterator[ProgressCallback]:
    """A rich progress bar as a :data:`ProgressCallback` (on stderr, so ``--json`` stays clean)."""
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console or Console(stderr=True), transient=transient) as bar:
        task = bar.add_task("probe", total=None)

        def update(arm: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=f"probe: {arm} arm")

        yield update


# --------------------------------------------------------------------------- rendering


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _fingerprint_cell(fingerprints: dict[str, int]) -> str:
    return ", ".join(f"{fp} x{count}" for fp, count in fingerprints.items()) or "-"


def _arm_table(result: ProbeResult) -> Table:
    grid = Table(title="Reproducibility per arm", title_justify="left")
    for column in ("arm", "seed", "answers", "distinct", "exact match", "similarity", "diverges at"):
        grid.add_column(column, justify="left" if column == "arm" else "right", no_wrap=True)
    grid.add_column("fingerprints", overflow="fold")
    for arm in result.arms:
        grid.add_row(
            arm.name,
            "-" if arm.seed is None else str(arm.seed),
            f"{len(arm.texts)}/{len(arm.samples)}",
            str(arm.distinct),
            _rate(arm.exact_match_rate),
            _number(arm.mean_similarity),
            "-" if arm.first_divergence is None else f"word {arm.first_divergence}",
            _fingerprint_cell(arm.fingerprints),
        )
    return grid


def _arm_story(arm: ArmResult) -> list[Any]:
    """What the documents print for an arm: identical, or where and how two outputs part."""
    lines: list[Any] = []
    answers = len(arm.texts)
    if arm.errors:
        reasons = Counter(s.error for s in arm.samples if s.error)
        lines.append(
            Text(
                f"{arm.name} arm: {arm.errors} request(s) failed: " + "; ".join(f"{r} x{c}" for r, c in reasons.items()),
                style="yellow",
            )
        )
    if answers < 2:
        lines.append(Text(f"{arm.name} arm: fewer than two answers, nothing to compare.", style="yellow"))
        return lines
    if arm.diff is None:
        lines.append(Text(f"{arm.name} arm: all {answers} outputs identical.", style="green"))
        lines.append(Text("  " + _short(arm.texts[0]), style="dim"))
        return lines
    i, j = arm.diff["pair"]
    lines.append(
        Text(
            f"{arm.name} arm: {arm.distinct} distinct of {answers}; outputs {i} and {j} differ from word "
            f"{arm.diff['first_divergence']} (similarity {arm.diff['similarity']:.3f}):",
            style="bold",
        )
    )
    lines.append(rich_diff(arm.diff["ops"], indent="  "))
    return lines


def _short(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def verdict(result: ProbeResult) -> str:
    """One sentence a reader takes away, in the documents' terms."""
    seeded, unseeded = result.arm("seeded"), result.arm("unseeded")
    if len(seeded.texts) < 2 or len(unseeded.texts) < 2:
        return "Not enough answers to judge reproducibility."
    seeded_part = (
        f"with seed={seeded.seed} all {len(seeded.texts)} outputs were identical"
        if seeded.distinct == 1
        else f"with seed={seeded.seed} outputs still varied ({seeded.distinct} distinct, exact-match rate {_rate(seeded.exact_match_rate)})"
    )
    unseeded_part = (
        f"without a seed {unseeded.distinct} of {len(unseeded.texts)} outputs were distinct"
        if unseeded.distinct > 1
        else "without a seed the outputs happened to be identical"
    )
    return f"{unseeded_part}; {seeded_part}."


def _header(result: ProbeResult) -> Text:
    p = result.params
    max_tokens = p.get("max_tokens") if p.get("max_tokens") is not None else "default"
    text = Text(
        f"seedtape probe: model {result.model}, {p['n']} requests per arm, temperature {p['temperature']}, max_tokens {max_tokens}\n",
        style="bold",
    )
    text.append(f"system: {p['system']!r}\nprompt: {p['prompt']!r}", style="")
    return text


def render_probe(result: ProbeResult, json: bool = False, *, color: bool = False, width: int = 100) -> str:
    """The probe as text for a terminal, or (``json=True``) as a JSON document."""
    if json:
        return jsonlib.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n"
    parts: list[Any] = [_header(result), _arm_table(result)]
    for arm in result.arms:
        parts.extend(_arm_story(arm))
    fingerprints = result.fingerprints
    if len(fingerprints) > 1:
        parts.append(
            Text(
                f"Several system_fingerprints seen: {_fingerprint_cell(fingerprints)}: the backend configuration changed during the run.",
                style="yellow",
            )
        )
    parts.append(Text(verdict(result), style="bold"))
    return render_text(Group(*parts), width, color)


# --- the command: an upstream, an API shape, a key ---------------------------------

SIM_KEY = "sim-key-not-a-secret"


def _client(base: str, api: str, api_version: str, key: str | None) -> openai.OpenAI:
    if api == "azure":
        return openai.AzureOpenAI(
            azure_endpoint=base, api_version=api_version, api_key=key or os.environ.get("AZURE_OPENAI_API_KEY"), max_retries=2
        )
    return openai.OpenAI(base_url=base.rstrip("/") + "/v1", api_key=key or os.environ.get("OPENAI_API_KEY"), max_retries=2)


def run_probe_command(
    *,
    upstream: str,
    api: str | None,
    model: str,
    api_version: str,
    n: int,
    seed: int,
    temperature: float,
    max_tokens: int | None,
    system: str | None,
    prompt: str | None,
    sim_seed_drift: float,
    as_json: bool,
) -> str:
    with ExitStack() as stack:
        key = None
        if upstream == SIM_UPSTREAM:
            from seedtape.serving import serve_in_thread
            from seedtape.sim import SimConfig, create_simulator

            simulator = create_simulator(SimConfig(seed_drift=sim_seed_drift))
            upstream, key = stack.enter_context(serve_in_thread(simulator.app)), SIM_KEY
        api = api or ("openai" if upstream.rstrip("/") == OPENAI_UPSTREAM else "azure")
        client = _client(upstream, api, api_version, key)
        progress: Any = None
        if not as_json and sys.stderr.isatty():
            progress = stack.enter_context(progress_bar())
        result = run_probe(
            client,
            model,
            n=n,
            seed=seed,
            temperature=temperature,
            max_tokens=max_tokens,
            system=system or DEFAULT_SYSTEM,
            prompt=prompt or DEFAULT_PROMPT,
            progress=progress,
        )
    return render_probe(result, json=as_json, color=sys.stdout.isatty())
