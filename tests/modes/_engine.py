"""A mode, an engine and the simulator in one process: the per-mode tests' rig.

After Hoverfly's ``core/modes`` tests: no server, no SDK, no socket. A test builds
chat-completions exchanges the way ``app.proxy`` does (route, key, occurrence), hands
them to ``MODES[name].handle``, and looks at what came back, what was written and
what the simulator was asked.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import httpx
from starlette.responses import Response, StreamingResponse

from seedtape.config import SIM_UPSTREAM, Settings
from seedtape.engine import Engine
from seedtape.exchange import Exchange
from seedtape.key import make_key
from seedtape.modes import MODES
from seedtape.routes import match_route
from seedtape.sim.simulator import Simulator, create_simulator
from tests.conftest import AZURE_KEY

PATH = "/openai/deployments/gpt-4/chat/completions"
API_VERSION = "2024-02-01"
PANDA = [
    {"role": "system", "content": "You always produce 3-sentence answers."},
    {"role": "user", "content": "Create a story about red panda."},
]


class Rig:
    """One engine in front of one simulator, with tmp cassettes and cache folders."""

    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.settings = Settings(
            upstream=SIM_UPSTREAM, cassettes_dir=tmp_path / "cassettes", cache_dir=tmp_path / "cache", session="run-1", **settings
        )
        # A fixed entropy seed: unseeded answers differ from each other, the same way every run.
        self.sim: Simulator = create_simulator(entropy_seed=2026)
        self.engine = Engine(self.settings, httpx.ASGITransport(app=self.sim.app))
        self._sessions = itertools.count(2)
        self.session = self.settings.session

    def new_session(self) -> None:
        """A new session (a pytest test): occurrence counters start again at 1."""
        self.session = f"run-{next(self._sessions)}"

    def new_run(self) -> None:
        """A new proxy run: a new session, and what was recorded so far is from an
        earlier run (record mode rewrites it; a run never overwrites its own)."""
        self.new_session()
        self.engine.run_started = time.time()

    def exchange(self, mode: str, **params: Any) -> Exchange:
        """A chat-completions request as the app reads it: route and key (occurrence: ``send``)."""
        body = {"model": "gpt-4", "messages": PANDA, "temperature": 0.1, **params}
        match = match_route("POST", PATH, API_VERSION)
        assert match is not None
        target = match.target
        return Exchange(
            target=target,
            path=PATH,
            query=f"api-version={API_VERSION}",
            body=body,
            raw=json.dumps(body).encode(),
            client_headers={"api-key": AZURE_KEY, "content-type": "application/json"},
            mode=mode,
            cassette=self.settings.cassette,
            session=self.session,
            key=make_key(target, body, self.settings.ignore_fields),
            family=match.family,
            endpoint=match.endpoint,
            stream=body.get("stream") is True,
            offline=MODES[mode].offline,
        )

    async def send(self, mode: str, **params: Any) -> Response:
        """One request through ``MODES[mode]``; a streamed answer is read to its end (as a client would)."""
        exchange = self.exchange(mode, **params)
        exchange.occurrence = self.engine.coordinator.next_occurrence(exchange.session, exchange.cassette, exchange.key)
        response = await MODES[mode].handle(self.engine, exchange)
        if isinstance(response, StreamingResponse):
            response.body = b"".join(
                [bytes(chunk, "utf-8") if isinstance(chunk, str) else bytes(chunk) async for chunk in response.body_iterator]
            )
        return response

    def key(self, **params: Any) -> str:
        """The key of a request with these parameters (counts no occurrence)."""
        return self.exchange("replay", **params).key

    def files(self) -> list[Path]:
        """Every file in the cassettes folder (cassette JSON and anything else)."""
        root = self.settings.cassettes_dir
        return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []

    def recording(self, key: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.engine.store.path_for(self.settings.cassette, key).read_text())
        return data

    def stats(self) -> dict[str, int]:
        return self.engine.coordinator.stats()

    def close(self) -> None:
        self.engine.store.close()


def seedtape_headers(response: Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("x-seedtape-")}


def cache(response: Response) -> tuple[str, str | None]:
    """(x-seedtape-cache, x-seedtape-episode): what a mode did with one request."""
    return response.headers["x-seedtape-cache"], response.headers.get("x-seedtape-episode")


def text(response: Response) -> str:
    content: str = json.loads(bytes(response.body))["choices"][0]["message"]["content"]
    return content


def episode_text(episode: dict[str, Any]) -> str:
    content: str = episode["body"]["choices"][0]["message"]["content"]
    return content
