"""``seedtape probe``: how often, and how much, does ``seed`` fail to reproduce?

The two documents seedtape grew from send one chat request several times without a
``seed`` and several times with ``seed=42`` and compare the answers with ``difflib``.
The probe runs that experiment as a measuring instrument, in the terms of the published
measurements (docs/probe.md):

arms
    ``unseeded`` (temperature T, no seed), ``seeded`` (T and ``seed``), ``t0``
    (temperature 0, no seed), each at a short and a long ``max_tokens`` (longer answers
    drift more), and ``responses-t0``: the Responses API at temperature 0 (it has no
    seed, so that is all the determinism it offers). ``--arm kind/max_tokens`` picks
    arms; N runs each (default 10), for every prompt.
metrics per arm
    ``TARr@N``: the share of prompts whose N raw outputs are all identical (total
    agreement rate, raw; Atil et al., arXiv 2408.04667); ``TARa@N``: the same for the
    parsed answers (``--answer-regex`` or ``--answer-json-path``; an output with no
    answer never agrees); unique outputs / N; first divergence, the median over
    differing pairs of the first differing word (difflib, as the notebook) and of the
    token there (estimated from the service's own ``usage``: the word index times the
    answer's tokens per word, exact on the simulator, one token per word); the
    fingerprints seen and how many differing pairs share one (drift the fingerprint
    does not explain); mean pairwise word similarity.
history
    ``--history FILE`` appends each run as a JSON line (time, upstream, model,
    fingerprints, metrics); ``seedtape probe report FILE`` draws it over time
    (commands/probe_report.py).

Every probe request carries ``x-seedtape-mode: passthrough`` so that, sent through a
seedtape proxy, it reaches the live service and is never recorded or served from a
cassette (a cached answer would make the seeded arm look perfect).
"""

from __future__ import annotations

import json as jsonlib
import os
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import openai
from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from seedtape.config import OPENAI_UPSTREAM, SIM_UPSTREAM
from seedtape.drift import log as jsonl
from seedtape.drift.report import rich_diff
from seedtape.drift.worddiff import WordDiff, word_diff
from seedtape.jsonpath import parse_path
from seedtape.terminal import render_text

# The Azure reproducible-output page's experiment: "Tell me a story about how the
# universe began?" at temperature 0.7 with seed 42 and max_tokens 50; the long arm
# lets the same story run on (the page: larger max_tokens, less deterministic).
DEFAULT_SYSTEM = "You are a helpful assistant."
DEFAULT_PROMPT = "Tell me a story about how the universe began?"
DEFAULT_LENGTHS = (50, 500)
DEFAULT_RUNS = 10
ARM_KINDS = ("unseeded", "seeded", "t0", "responses-t0")
CHAT_KINDS = ("unseeded", "seeded", "t0")
RESPONSES_API_VERSION = "2025-04-01-preview"
PASSTHROUGH_HEADERS = {"x-seedtape-mode": "passthrough"}
NO_FINGERPRINT = "(none)"
HISTORY_SCHEMA = "seedtape.probe/1"

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``progress(arm, done, total)`` before the first and after every request."""
Extractor = Callable[[str], str | None]


# --------------------------------------------------------------------------- arms


@dataclass(frozen=True, slots=True)
class ArmSpec:
    """One arm: what kind of request, cut at which ``max_tokens`` (``None``: the API's default)."""

    kind: str
    max_tokens: int | None = None

    @property
    def name(self) -> str:
        return self.kind if self.max_tokens is None else f"{self.kind}/{self.max_tokens}"

    @property
    def api(self) -> str:
        return "responses" if self.kind == "responses-t0" else "chat"


def parse_arm(text: str) -> ArmSpec:
    """``seeded``, ``seeded/50``, ``responses-t0/500``; ``ValueError`` on anything else."""
    kind, _, length = text.strip().partition("/")
    if kind not in ARM_KINDS:
        raise ValueError(f"unknown arm {text!r}: the kind is one of {', '.join(ARM_KINDS)} (optionally /max_tokens)")
    if not length:
        return ArmSpec(kind)
    if not length.isdigit() or int(length) < 1:
        raise ValueError(f"arm {text!r}: max_tokens after the / must be a positive integer")
    return ArmSpec(kind, int(length))


def default_arms(lengths: Sequence[int | None] = DEFAULT_LENGTHS, responses: bool = True) -> list[ArmSpec]:
    """Every chat kind at every length, then the Responses arm at the longest length."""
    arms = [ArmSpec(kind, length) for length in lengths for kind in CHAT_KINDS]
    if responses:
        known = [length for length in lengths if length is not None]
        arms.append(ArmSpec("responses-t0", max(known) if known else None))
    return arms


# --------------------------------------------------------------------------- results


@dataclass(slots=True)
class Sample:
    """One answer (or the reason there is none)."""

    text: str | None
    fingerprint: str | None = None
    model: str | None = None
    finish_reason: str | None = None
    latency_ms: int = 0
    error: str | None = None
    tokens: int | None = None  # the service's count of output tokens (usage)
    prompt: int = 0  # which prompt it answers
    answer: str | None = None  # the parsed answer (with an extractor)


@dataclass(slots=True)
class ArmResult:
    """One arm of the experiment and its statistics (filled by :func:`arm_statistics`)."""

    name: str
    seed: int | None
    samples: list[Sample] = field(default_factory=list)
    kind: str = ""
    api: str = "chat"
    temperature: float | None = None
    max_tokens: int | None = None
    prompts: int = 1
    runs: int = 0
    distinct: int = 0
    tarr: float | None = None
    tara: float | None = None
    unique_ratio: float | None = None
    exact_match_rate: float | None = None
    mean_similarity: float | None = None
    first_divergence: float | None = None  # median word index over differing pairs
    first_divergence_token: float | None = None  # median token index (estimated from usage)
    earliest_divergence: int | None = None
    differing_pairs: int = 0
    differing_same_fingerprint: int = 0
    fingerprints: dict[str, int] = field(default_factory=dict)
    diff: dict[str, Any] | None = None

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.samples if s.error is None and s.text is not None]

    @property
    def errors(self) -> int:
        return sum(1 for s in self.samples if s.error is not None)

    def metrics(self) -> dict[str, Any]:
        """The numbers without the samples: what the history keeps."""
        return {
            "name": self.name,
            "kind": self.kind,
            "api": self.api,
            "seed": self.seed,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "runs": self.runs,
            "prompts": self.prompts,
            "answers": len(self.texts),
            "errors": self.errors,
            "tarr": self.tarr,
            "tara": self.tara,
            "unique_ratio": self.unique_ratio,
            "distinct": self.distinct,
            "exact_match_rate": self.exact_match_rate,
            "mean_similarity": self.mean_similarity,
            "first_divergence": self.first_divergence,
            "first_divergence_token": self.first_divergence_token,
            "earliest_divergence": self.earliest_divergence,
            "differing_pairs": self.differing_pairs,
            "differing_same_fingerprint": self.differing_same_fingerprint,
            "fingerprints": dict(self.fingerprints),
        }

    def to_json(self) -> dict[str, Any]:
        data = self.metrics()
        data["samples"] = [
            {
                k: getattr(s, k)
                for k in ("text", "fingerprint", "model", "finish_reason", "latency_ms", "error", "tokens", "prompt", "answer")
            }
            for s in self.samples
        ]
        data["diff"] = self.diff
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

    @property
    def models_seen(self) -> dict[str, int]:
        return dict(Counter(s.model for arm in self.arms for s in arm.samples if s.model))

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "params": dict(self.params),
            "arms": [a.to_json() for a in self.arms],
            "fingerprints": self.fingerprints,
            "models_seen": self.models_seen,
        }


# --------------------------------------------------------------------------- statistics


def _median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def _token_index(sample: Sample, word: int) -> float | None:
    """The token where a word stands, from the service's own count: ``word * tokens/words``."""
    if sample.tokens is None or not sample.text:
        return None
    count = len(sample.text.split())
    return round(word * sample.tokens / count, 1) if count else None


def _total_agreement(groups: Sequence[Sequence[Any]], missing_disagrees: bool) -> float | None:
    """Share of prompts whose values all agree (prompts with fewer than two are skipped)."""
    judged = [values for values in groups if len(values) >= 2]
    if not judged:
        return None
    agree = sum(1 for values in judged if len(set(values)) == 1 and not (missing_disagrees and values[0] is None))
    return round(agree / len(judged), 6)


def arm_statistics(arm: ArmResult, parsed: bool = False) -> ArmResult:
    """Fill in the arm's numbers from its samples (pure: no network).

    Outputs are compared within a prompt: all ``i < j`` pairs of its successful answers.
    With fewer than two the pairwise numbers stay ``None`` rather than pretending to be
    perfect. ``parsed``: the samples carry parsed answers, so TARa@N is computed.
    """
    ok = [s for s in arm.samples if s.error is None and s.text is not None]
    by_prompt: dict[int, list[Sample]] = {}
    for sample in ok:
        by_prompt.setdefault(sample.prompt, []).append(sample)
    arm.prompts = max(arm.prompts, len(by_prompt))
    arm.distinct = len({(s.prompt, s.text) for s in ok})
    arm.fingerprints = dict(Counter(s.fingerprint or NO_FINGERPRINT for s in ok))
    groups = [[s.text for s in group] for group in by_prompt.values()]
    arm.tarr = _total_agreement(groups, missing_disagrees=False)
    arm.tara = _total_agreement([[s.answer for s in group] for group in by_prompt.values()], missing_disagrees=True) if parsed else None
    arm.unique_ratio = round(statistics.mean(len(set(texts)) / len(texts) for texts in groups), 6) if groups else None
    same = similarity = 0.0
    pairs = 0
    words: list[float] = []
    tokens: list[float] = []
    arm.differing_pairs = arm.differing_same_fingerprint = 0
    arm.diff, arm.earliest_divergence = None, None
    position = {id(sample): number for number, sample in enumerate(arm.samples, start=1)}
    for group in by_prompt.values():
        for a, b in combinations(group, 2):
            pairs += 1
            if a.text == b.text:
                same += 1
                similarity += 1.0
                continue
            diff: WordDiff = word_diff(a.text, b.text)
            similarity += diff.similarity
            arm.differing_pairs += 1
            arm.differing_same_fingerprint += (a.fingerprint or NO_FINGERPRINT) == (b.fingerprint or NO_FINGERPRINT)
            if diff.first_divergence is not None:
                words.append(diff.first_divergence)
                token = _token_index(a, diff.first_divergence)
                if token is not None:
                    tokens.append(token)
            if arm.diff is None:
                arm.diff = {"pair": [position[id(a)], position[id(b)]], "prompt": a.prompt + 1, **diff.to_json()}
    arm.exact_match_rate = round(same / pairs, 6) if pairs else None
    arm.mean_similarity = round(similarity / pairs, 6) if pairs else None
    arm.first_divergence = _median(words)
    arm.first_divergence_token = _median(tokens)
    arm.earliest_divergence = int(min(words)) if words else None
    return arm


# --------------------------------------------------------------------------- answers


def regex_extractor(pattern: str) -> Extractor:
    """The first match's first group (the whole match when the pattern has no group)."""
    compiled = re.compile(pattern)

    def extract(text: str) -> str | None:
        found = compiled.search(text)
        if found is None:
            return None
        return found.group(1) if compiled.groups else found.group(0)

    return extract


def json_path_extractor(path: str) -> Extractor:
    """The value at a dotted path (``answer``, ``result.items.0``) of the output as JSON."""
    segments = parse_path(path, "--answer-json-path")

    def extract(text: str) -> str | None:
        try:
            node: Any = jsonlib.loads(text)
        except ValueError:
            return None
        for segment in segments:
            if isinstance(node, dict) and segment in node:
                node = node[segment]
            elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
                node = node[int(segment)]
            else:
                return None
        return node if isinstance(node, str) else jsonlib.dumps(node, sort_keys=True, ensure_ascii=False)

    return extract


# --------------------------------------------------------------------------- running


def _error_sample(exc: openai.APIError, prompt: int) -> Sample:
    """The error keeps only the exception type, status and error code, never the message:
    a 401 message quotes part of the key, and probe output ends up in CI logs."""
    status = getattr(exc, "status_code", None)
    code = getattr(exc, "code", None)
    details = ", ".join(str(x) for x in (f"HTTP {status}" if status else None, code) if x)
    return Sample(text=None, error=f"{type(exc).__name__}" + (f" ({details})" if details else ""), prompt=prompt)


def _chat(client: openai.OpenAI, params: dict[str, Any], prompt: int) -> Sample:
    started = time.monotonic()
    try:
        response = client.chat.completions.create(**params)
    except openai.APIError as exc:
        return _error_sample(exc, prompt)
    choice = response.choices[0] if response.choices else None
    message = choice.message if choice else None
    return Sample(
        text=(message.content or "") if message else "",
        fingerprint=response.system_fingerprint or None,
        model=response.model or None,
        finish_reason=choice.finish_reason if choice else None,
        latency_ms=int((time.monotonic() - started) * 1000),
        tokens=response.usage.completion_tokens if response.usage else None,
        prompt=prompt,
    )


def _responses(client: openai.OpenAI, params: dict[str, Any], prompt: int) -> Sample:
    started = time.monotonic()
    try:
        response = client.responses.create(**params)
    except openai.APIError as exc:
        return _error_sample(exc, prompt)
    return Sample(
        text=response.output_text,
        fingerprint=None,  # the Responses API names no backend configuration
        model=response.model or None,
        finish_reason=str(response.status) if response.status else None,
        latency_ms=int((time.monotonic() - started) * 1000),
        tokens=response.usage.output_tokens if response.usage else None,
        prompt=prompt,
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


def responses_params(model: str, *, max_tokens: int | None, system: str, prompt: str) -> dict[str, Any]:
    """The Responses API request of the ``responses-t0`` arm: temperature 0, no seed (it has none)."""
    params: dict[str, Any] = {
        "model": model,
        "instructions": system,
        "input": prompt,
        "temperature": 0,
        "extra_headers": dict(PASSTHROUGH_HEADERS),
    }
    if max_tokens is not None:
        params["max_output_tokens"] = max_tokens
    return params


def run_probe(
    client: openai.OpenAI,
    model: str,
    n: int = DEFAULT_RUNS,
    seed: int = 42,
    temperature: float = 0.7,
    max_tokens: int | None = None,
    system: str = DEFAULT_SYSTEM,
    prompt: str | Sequence[str] = DEFAULT_PROMPT,
    progress: ProgressCallback | None = None,
    *,
    arms: Sequence[ArmSpec] | None = None,
    answer: Extractor | None = None,
    answer_label: str | None = None,
    responses_client: openai.OpenAI | None = None,
) -> ProbeResult:
    """Send every arm's request ``n`` times for every prompt, then compute the metrics.

    ``arms`` default: :func:`default_arms` at ``max_tokens`` when it is given, else at
    :data:`DEFAULT_LENGTHS`. Arms run one after the other, as in the documents;
    ``AzureOpenAI`` works the same (``model`` is then the deployment name).
    ``responses_client`` sends the Responses arm (Azure needs a newer api-version).
    """
    if n < 2:
        raise ValueError("a probe needs n >= 2: outputs can only be compared in pairs")
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if not prompts:
        raise ValueError("a probe needs at least one prompt")
    specs = list(arms) if arms is not None else default_arms((max_tokens,) if max_tokens is not None else DEFAULT_LENGTHS)
    results: list[ArmResult] = []
    total, done = len(specs) * n * len(prompts), 0
    for spec in specs:
        arm_seed = seed if spec.kind == "seeded" else None
        arm_temperature = temperature if spec.kind in ("unseeded", "seeded") else 0.0
        arm = ArmResult(
            spec.name,
            arm_seed,
            kind=spec.kind,
            api=spec.api,
            temperature=arm_temperature,
            max_tokens=spec.max_tokens,
            prompts=len(prompts),
            runs=n,
        )
        if progress:
            progress(arm.name, done, total)
        for index, text in enumerate(prompts):
            for _ in range(n):
                if spec.api == "responses":
                    params = responses_params(model, max_tokens=spec.max_tokens, system=system, prompt=text)
                    sample = _responses(responses_client or client, params, index)
                else:
                    params = request_params(
                        model, seed=arm_seed, temperature=arm_temperature, max_tokens=spec.max_tokens, system=system, prompt=text
                    )
                    sample = _chat(client, params, index)
                if answer is not None and sample.text is not None:
                    sample.answer = answer(sample.text)
                arm.samples.append(sample)
                done += 1
                if progress:
                    progress(arm.name, done, total)
        results.append(arm_statistics(arm, parsed=answer is not None))
    params_out = {
        "n": n,
        "seed": seed,
        "temperature": temperature,
        "arms": [s.name for s in specs],
        "system": system,
        "prompts": prompts,
        "answer": answer_label,
    }
    return ProbeResult(model=model, params=params_out, arms=results)


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


# --------------------------------------------------------------------------- history


def public_upstream(upstream: str) -> str:
    """The upstream as the history records it: scheme, host and path, never a user, a
    password or a query (a signed URL's query can be a credential)."""
    if upstream == SIM_UPSTREAM or "://" not in upstream:
        return upstream
    parts = urlsplit(upstream)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def history_entry(result: ProbeResult, upstream: str, api: str, now: datetime | None = None) -> dict[str, Any]:
    """One run as a history line: when, where, which model and fingerprints, the metrics."""
    return {
        "schema": HISTORY_SCHEMA,
        "time": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "upstream": public_upstream(upstream),
        "api": api,
        "model": result.model,
        "models_seen": result.models_seen,
        "fingerprints": result.fingerprints,
        "params": {k: v for k, v in result.params.items() if k != "prompts"} | {"prompts": len(result.params.get("prompts") or [])},
        "arms": [arm.metrics() for arm in result.arms],
    }


def append_history(path: str | os.PathLike[str], entry: dict[str, Any]) -> None:
    """Append one run (one ``write`` of one line, like the drift log)."""
    jsonl.append(path, entry)


def read_history(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every run in the file that is a probe run (other lines are skipped)."""
    return [entry for entry in jsonl.read(path) if entry.get("schema") == HISTORY_SCHEMA]


# --------------------------------------------------------------------------- rendering


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _fingerprint_cell(fingerprints: dict[str, int]) -> str:
    return ", ".join(f"{fp} x{count}" for fp, count in fingerprints.items()) or "-"


def _divergence_cell(arm: ArmResult) -> str:
    if arm.first_divergence is None:
        return "-"
    token = f" / ~{arm.first_divergence_token:g}" if arm.first_divergence_token is not None else ""
    return f"{arm.first_divergence:g}{token}"


def _arm_table(result: ProbeResult) -> Table:
    n = result.params.get("n", "N")
    grid = Table(title=f"Reproducibility per arm ({len(result.params.get('prompts') or [1])} prompt(s) x {n} runs)", title_justify="left")
    columns = ["arm", "seed", "temp", "ok", f"TARr@{n}"]
    if result.params.get("answer"):
        columns.append(f"TARa@{n}")
    columns += ["unique/N", "parts at word/~tok", "same-fp diffs", "similarity"]
    for column in columns:
        grid.add_column(column, justify="left" if column == "arm" else "right", no_wrap=True)
    grid.add_column("fingerprints", overflow="fold", min_width=18)
    for arm in result.arms:
        row = [
            arm.name,
            "-" if arm.seed is None else str(arm.seed),
            "-" if arm.temperature is None else f"{arm.temperature:g}",
            f"{len(arm.texts)}/{len(arm.samples)}",
            _rate(arm.tarr),
        ]
        if result.params.get("answer"):
            row.append(_rate(arm.tara))
        row += [
            _number(arm.unique_ratio),
            _divergence_cell(arm),
            f"{arm.differing_same_fingerprint}/{arm.differing_pairs}" if arm.differing_pairs else "-",
            _number(arm.mean_similarity),
            _fingerprint_cell(arm.fingerprints),
        ]
        grid.add_row(*row)
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


def verdict(result: ProbeResult) -> str:
    """What a reader takes away: which arms meant to repeat did not, and whether the
    fingerprint explains it."""
    meant = [a for a in result.arms if a.kind != "unseeded" and len(a.texts) >= 2]
    varied = [a for a in result.arms if a.kind == "unseeded" and len(a.texts) >= 2]
    if not meant and not varied:
        return "Not enough answers to judge reproducibility."
    parts = []
    failed = [a for a in meant if a.differing_pairs]
    if failed:
        described = []
        for arm in failed:
            unexplained = (
                "all with the same fingerprint" if arm.differing_same_fingerprint == arm.differing_pairs else "fingerprints differ"
            )
            described.append(f"{arm.name} (TARr {_rate(arm.tarr)}, {unexplained})")
        parts.append("meant to repeat but did not: " + ", ".join(described))
    held = [a.name for a in meant if not a.differing_pairs]
    if held:
        parts.append("repeated exactly: " + ", ".join(held))
    if varied:
        parts.append("without a seed: " + ", ".join(f"{a.name} unique/N {_number(a.unique_ratio)}" for a in varied))
    return "; ".join(parts) + "."


def _header(result: ProbeResult) -> Text:
    p = result.params
    prompts = p.get("prompts") or []
    text = Text(
        f"seedtape probe: model {result.model}, {p['n']} runs per arm and prompt, temperature {p['temperature']}, seed {p['seed']}\n",
        style="bold",
    )
    shown = repr(prompts[0]) + (f" (+{len(prompts) - 1} more)" if len(prompts) > 1 else "") if prompts else "-"
    text.append(f"system: {p['system']!r}\nprompt: {shown}", style="")
    if p.get("answer"):
        text.append(f"\nanswer: {p['answer']}")
    return text


def render_probe(result: ProbeResult, json: bool = False, *, color: bool = False, width: int = 140) -> str:
    """The probe as text for a terminal, or (``json=True``) as a JSON document."""
    if json:
        return jsonlib.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n"
    parts: list[Any] = [_header(result), _arm_table(result)]
    for arm in result.arms:
        parts.extend(_arm_story(arm))
    fingerprints = {fp: count for fp, count in result.fingerprints.items() if fp != NO_FINGERPRINT}
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


def sim_settings(pairs: Sequence[str]) -> tuple[dict[str, Any], int | None]:
    """``--sim KEY=VALUE`` as simulator config (values read as JSON when they parse) and
    the entropy seed (``entropy_seed=N``: the same draws on every run)."""
    config: dict[str, Any] = {}
    entropy: int | None = None
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--sim {pair!r}: expected KEY=VALUE, e.g. seed_drift=0.2")
        try:
            value: Any = jsonlib.loads(raw)
        except ValueError:
            value = raw
        if name.strip() == "entropy_seed":
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError("--sim entropy_seed must be an integer")
            entropy = value
        else:
            config[name.strip()] = value
    return config, entropy


def run_probe_command(
    *,
    upstream: str,
    api: str | None,
    model: str,
    api_version: str,
    n: int,
    seed: int,
    temperature: float,
    max_tokens: Sequence[int] = (),
    arms: Sequence[str] = (),
    responses: bool = True,
    responses_api_version: str = RESPONSES_API_VERSION,
    system: str | None,
    prompts: Sequence[str] = (),
    prompts_file: Path | None = None,
    answer_regex: str | None = None,
    answer_json_path: str | None = None,
    sim_seed_drift: float = 0.0,
    sim: Sequence[str] = (),
    history: Path | None = None,
    as_json: bool,
) -> str:
    """What ``seedtape probe`` runs; ``ValueError`` for a bad option (the CLI says which)."""
    specs = [parse_arm(a) for a in arms] if arms else default_arms(tuple(max_tokens) or DEFAULT_LENGTHS, responses)
    texts = list(prompts)
    if prompts_file is not None:
        texts += [line.strip() for line in prompts_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if answer_regex and answer_json_path:
        raise ValueError("give --answer-regex or --answer-json-path, not both")
    extractor = regex_extractor(answer_regex) if answer_regex else json_path_extractor(answer_json_path) if answer_json_path else None
    label = f"regex {answer_regex}" if answer_regex else f"json path {answer_json_path}" if answer_json_path else None
    with ExitStack() as stack:
        key = None
        base = upstream
        if upstream == SIM_UPSTREAM:
            from seedtape.serving import serve_in_thread
            from seedtape.sim import SimConfig, create_simulator

            config, entropy = sim_settings(sim)
            simulator = create_simulator(SimConfig(seed_drift=sim_seed_drift), entropy_seed=entropy)
            simulator.update_config(config)
            base, key = stack.enter_context(serve_in_thread(simulator.app)), SIM_KEY
        chosen_api = api or ("openai" if base.rstrip("/") == OPENAI_UPSTREAM else "azure")
        client = _client(base, chosen_api, api_version, key)
        responses_client = _client(base, chosen_api, responses_api_version, key) if chosen_api == "azure" else client
        progress: Any = None
        if not as_json and sys.stderr.isatty():
            progress = stack.enter_context(progress_bar())
        result = run_probe(
            client,
            model,
            n=n,
            seed=seed,
            temperature=temperature,
            system=system or DEFAULT_SYSTEM,
            prompt=texts or DEFAULT_PROMPT,
            progress=progress,
            arms=specs,
            answer=extractor,
            answer_label=label,
            responses_client=responses_client,
        )
    if history is not None:
        append_history(history, history_entry(result, upstream, chosen_api))
    return render_probe(result, json=as_json, color=sys.stdout.isatty())
