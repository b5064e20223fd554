"""Wiring ``seedtape probe`` to a real client: the upstream, the API shape, the key."""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from typing import Any

import openai

from .config import OPENAI_UPSTREAM, SIM_UPSTREAM
from .probe import DEFAULT_PROMPT, DEFAULT_SYSTEM, progress_bar, render_probe, run_probe

SIM_KEY = "sim-key-not-a-secret"


def _client(base: str, api: str, api_version: str, key: str | None) -> openai.OpenAI:
    if api == "azure":
        return openai.AzureOpenAI(azure_endpoint=base, api_version=api_version, api_key=key or os.environ.get("AZURE_OPENAI_API_KEY"), max_retries=2)
    return openai.OpenAI(base_url=base.rstrip("/") + "/v1", api_key=key or os.environ.get("OPENAI_API_KEY"), max_retries=2)


def run_probe_command(
    *, upstream: str, api: str | None, model: str, api_version: str, n: int, seed: int, temperature: float,
    max_tokens: int | None, system: str | None, prompt: str | None, sim_seed_drift: float, as_json: bool,
) -> str:
    with ExitStack() as stack:
        key = None
        if upstream == SIM_UPSTREAM:
            from .serving import serve_in_thread
            from .simulator import SimConfig, create_simulator

            simulator = create_simulator(SimConfig(seed_drift=sim_seed_drift))
            upstream, key = stack.enter_context(serve_in_thread(simulator.app)), SIM_KEY
        api = api or ("openai" if upstream.rstrip("/") == OPENAI_UPSTREAM else "azure")
        client = _client(upstream, api, api_version, key)
        progress: Any = None
        if not as_json and sys.stderr.isatty():
            progress = stack.enter_context(progress_bar())
        result = run_probe(
            client, model, n=n, seed=seed, temperature=temperature, max_tokens=max_tokens,
            system=system or DEFAULT_SYSTEM, prompt=prompt or DEFAULT_PROMPT, progress=progress,
        )
    return render_probe(result, json=as_json, color=sys.stdout.isatty())
