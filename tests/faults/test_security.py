"""Security: where the proxy listens, who may use it, and whose recordings a caller gets."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from click.testing import Result

from client_shim import azure_client, openai_client
from seedtape import security
from seedtape.config import Settings
from seedtape.sim.simulator import Simulator
from tests.conftest import AZURE_KEY, OPENAI_KEY, RunningProxy
from tests.faults._helpers import PANDA, assert_openai_error, cassette_files, closed_port_url

TOKEN = "seedtape-proxy-token-3f9a1c77e2b84d0d"
CHAT = "/v1/chat/completions"


# --------------------------------------------------------------------------- where it listens


def test_binds_loopback_by_default(serve_cli: Callable[..., tuple[Result, dict[str, Any] | None]]) -> None:
    result, listened = serve_cli()
    assert result.exit_code == 0 and listened is not None
    assert listened["host"] == "127.0.0.1"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.1.2.3", "8.8.8.8", "[::]"])
def test_refuses_a_non_loopback_host_without_a_token(host: str, serve_cli: Callable[..., tuple[Result, dict[str, Any] | None]]) -> None:
    result, listened = serve_cli("--host", host)
    assert result.exit_code == 2 and listened is None
    assert "refusing to listen" in result.output and "--auth-token" in result.output


@pytest.mark.parametrize("host", ["127.0.0.1", "127.9.8.7", "::1", "[::1]", "localhost"])
def test_loopback_hosts_need_nothing(host: str, serve_cli: Callable[..., tuple[Result, dict[str, Any] | None]]) -> None:
    result, listened = serve_cli("--host", host)
    assert result.exit_code == 0 and listened is not None and listened["host"] == host


def test_a_token_allows_a_wider_host_and_only_its_hash_reaches_the_workers(
    serve_cli: Callable[..., tuple[Result, dict[str, Any] | None]],
) -> None:
    result, listened = serve_cli("--host", "0.0.0.0", "--auth-token", TOKEN, "--workers", "2")
    assert result.exit_code == 0 and listened is not None and listened["host"] == "0.0.0.0"
    assert listened["settings"]["auth_token_sha256"] == security.token_digest(TOKEN)
    assert TOKEN not in json.dumps(listened["settings"]) and TOKEN not in result.output


def test_insecure_allows_it_and_says_so(serve_cli: Callable[..., tuple[Result, dict[str, Any] | None]]) -> None:
    result, listened = serve_cli("--host", "0.0.0.0", "--insecure")
    assert result.exit_code == 0 and listened is not None and listened["host"] == "0.0.0.0"
    assert "without --auth-token" in result.output


def test_settings_never_hold_the_token_in_clear() -> None:
    settings = Settings(upstream="sim", auth_token=TOKEN)
    assert settings.auth_token == "" and settings.auth_token_sha256 == security.token_digest(TOKEN)
    assert TOKEN not in repr(settings) and TOKEN not in settings.to_env()
    assert Settings.from_env(settings.to_env()).auth_token_sha256 == settings.auth_token_sha256


# --------------------------------------------------------------------------- the token


def test_token_is_required_checked_and_never_forwarded(proxy_factory: Callable[..., RunningProxy], echo_sim: Simulator) -> None:
    seen = echo_sim.received
    proxy = proxy_factory(mode="auto", auth_token=TOKEN)
    body = {"model": "m", "messages": PANDA, "seed": 1}
    auth = {"authorization": f"Bearer {OPENAI_KEY}"}

    for presented in (None, "", "wrong", TOKEN[:-1], TOKEN + "x", TOKEN.upper()):
        headers = dict(auth) if presented is None else {**auth, security.TOKEN_HEADER: presented}
        error = assert_openai_error(httpx.post(proxy.url + CHAT, json=body, headers=headers), 401, "seedtape_unauthorized")
        assert TOKEN not in error["message"]
    assert seen == [], "nothing reached upstream"
    with pytest.raises(openai.AuthenticationError):
        openai_client(proxy.url, api_key=OPENAI_KEY, max_retries=2).chat.completions.create(**body)
    assert seen == []

    client = openai_client(proxy.url, api_key=OPENAI_KEY, default_headers={security.TOKEN_HEADER: TOKEN})
    assert client.chat.completions.create(**body).choices[0].message.content
    models = httpx.get(proxy.url + "/v1/models", headers={**auth, security.TOKEN_HEADER: TOKEN})
    assert models.status_code == 200 and models.json()["object"] == "list"  # forwarded: the simulator's answer
    assert_openai_error(httpx.get(proxy.url + "/v1/models", headers=auth), 401)
    assert [s.path for s in seen] == ["/v1/chat/completions", "/v1/models"]
    for request in seen:
        assert security.TOKEN_HEADER not in request.headers, "stripped like every x-seedtape-* header"
        assert request.headers["authorization"] == f"Bearer {OPENAI_KEY}", "the credential still goes upstream"

    assert httpx.get(proxy.url + "/_seedtape/health").status_code == 200, "readiness probes need no token"
    assert_openai_error(httpx.get(proxy.url + "/_seedtape/stats"), 401)
    assert httpx.get(proxy.url + "/_seedtape/stats", headers={security.TOKEN_HEADER: TOKEN}).status_code == 200


def test_token_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """hmac.compare_digest over fixed-length digests: the time depends on neither the
    presented token's content nor its length."""
    compared: list[tuple[str, str]] = []
    real = security.hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    expected = security.token_digest(TOKEN)
    assert security.token_matches(TOKEN, expected)
    assert not security.token_matches("x", expected)
    assert not security.token_matches("y" * 10_000, expected)
    assert not security.token_matches(None, expected)
    assert len(compared) == 3 and all(len(a) == len(b) == 64 for a, b in compared)


# --------------------------------------------------------------------------- partition by credential


def test_partition_by_credential_keeps_callers_apart(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    other_key = "azkey-someone-else-fedcba9876543210fedcba98"
    params = {"model": "gpt-4", "messages": PANDA, "seed": 42, "temperature": 0.1}
    shared = proxy_factory(mode="auto")  # without the option, B is served what A recorded
    azure_client(shared.url, api_key=AZURE_KEY).chat.completions.create(**params)
    raw = azure_client(shared.url, api_key=other_key).chat.completions.with_raw_response.create(**params)
    assert raw.headers["x-seedtape-cache"] == "hit"

    cassettes = shared.settings.cassettes_dir.parent / "partitioned"
    proxy = proxy_factory(mode="auto", partition_by_credential=True, cassettes_dir=cassettes)
    calls = sim.calls
    a = azure_client(proxy.url, api_key=AZURE_KEY).chat.completions.with_raw_response.create(**params)
    b = azure_client(proxy.url, api_key=other_key).chat.completions.with_raw_response.create(**params)
    assert [a.headers["x-seedtape-cache"], b.headers["x-seedtape-cache"]] == ["recorded", "recorded"]
    assert a.headers["x-seedtape-key"] != b.headers["x-seedtape-key"] and sim.calls == calls + 2

    replay = proxy_factory(mode="replay", upstream=closed_port_url(), partition_by_credential=True, cassettes_dir=cassettes)
    for key, recorded in ((AZURE_KEY, a), (other_key, b)):
        again = azure_client(replay.url, api_key=key, max_retries=0).chat.completions.with_raw_response.create(**params)
        assert (again.headers["x-seedtape-cache"], again.headers["x-seedtape-key"]) == ("hit", recorded.headers["x-seedtape-key"])
    with pytest.raises(openai.NotFoundError):
        azure_client(replay.url, api_key="azkey-a-third-caller-000000000000", max_retries=0).chat.completions.create(**params)
    anonymous = httpx.post(replay.url + "/openai/deployments/gpt-4/chat/completions?api-version=2024-02-01", json=params)
    assert_openai_error(anonymous, 404, "seedtape_cassette_miss")

    written = b"".join(p.read_bytes() for p in cassettes.rglob("*") if p.is_file())
    assert len(cassette_files(cassettes)) == 2
    for credential in (AZURE_KEY, other_key):
        assert credential.encode() not in written
        assert security_partition(credential).encode() not in written, "not even the salted hash is stored"


def security_partition(credential: str) -> str:
    import hashlib

    return hashlib.sha256(("seedtape-partition/1\0" + credential).encode()).hexdigest()[:32]


def test_serve_settings_come_from_seedtape_variables_and_azure_endpoint(
    serve_cli: Callable[..., tuple[Result, dict[str, Any] | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEEDTAPE_MODE", "replay")
    monkeypatch.setenv("SEEDTAPE_CASSETTE", "suite/alpha")
    monkeypatch.setenv("SEEDTAPE_PORT", "9911")
    result, listened = serve_cli()
    assert result.exit_code == 0 and listened is not None
    assert (listened["port"], listened["settings"]["mode"], listened["settings"]["cassette"]) == (9911, "replay", "suite/alpha")


def test_upstream_defaults_to_the_azure_endpoint_then_openai(
    serve_cli: Callable[..., tuple[Result, dict[str, Any] | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://my-resource.openai.azure.com")
    assert serve_cli(upstream=None)[1]["settings"]["upstream"] == "https://my-resource.openai.azure.com"  # type: ignore[index]
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT")
    assert serve_cli(upstream=None)[1]["settings"]["upstream"] == "https://api.openai.com"  # type: ignore[index]
