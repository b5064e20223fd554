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
    episode = prepare_episode(1, {"status": 200, "headers": {"content-type": "application/json", "x-seedtape-cache": "stale",
                                                              "openai-version": "2020-10-01"}, "body": {"ok": True}})
    response = episode_response(episode, {"x-seedtape-mode": "replay", "x-seedtape-cache": "hit"})
    assert dict(response.headers) == {"content-type": "application/json", "openai-version": "2020-10-01",
                                      "x-seedtape-mode": "replay", "x-seedtape-cache": "hit", "content-length": str(len(response.body))}
    assert response.body == b'{"ok":true}'
    response.headers["x-seedtape-expired"] = "3.0"  # engine adds this for --max-age warn
    assert response.headers["x-seedtape-expired"] == "3.0"
    empty = episode_response(prepare_episode(1, {"status": 204, "headers": {}, "body": None}), {})
    assert "content-length" not in empty.headers
