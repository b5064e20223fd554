"""The real openai SDK's realtime client through a real uvicorn proxy in front of the
simulator: record a session, replay it offline, fail clearly when it differs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest
import websockets.sync.client
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from seedtape.sim.simulator import Simulator
from tests.conftest import AZURE_KEY, OPENAI_KEY, RunningProxy
from tests.realtime._helpers import (
    CLOSED_PORT_URL,
    SESSION,
    async_text_session,
    delta_text,
    load,
    openai_client,
    session_files,
    text_session,
    wait_recorded,
)

Factory = Callable[..., RunningProxy]


def record_one(proxy_factory: Factory, **options: Any) -> tuple[RunningProxy, list[dict[str, Any]]]:
    recorder = proxy_factory(mode="record", **options)
    with openai_client(recorder.url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn:
        events = text_session(conn)
    wait_recorded(recorder, 1)
    return recorder, events


def test_sync_session_recorded_then_replayed_offline_event_for_event(proxy_factory: Factory, sim: Simulator) -> None:
    _recorder, live = record_one(proxy_factory)
    assert [e["type"] for e in live][:4] == ["session.created", "session.updated", "conversation.item.added", "conversation.item.done"]
    assert live[-1]["type"] == "response.done" and delta_text(live)
    assert sim.realtime.sessions == 1

    replayer = proxy_factory(mode="replay", upstream=CLOSED_PORT_URL)
    with openai_client(replayer.url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn:
        replayed = text_session(conn)
    assert replayed == live  # same events, same order, same content
    assert sim.realtime.sessions == 1  # the upstream was never contacted
    stats = replayer.stats()
    assert stats["hits"] == 1 and stats["upstream_calls"] == 0


@pytest.mark.anyio
async def test_async_session_recorded_then_replayed_offline(proxy_factory: Factory, sim: Simulator) -> None:
    recorder = proxy_factory(mode="record")
    client = openai.AsyncOpenAI(base_url=recorder.url + "/v1", api_key=OPENAI_KEY, max_retries=0)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        live = await async_text_session(conn, "Tell me a story about a red panda")
    wait_recorded(recorder, 1)

    replayer = proxy_factory(mode="replay", upstream=CLOSED_PORT_URL)
    client = openai.AsyncOpenAI(base_url=replayer.url + "/v1", api_key=OPENAI_KEY, max_retries=0)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        replayed = await async_text_session(conn, "Tell me a story about a red panda")
        # The parsed models the SDK hands out are the same too.
        assert [e["type"] for e in replayed] == [e["type"] for e in live]
    assert replayed == live
    assert "panda" in delta_text(replayed).lower()
    assert sim.realtime.sessions == 1


def test_changed_prompt_gets_error_event_naming_position_and_fields_then_close(proxy_factory: Factory) -> None:
    _, live = record_one(proxy_factory)
    replayer = proxy_factory(mode="replay", upstream=CLOSED_PORT_URL)
    with openai_client(replayer.url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn:
        events = text_session(conn, "Say goodbye")
        error = events[-1]
        assert error["type"] == "error"
        detail = error["error"]
        assert detail["type"] == "seedtape_cassette_miss" and detail["code"] == "event_mismatch"
        assert detail["param"] == "item.content.0.text"
        assert "client event 2 (conversation.item.create)" in detail["message"]
        assert 'item.content.0.text: "Say goodbye" != "Say hello"' in detail["message"]
        with pytest.raises(ConnectionClosedError) as closed:
            conn.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404
    assert closed.value.rcvd.reason == "seedtape_cassette_miss"
    # What was recorded before the differing event was served as recorded: session.created,
    # and session.updated if the upstream's answer reached the proxy before the next client
    # event (the tape keeps the order the proxy saw; the SDK does not wait between sends).
    assert events[:-1] == live[: len(events) - 1]


def test_changed_session_update_is_a_miss_naming_the_closest_session(proxy_factory: Factory) -> None:
    record_one(proxy_factory)
    replayer = proxy_factory(mode="replay", upstream=CLOSED_PORT_URL)
    with openai_client(replayer.url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn:
        events = text_session(conn, session={**SESSION, "instructions": "be verbose"})
        with pytest.raises(ConnectionClosedError) as closed:
            conn.recv()
    # The prelude (session.created, unless the SDK's first event reached the proxy before
    # it during recording), then the miss.
    assert [e["type"] for e in events] in (["session.created", "error"], ["error"])
    detail = events[-1]["error"]
    assert detail["code"] == "cassette_miss" and detail["param"] == "session.instructions"
    assert "client event 1 (session.update)" in detail["message"]
    assert "Closest recorded session" in detail["message"]
    assert 'session.instructions: "be verbose" != "be brief"' in detail["message"]
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404


def test_unrecorded_model_gets_the_miss_before_any_client_event(proxy_factory: Factory) -> None:
    record_one(proxy_factory)
    replayer = proxy_factory(mode="replay", upstream=CLOSED_PORT_URL)
    with openai_client(replayer.url, OPENAI_KEY).realtime.connect(model="gpt-realtime-mini") as conn:
        event = conn.recv()  # a client that waits for session.created is told at once
        assert event.type == "error"
        assert "no recorded Realtime session for model 'gpt-realtime-mini'" in event.error.message
        assert "'gpt-realtime'" in event.error.message  # what the cassette does have
        with pytest.raises(ConnectionClosedError):
            conn.recv()


def test_upstream_dropping_the_socket_mid_response_is_never_recorded(proxy_factory: Factory, sim: Simulator) -> None:
    proxy = proxy_factory(mode="record")
    sim.realtime.inject({"kind": "drop_mid_response", "after_deltas": 2})
    received: list[str] = []
    with openai_client(proxy.url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn:
        conn.session.update(session=SESSION)
        conn.conversation.item.create(item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]})
        conn.response.create()
        with pytest.raises(ConnectionClosedError) as closed:
            for _ in range(100):
                received.append(conn.recv().type)
    assert received.count("response.output_text.delta") == 2 and "response.done" not in received
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1014  # bad gateway: the upstream broke
    assert session_files(proxy.settings.cassettes_dir) == []
    assert proxy.stats()["recorded"] == 0


def test_a_broken_rerecording_leaves_the_previous_recording_as_it_was(proxy_factory: Factory, sim: Simulator) -> None:
    recorder, _ = record_one(proxy_factory)
    [path] = session_files(recorder.settings.cassettes_dir)
    before = path.read_bytes()
    again = proxy_factory(mode="record")
    sim.realtime.inject({"kind": "close", "code": 1011, "after_deltas": 1})
    with (
        openai_client(again.url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn,
        pytest.raises(ConnectionClosedError) as closed,
    ):
        text_session(conn)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011  # the upstream's own code, passed on
    assert path.read_bytes() == before


def test_azure_deployment_url_through_websocket_base_url(proxy_factory: Factory, sim: Simulator) -> None:
    recorder = proxy_factory(mode="record")
    ws_base = recorder.url.replace("http://", "ws://") + "/openai"

    def azure(url: str) -> openai.AzureOpenAI:
        return openai.AzureOpenAI(
            azure_endpoint=url, api_key=AZURE_KEY, api_version="2025-08-28", websocket_base_url=ws_base, max_retries=0
        )

    with azure(recorder.url).realtime.connect(model="gpt-realtime") as conn:
        live = text_session(conn)
    wait_recorded(recorder, 1)
    handshake = sim.realtime.handshakes[-1]
    assert handshake["path"] == "/openai/realtime"
    assert handshake["query"] == {"api-version": "2025-08-28", "deployment": "gpt-realtime"}
    assert handshake["headers"]["api-key"] == "<redacted>"  # forwarded (the simulator hides its value)
    assert not any(k.startswith("x-seedtape") for k in handshake["headers"])
    [path] = session_files(recorder.settings.cassettes_dir)
    request = load(path)["request"]
    assert (request["api"], request["route"], request["deployment"], request["api_version"]) == (
        "azure",
        "realtime",
        "gpt-realtime",
        "2025-08-28",
    )
    assert request["body"]["query"] == {}

    replayer = proxy_factory(mode="replay", upstream=CLOSED_PORT_URL)
    ws_base = replayer.url.replace("http://", "ws://") + "/openai"
    with azure(replayer.url).realtime.connect(model="gpt-realtime") as conn:
        assert text_session(conn) == live


def test_azure_v1_url(proxy_factory: Factory, sim: Simulator) -> None:
    recorder = proxy_factory(mode="record")
    client = openai.OpenAI(base_url=recorder.url + "/openai/v1", api_key=AZURE_KEY, max_retries=0)
    with client.realtime.connect(model="gpt-realtime") as conn:
        live = text_session(conn)
    wait_recorded(recorder, 1)
    assert sim.realtime.handshakes[-1]["path"] == "/openai/v1/realtime"
    assert sim.realtime.handshakes[-1]["headers"]["authorization"] == "<redacted>"
    request = load(session_files(recorder.settings.cassettes_dir)[0])["request"]
    assert request["api"] == "azure-v1" and request["body"]["query"] == {"model": "gpt-realtime"}

    replayer = proxy_factory(mode="replay", upstream=CLOSED_PORT_URL)
    client = openai.OpenAI(base_url=replayer.url + "/openai/v1", api_key=AZURE_KEY, max_retries=0)
    with client.realtime.connect(model="gpt-realtime") as conn:
        assert text_session(conn) == live


def test_identical_sessions_are_episodes_replayed_in_order(proxy_factory: Factory, sim: Simulator) -> None:
    recorder = proxy_factory(mode="record")
    client = openai_client(recorder.url, OPENAI_KEY)
    with client.realtime.connect(model="gpt-realtime") as conn:
        first = text_session(conn)
    wait_recorded(recorder, 1)
    sim.rotate_fingerprint()  # the backend changes: the same conversation now ends differently
    with client.realtime.connect(model="gpt-realtime") as conn:
        second = text_session(conn)
    wait_recorded(recorder, 2)
    assert delta_text(first) != delta_text(second)
    [path] = session_files(recorder.settings.cassettes_dir)
    assert len(load(path)["episodes"]) == 2

    replayer = proxy_factory(mode="replay", upstream=CLOSED_PORT_URL)
    client = openai_client(replayer.url, OPENAI_KEY)
    texts = []
    for _ in range(3):  # past the last episode, the last repeats (as for HTTP)
        with client.realtime.connect(model="gpt-realtime") as conn:
            texts.append(delta_text(text_session(conn)))
    assert texts == [delta_text(first), delta_text(second), delta_text(second)]


def test_auto_mode_records_a_miss_and_replays_it_in_the_next_run(proxy_factory: Factory, sim: Simulator) -> None:
    auto = proxy_factory(mode="auto")
    with openai_client(auto.url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn:
        live = text_session(conn)
    wait_recorded(auto, 1)
    # Same handshake, another first event: the recorded prelude is sent, the key misses,
    # the upstream is opened then and the session goes on live (and is recorded).
    with openai_client(auto.url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn:
        other = text_session(conn, session={**SESSION, "instructions": "be terse"})
    wait_recorded(auto, 2)
    assert other[-1]["type"] == "response.done"
    assert [e["type"] for e in other][:2] == ["session.created", "session.updated"]
    assert sim.realtime.sessions == 2
    assert len(session_files(auto.settings.cassettes_dir)) == 2

    next_run = proxy_factory(mode="auto")
    with openai_client(next_run.url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn:
        assert text_session(conn) == live
    with openai_client(next_run.url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn:
        again = text_session(conn, session={**SESSION, "instructions": "be terse"})
    assert delta_text(again) == delta_text(other)
    assert sim.realtime.sessions == 2  # both served from the cassette
    assert next_run.stats()["upstream_calls"] == 0


def test_proxy_token_is_required_for_websockets_too(proxy_factory: Factory) -> None:
    proxy = proxy_factory(mode="record", auth_token="rt-token-123")
    with pytest.raises(InvalidStatus) as refused, openai_client(proxy.url, OPENAI_KEY).realtime.connect(model="gpt-realtime"):
        pass
    assert refused.value.response.status_code == 401
    assert b"seedtape_unauthorized" in (refused.value.response.body or b"")
    client = openai_client(proxy.url, OPENAI_KEY, default_headers={"x-seedtape-token": "rt-token-123"})
    with client.realtime.connect(model="gpt-realtime") as conn:
        assert text_session(conn)[-1]["type"] == "response.done"


def test_mode_and_cassette_headers_pick_the_session_mode(proxy_factory: Factory, sim: Simulator) -> None:
    proxy = proxy_factory(mode="replay")
    client = openai_client(proxy.url, OPENAI_KEY)
    headers = {"x-seedtape-mode": "record", "x-seedtape-cassette": "rt/one"}
    with client.realtime.connect(model="gpt-realtime", extra_headers=headers) as conn:
        live = text_session(conn)
    wait_recorded(proxy, 1)
    assert len(session_files(proxy.settings.cassettes_dir, "rt/one")) == 1
    assert "x-seedtape-mode" not in sim.realtime.handshakes[-1]["headers"]
    with client.realtime.connect(model="gpt-realtime", extra_headers={"x-seedtape-cassette": "rt/one"}) as conn:
        assert text_session(conn) == live
    bogus = {"x-seedtape-mode": "bogus"}
    with pytest.raises(InvalidStatus) as refused, client.realtime.connect(model="gpt-realtime", extra_headers=bogus):
        pass
    assert refused.value.response.status_code == 400
    overlong = {"x-seedtape-session": "s" * 1000}  # checked as for HTTP requests (at most 200 characters)
    with pytest.raises(InvalidStatus) as refused, client.realtime.connect(model="gpt-realtime", extra_headers=overlong):
        pass
    assert refused.value.response.status_code == 400
    assert b"invalid_session" in (refused.value.response.body or b"")


def test_upstream_refusal_reaches_the_client_as_the_same_http_answer(proxy_factory: Factory) -> None:
    proxy = proxy_factory(mode="record")
    with pytest.raises(InvalidStatus) as refused:  # no credential at all: the simulator refuses it
        websockets.sync.client.connect(proxy.url.replace("http://", "ws://") + "/v1/realtime?model=gpt-realtime", open_timeout=5)
    assert refused.value.response.status_code == 401
    assert b"Missing credentials" in (refused.value.response.body or b"")
    unreachable = proxy_factory(mode="record", upstream=CLOSED_PORT_URL)
    with pytest.raises(InvalidStatus) as failed, openai_client(unreachable.url, OPENAI_KEY).realtime.connect(model="gpt-realtime"):
        pass
    assert failed.value.response.status_code == 502
