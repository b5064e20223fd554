"""bench/redis_store.py runs end to end at tiny sizes (no timing asserted, like test_bench_smoke)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.teams._redis import redis_server_binary

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.slow
def test_redis_store_bench_runs() -> None:
    redis_server_binary()  # skip (or fail under CI) without redis-server
    out = subprocess.run([sys.executable, str(BENCH / "redis_store.py"), "--quick"], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    for expect in ("store hit", "fleet single-flight", "MEMORY USAGE"):
        assert expect in out.stdout, out.stdout[-3000:]
