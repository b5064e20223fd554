"""Each benchmark script runs end to end at tiny sizes (``--quick``).

No timing is asserted here (the machine is shared and noisy): only that the scripts
work and print their table. The HTTP benchmark uses its Python load generator so the
test never installs wrk; the vcrpy arm is skipped when vcrpy is not installed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"

pytestmark = pytest.mark.slow  # a subprocess per script, each a few seconds


@pytest.mark.parametrize(
    ("script", "extra", "expect"),
    [
        ("http_replay.py", ["--loadgen", "python"], "throughput, 16 conns"),
        ("inprocess.py", [], "seedtape, repeat"),
        ("record.py", ["--concurrency", "4"], "throughput: 4 clients at once"),
        ("streaming.py", [], "time to first event"),
        ("record_stream.py", [], "server CPU per event"),
        ("realtime.py", [], "time to first server event"),
        ("scale.py", [], "lookup p50"),
    ],
)
def test_bench_script_runs(script: str, extra: list[str], expect: str) -> None:
    out = subprocess.run([sys.executable, str(BENCH / script), "--quick", *extra], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert expect in out.stdout, out.stdout[-3000:]
