"""What a user's code imports to talk to seedtape: clients, in-process replay, env."""

from .clients import (
    async_azure_client,
    async_openai_client,
    azure_client,
    http_stack,
    openai_client,
    proxy_headers,
)
from .env import seedtape_env
from .inprocess import InProcessProxy

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
