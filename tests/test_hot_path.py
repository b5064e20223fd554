"""The replay hot path's shortcuts give the same answers as the long way."""

from __future__ import annotations

import json

import pytest

from seedtape.errors import ProxyError
from seedtape.exchange import keyed_body
from seedtape.key import make_key
from seedtape.prepared import prepare_episode
from seedtape.replayer import episode_response
from seedtape.routes import Target

CHAT = Target("openai", "chat/completions")


def test_remembered_keys_match_fresh_ones() -> None:
    body = {"model": "gpt-4", "seed": 42, "temperature": 0.0, "user": "u1", "messages": [{"role": "user", "content": "hi"}]}
    raw = json.dumps(body).encode()
    for _ in range(2):  # the second call is answered from the memo
        assert keyed_body(raw, CHAT, (), "")[1] == make_key(CHAT, body)
        assert keyed_body(raw, CHAT, ("user",), "")[1] == make_key(CHAT, body, ("user",))
        assert keyed_body(raw, CHAT, (), "p1")[1] == make_key(CHAT, body, (), "p1")
        assert keyed_body(raw, Target("azure", "chat/completions", "gpt-4", "2024-02-01"), (), "")[1] != make_key(CHAT, body)
    assert len({keyed_body(raw, CHAT, (), p)[1] for p in ("", "p1", "p2")}) == 3


def test_bad_bodies_are_never_remembered() -> None:
    for _ in range(2):
        with pytest.raises(ProxyError):
            keyed_body(b"[1, 2]", CHAT, (), "")


def test_encoded_response_headers_match_starlette() -> None:
    episode = prepare_episode(
        1,
        {
            "status": 200,
            "headers": {"content-type": "application/json", "x-seedtape-cache": "stale", "openai-version": "2020-10-01"},
            "body": {"ok": True},
        },
    )
    response = episode_response(episode, {"x-seedtape-mode": "replay", "x-seedtape-cache": "hit"})
    assert dict(response.headers) == {
        "content-type": "application/json",
        "openai-version": "2020-10-01",
        "x-seedtape-mode": "replay",
        "x-seedtape-cache": "hit",
        "content-length": str(len(response.body)),
    }
    assert response.body == b'{"ok":true}'
    response.headers["x-seedtape-expired"] = "3.0"  # engine adds this for --max-age warn
    assert response.headers["x-seedtape-expired"] == "3.0"
    empty = episode_response(prepare_episode(1, {"status": 204, "headers": {}, "body": None}), {})
    assert "content-length" not in empty.headers


def test_proxy_dispatch_keeps_admin_routes_and_method_checks(tmp_path) -> None:
    import httpx

    from seedtape.app import create_app
    from seedtape.config import Settings

    app = create_app(Settings(mode="replay", upstream="http://127.0.0.1:9", cassettes_dir=tmp_path / "c", cache_dir=tmp_path / "k"))

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            assert (await client.get("/_seedtape/health")).json()["status"] == "ok"
            assert (await client.get("/_seedtape/stats")).json()["requests"] == 0
            miss = await client.post("/v1/chat/completions", json={"model": "m", "messages": []})
            assert miss.status_code == 404 and miss.json()["error"]["type"] == "seedtape_cassette_miss"
            assert miss.headers["x-seedtape-mode"] == "replay"
            assert (await client.request("TRACE", "/v1/chat/completions")).status_code == 405
            assert (await client.get("/_seedtape/stats")).json()["requests"] == 1

    import anyio

    anyio.run(run)
