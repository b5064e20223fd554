"""Start uvicorn (seedtape's run_server, as `seedtape serve` does) on one app factory with the settings every HTTP benchmark shares.

    python bench/_serve.py seedtape|bare PORT WORKERS [extra uvicorn options as JSON]

Both seedtape and the bare app go through this one function, so they run on exactly
the same uvicorn settings (loop, http parser, logging, workers).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

try:
    from seedtape.serving import run_server
except ImportError:  # a seedtape from before run_server (to measure an older version)
    from uvicorn import run as run_server

sys.path.insert(0, str(Path(__file__).resolve().parent))

APPS = {"seedtape": "seedtape.commands.serve:app_from_env", "bare": "_apps:bare_app", "forward": "_apps:forward_app"}

if __name__ == "__main__":
    name, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    extra = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    options = {"log_level": "warning", **extra}
    run_server(APPS[name], factory=True, host="127.0.0.1", port=port, workers=workers, **options)
