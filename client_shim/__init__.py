"""What a user's code imports to talk to seedtape: clients, in-process replay, env.

The code lives in the ``seedtape`` package (``seedtape.client``); this package is
the import name the product's design promises, re-exporting the public names, plus
the pytest plugin (``client_shim.pytest_plugin``). It uses only ``seedtape``'s
public face.
"""

from seedtape import (
    InProcessProxy,
    async_azure_client,
    async_openai_client,
    azure_client,
    http_stack,
    openai_client,
    proxy_headers,
    seedtape_env,
)

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
