"""No credential in Redis: run every route through every mode (shared session, drift,
an error answer) against a password-protected Redis, then read back every key and
every value Redis holds -- recordings decompressed -- and scan them. Zero hits; and the
Redis password itself appears in no log, banner, stats answer or file."""

from __future__ import annotations

import contextlib
import json
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import AZURE_KEY, OPENAI_KEY
from tests.faults._helpers import PANDA, scan_bytes, secret_variants, serving
from tests.faults.test_credential_scan import MODES, SECRETS, TOKEN, clients, every_route
from tests.teams._redis import RedisServer, redis_server_binary

REDIS_PASSWORD = "redis-pw-SECRET-9f8e7d6c5b4a3210"


@pytest.fixture
def locked_redis(tmp_path: Path) -> Iterator[RedisServer]:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(redis_server_binary(), folder, password=REDIS_PASSWORD)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def everything_in(server: RedisServer) -> tuple[bytes, Counter[str]]:
    """Every key name and every value, as bytes (recordings decompressed too), and key kinds."""
    client = server.client()
    chunks: list[bytes] = []
    kinds: Counter[str] = Counter()
    for name in client.scan_iter(count=1000):
        kinds[name.decode().split(":")[2]] += 1
        chunks.append(name)
        kind = client.type(name).decode()
        if kind == "string":
            value = client.get(name)
            chunks.append(value)
            with contextlib.suppress(zlib.error):
                chunks.append(zlib.decompress(value))
        elif kind == "hash":
            chunks += [b for pair in client.hgetall(name).items() for b in pair]
        elif kind == "set":
            chunks += list(client.smembers(name))
        elif kind == "zset":
            chunks += [member for member, _ in client.zrange(name, 0, -1, withscores=True)]
        elif kind == "stream":
            chunks += [b for _, fields in client.xrange(name) for pair in fields.items() for b in pair]
        else:
            raise AssertionError(f"unexpected Redis type {kind} for {name!r}")
    return b"\n".join(chunks), kinds


@pytest.mark.slow
def test_every_mode_through_the_store_leaves_no_credential_in_redis(
    tmp_path: Path, locked_redis: RedisServer, sim: Any, sim_url: str
) -> None:
    args = ["--upstream", sim_url, "--store", locked_redis.url, "--namespace", "scan", "--auth-token", TOKEN]
    args += ["--partition-by-credential", "--record-errors", "--log-level", "debug", "--access-log"]
    logs = tmp_path / "logs"
    with serving(
        [*args, "--cassettes", str(tmp_path / "cassettes")], tmp_path, logs / "serve.log", headers={"x-seedtape-token": TOKEN}
    ) as server:
        for mode in MODES:
            for client in clients(server.url, mode).values():
                for call in every_route(client):
                    call()
            sim.rotate_fingerprint()  # so verify logs drift to the team's stream
        shared = openai.OpenAI(
            base_url=server.url + "/v1",
            api_key=OPENAI_KEY,
            max_retries=0,
            default_headers={"x-seedtape-token": TOKEN, "x-seedtape-session": "shared-scan", "cookie": f"session={AZURE_KEY}"},
        )
        for _ in range(3):
            shared.chat.completions.create(model="gpt-4", messages=PANDA, temperature=0.9)
        sim.inject({"status": 429, "retry_after": 1})
        with pytest.raises(openai.RateLimitError):
            clients(server.url, "record")["openai"].chat.completions.create(model="gpt-4", messages=PANDA, seed=99)
        stats = httpx.get(server.url + "/_seedtape/stats", headers={"x-seedtape-token": TOKEN}).text
        fleet = httpx.get(server.url + "/_seedtape/stats?scope=fleet", headers={"x-seedtape-token": TOKEN}).text
        assert json.loads(stats)["store"]["writes"] >= 15

    blob, kinds = everything_in(locked_redis)
    # The scan saw every kind of key seedtape writes.
    assert {"rec", "occ", "claim", "stats", "proxies", "drift"} <= set(kinds), kinds
    assert kinds["rec"] >= 15
    found = [secret[:8] for secret in (*SECRETS, REDIS_PASSWORD) for variant in secret_variants(secret) if variant in blob]
    assert found == [], found
    print(f"\nscanned {sum(kinds.values())} Redis keys ({dict(kinds)}), {len(blob)} bytes: 0 credentials")

    # The Redis password: never in the log (banner included), the stats, or any file.
    log = (logs / "serve.log").read_text()
    assert f"redis://:***@127.0.0.1:{locked_redis.port}/0" in log, "the banner names the store, masked"
    for text in (log, stats, fleet):
        assert REDIS_PASSWORD not in text
    hits, files, _ = scan_bytes(tmp_path, (*SECRETS, REDIS_PASSWORD))
    assert files > 15 and hits == [], hits

    # The scan would have seen one: a credential inside a compressed recording value.
    locked_redis.client().set("seedtape:scan:rec:control/0123456789abcdef.json", zlib.compress(AZURE_KEY.encode()))
    assert AZURE_KEY.encode() in everything_in(locked_redis)[0]


def test_the_password_can_come_from_the_environment(
    locked_redis: RedisServer, proxy_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A URL without a password (nothing secret in argv or `ps`) and SEEDTAPE_STORE_PASSWORD."""
    url = f"redis://127.0.0.1:{locked_redis.port}/0"
    monkeypatch.setenv("SEEDTAPE_STORE_PASSWORD", REDIS_PASSWORD)
    proxy = proxy_factory(store=url, cassettes_dir=tmp_path / "c")
    answer = httpx.post(
        proxy.url + "/v1/chat/completions",
        json={"model": "gpt-4", "seed": 1, "messages": PANDA},
        headers={"authorization": f"Bearer {OPENAI_KEY}"},
    )
    assert answer.headers["x-seedtape-cache"] == "recorded"
    store = proxy.stats()["store"]
    assert (store["state"], store["writes"]) == ("ok", 1)
    assert len(locked_redis.client().keys("seedtape:default:rec:*")) == 1
