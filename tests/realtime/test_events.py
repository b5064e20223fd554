"""The stored and matched forms of Realtime events, and the session key (no sockets)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from click.testing import CliRunner

from seedtape.cli import main
from seedtape.config import Settings
from seedtape.realtime.events import ABSENT, audio_digest, client_form, differences, playable, server_form
from seedtape.realtime.handshake import Handshake, realtime_api
from seedtape.realtime.tape import Session, Tape


def test_client_form_drops_event_ids_and_nulls_sorts_and_folds_numbers() -> None:
    event = {"event_id": "evt_1", "type": "session.update", "session": {"b": 1.0, "a": [2.0, 0.5]}, "extra": None}
    assert client_form(event) == {"type": "session.update", "session": {"a": [2, 0.5], "b": 1}}
    assert json.dumps(client_form(event)) == '{"session": {"a": [2, 0.5], "b": 1}, "type": "session.update"}'


def test_client_audio_becomes_its_digest_wherever_it_is() -> None:
    audio = base64.b64encode(b"\x01\x02" * 100).decode()
    append = client_form({"type": "input_audio_buffer.append", "audio": audio})
    assert append["audio"] == {"sha256": hashlib.sha256(b"\x01\x02" * 100).hexdigest(), "bytes": 200}
    item = client_form({"type": "conversation.item.create", "item": {"content": [{"type": "input_audio", "audio": audio}]}})
    assert item["item"]["content"][0]["audio"] == append["audio"]
    assert audio_digest("not base64!")["bytes"] == len("not base64!")


def test_server_audio_is_kept_or_hashed_and_hashed_audio_plays_as_silence() -> None:
    delta = {"type": "response.output_audio.delta", "delta": base64.b64encode(bytes(range(10))).decode()}
    assert server_form(dict(delta), "keep") == delta
    hashed = server_form(dict(delta), "hash")
    assert hashed["delta"] == {"sha256": hashlib.sha256(bytes(range(10))).hexdigest(), "bytes": 10}
    assert base64.b64decode(playable(hashed)["delta"]) == bytes(10)
    assert playable(delta) is delta  # nothing to rebuild: the stored event itself


def test_differences_name_the_path_of_every_changed_leaf() -> None:
    recorded = {"type": "conversation.item.create", "item": {"content": [{"text": "hello", "type": "input_text"}]}}
    wanted = {"type": "conversation.item.create", "item": {"content": [{"text": "bye", "type": "input_text"}]}, "x": 1}
    assert differences(wanted, recorded) == [("item.content.0.text", "bye", "hello"), ("x", 1, ABSENT)]
    assert differences(recorded, recorded) == []


def test_realtime_paths() -> None:
    assert realtime_api("/v1/realtime") == "openai"
    assert realtime_api("/openai/realtime/") == "azure"
    assert realtime_api("/openai/v1/realtime") == "azure-v1"
    assert realtime_api("/v1/responses") is None and realtime_api("/v1/realtime/x") is None


def test_session_key_is_key_v1_with_route_realtime_and_ignores_credentials_in_the_query() -> None:
    first = client_form({"type": "session.update", "session": {"type": "realtime", "instructions": "be brief"}})
    azure = Handshake.parse("azure", "/openai/realtime", "api-version=2025-08-28&deployment=rt&api-key=SECRET")
    assert azure.params == {} and (azure.deployment, azure.api_version) == ("rt", "2025-08-28")
    assert "SECRET" not in json.dumps(azure.stored_request(first))
    material = {
        "v": 1,
        "api": "azure",
        "route": "realtime",
        "deployment": "rt",
        "api_version": "2025-08-28",
        "body": {"first_event": first, "query": {}},
    }
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert azure.key(first) == hashlib.sha256(canonical.encode()).hexdigest()
    other_key = Handshake.parse("azure", "/openai/realtime", "deployment=rt&api-version=2025-08-28&api-key=OTHER")
    assert other_key.key(first) == azure.key(first)  # the credential is not in the key
    openai_shape = Handshake.parse("openai", "/v1/realtime", "model=gpt-realtime")
    assert openai_shape.key(first) != openai_shape.key(client_form({**first, "session": {"type": "realtime"}}))


def test_a_prepared_session_knows_its_prelude_and_end() -> None:
    tape = Tape()
    tape.server('{"type":"session.created"}')
    tape.client(client_form({"type": "session.update", "session": {}}))
    tape.server('{"type":"session.updated"}')
    tape.ended("server", 1000)
    session = Session.prepare(1, tape.episode())
    assert session.prelude == 1 and session.prelude_frames() == ('{"type":"session.created"}',)
    assert (session.end_by, session.end_code) == ("server", 1000) and session.client_events() == 1
    assert tape.complete
    dropped = Tape()
    dropped.ended("server", 1006)
    assert not dropped.complete


def test_audio_setting_and_flag() -> None:
    with pytest.raises(ValueError, match="realtime_audio"):
        Settings(realtime_audio="drop")
    assert "--realtime-audio [keep|hash]" in CliRunner().invoke(main, ["serve", "-h"]).output
