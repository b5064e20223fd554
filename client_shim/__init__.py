"""What a user's code imports to talk to seedtape: clients, in-process replay, env.

The code lives in the ``seedtape`` package (``seedtape.client``); this package is
the import name the product's design promises, re-exporting the public names, plus
the pytest plugin (``client_shim.pytest_plugin``). It uses only ``seedtape``'s
public face, and loads a name on first use: the pytest plugin lives in this package,
so importing it must not load the proxy into every test run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import seedtape

__all__ = [
    "InProcessProxy",
    "async_azure_client",
    "async_openai_client",
    "azure_client",
    "http_stack",
    "openai_client",
    "proxy_headers",
    "seedtape_env",
]

if TYPE_CHECKING:
    from seedtape import InProcessProxy as InProcessProxy
    from seedtape import async_azure_client as async_azure_client
    from seedtape import async_openai_client as async_openai_client
    from seedtape import azure_client as azure_client
    from seedtape import http_stack as http_stack
    from seedtape import openai_client as openai_client
    from seedtape import proxy_headers as proxy_headers
    from seedtape import seedtape_env as seedtape_env


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'client_shim' has no attribute {name!r}")
    value = getattr(seedtape, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
