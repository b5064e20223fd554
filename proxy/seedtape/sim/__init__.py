"""The built-in upstream simulator: an Azure- and OpenAI-shaped service with no network.

It honours ``seed``, sets ``system_fingerprint`` and Azure's filter results, can
rotate its fingerprint and inject faults, so the demo, the probe and the tests run
offline. The request path never imports it: whoever builds a proxy for ``--upstream
sim`` (the serve command, the in-process proxy, the demo, the probe) passes
:func:`transport_for` as the upstream transport.
"""

from __future__ import annotations

import httpx

from seedtape.config import SIM_UPSTREAM
from seedtape.sim.simulator import Received, SimConfig, Simulator, create_simulator, run_simulator

__all__ = ["Received", "SimConfig", "Simulator", "create_simulator", "run_simulator", "transport", "transport_for"]


def transport(config: SimConfig | None = None) -> httpx.AsyncBaseTransport:
    """An upstream transport answered by a fresh simulator, in process."""
    return httpx.ASGITransport(app=create_simulator(config).app)


def transport_for(upstream: str) -> httpx.AsyncBaseTransport | None:
    """The simulator's transport for ``upstream == "sim"``; None (the network) otherwise."""
    return transport() if upstream == SIM_UPSTREAM else None
