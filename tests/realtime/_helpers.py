"""A Realtime session as a test drives it: the real SDK, raw events, bounded waits."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

import openai
from websockets.exceptions import ConnectionClosed

from tests.conftest import RunningProxy

SESSION = {"type": "realtime", "output_modalities": ["text"], "instructions": "be brief"}
MAX_EVENTS = 500  # every receive loop is bounded
CLOSED_PORT_URL = "http://127.0.0.1:9"  # nothing listens on the discard port: "no upstream"


def user_item(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def text_session(conn: Any, text: str = "Say hello", session: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """session.update, conversation.item.create, response.create; every server event up to
    response.done, as the JSON the client received."""
    # A replay that finds a difference closes right after its error event; a send still
    # under way then fails, while the error event waits in the client's queue.
    with contextlib.suppress(ConnectionClosed):
        conn.session.update(session=session or SESSION)
        conn.conversation.item.create(item=user_item(text))
        conn.response.create()
    events: list[dict[str, Any]] = []
    for _ in range(MAX_EVENTS):
        event = json.loads(conn.recv_bytes())
        events.append(event)
        if event["type"] in ("response.done", "error"):
            return events
    raise AssertionError("no response.done within the event bound")


async def async_text_session(conn: Any, text: str = "Say hello", session: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    with contextlib.suppress(ConnectionClosed):
        await conn.session.update(session=session or SESSION)
        await conn.conversation.item.create(item=user_item(text))
        await conn.response.create()
    events: list[dict[str, Any]] = []
    for _ in range(MAX_EVENTS):
        event = json.loads(await conn.recv_bytes())
        events.append(event)
        if event["type"] in ("response.done", "error"):
            return events
    raise AssertionError("no response.done within the event bound")


def openai_client(url: str, key: str, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, **options)


def wait_recorded(proxy: RunningProxy, count: int, timeout: float = 5.0) -> None:
    """A session is written just after it closes: wait (bounded) until the proxy says so."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proxy.engine.coordinator.stats()["recorded"] >= count:
            return
        time.sleep(0.01)
    raise AssertionError(f"proxy recorded {proxy.engine.coordinator.stats()['recorded']} sessions, expected {count}")


def session_files(cassettes: Path, cassette: str = "default") -> list[Path]:
    folder = cassettes / cassette
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def delta_text(events: list[dict[str, Any]]) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
