"""Teams options and the small pure parts: URL checks and masking, key names, merging."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from seedtape.cassette import Recording
from seedtape.cli import main
from seedtape.commands.serve import SETTINGS_ENV
from seedtape.config import Settings
from seedtape.teams import codec
from seedtape.teams.keys import Keys
from seedtape.teams.url import check_namespace, check_store_url, masked


def test_masked_urls_never_show_the_password() -> None:
    assert masked("redis://user:pa55:word@host:6380/2") == "redis://user:***@host:6380/2"
    assert masked("rediss://:secret@[::1]:6379/0") == "rediss://:***@[::1]:6379/0"
    assert masked("redis://host:6379/0") == "redis://host:6379/0"
    with pytest.raises(ValueError, match="expected redis://") as error:
        check_store_url("http://:secret@host")
    assert "secret" not in str(error.value)
    with pytest.raises(ValueError, match="not a URL"):
        check_store_url("redis://:secret@host:notaport")
    assert check_store_url("rediss://host:6380/1")


@pytest.mark.parametrize("name", ["", "a:b", "team a", "x" * 65, "a*", "../x"])
def test_namespaces_are_plain_names(name: str) -> None:
    with pytest.raises(ValueError):
        check_namespace(name)
    with pytest.raises(ValueError):
        Settings(store="redis://127.0.0.1:6379/0", namespace=name)


def test_key_names_mirror_the_cassette_folder_and_hash_what_clients_send() -> None:
    keys = Keys("team-a")
    key = "ab" * 32
    assert keys.recording("module/test[1]", key) == "seedtape:team-a:rec:module/test[1]/abababababababab.json"
    assert keys.parse_recording(keys.recording("module/test[1]", key)) == ("module/test[1]", "abababababababab.json")
    assert keys.recordings_pattern("module/test[1]") == r"seedtape:team-a:rec:module/test\[1\]/*"
    assert keys.parse_recording("seedtape:team-b:rec:default/abababababababab.json") is None
    session = "a session: with separators\nand newlines"
    assert keys.occurrences(session, "c", key).startswith("seedtape:team-a:occ:") and "\n" not in keys.occurrences(session, "c", key)


def test_merge_keeps_local_episodes_and_adds_only_the_teams_later_ones() -> None:
    local = Recording("k", {"body": {}}, [{"status": 200, "n": "local-1"}])
    shared = Recording("k", {"body": {}}, [{"status": 200, "n": "team-1"}, {"status": 200, "n": "team-2"}])
    merged = codec.merge(local, shared)
    assert merged is not None and [e["n"] for e in merged.episodes] == ["local-1", "team-2"]
    assert codec.merge(shared, local) is shared, "nothing past the end: unchanged"
    assert codec.merge(None, shared) is shared and codec.merge(local, None) is local
    assert codec.merge(local, Recording("other", {}, shared.episodes)) is local, "another key is ignored"
    assert codec.decode(codec.encode(shared.dumps())) == shared.dumps()


def test_serve_takes_the_store_options_and_prints_the_url_masked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(SETTINGS_ENV, "")
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("seedtape.commands.serve.run_server", lambda app, **options: calls.append(json.loads(os.environ[SETTINGS_ENV])))
    args = ["serve", "--upstream", "sim", "--store", "redis://u:topsecret@127.0.0.1:6390/3", "--namespace", "ci"]
    result = CliRunner().invoke(main, [*args, "--store-ttl", "7", "--store-required", "--store-timeout", "0.2"])
    assert result.exit_code == 0, result.output
    assert "shared store redis://u:***@127.0.0.1:6390/3 namespace ci" in result.output and "topsecret" not in result.output
    [settings] = calls
    assert (settings["namespace"], settings["store_ttl_days"], settings["store_required"], settings["store_timeout"]) == (
        "ci",
        7.0,
        True,
        0.2,
    )
    assert "topsecret" not in repr(Settings.from_env(json.dumps(settings)))
    bad = CliRunner().invoke(main, ["serve", "--upstream", "sim", "--store", "memcached://x"])
    assert bad.exit_code == 2 and "expected redis://" in bad.output
    from_env = CliRunner().invoke(
        main, ["serve", "--upstream", "sim"], env={"SEEDTAPE_STORE": "redis://127.0.0.1:6391/0", "SEEDTAPE_NAMESPACE": "env-ns"}
    )
    assert from_env.exit_code == 0 and calls[-1]["store"] == "redis://127.0.0.1:6391/0" and calls[-1]["namespace"] == "env-ns"


def test_the_in_process_proxy_refuses_a_store_clearly() -> None:
    from seedtape.client.inprocess import InProcessProxy

    with pytest.raises(ValueError, match="seedtape serve"):
        InProcessProxy(store="redis://127.0.0.1:6379/0")
