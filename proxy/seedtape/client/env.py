"""Point code that builds its own client (LangChain, LiteLLM, pydantic-ai, ...) at seedtape.

Libraries read different variables for the same thing, so the helper sets every
spelling in common use: the ``openai`` SDK reads ``OPENAI_BASE_URL`` and
``AZURE_OPENAI_ENDPOINT``; LangChain's ``ChatOpenAI`` reads ``OPENAI_API_BASE``
before falling back to the SDK; LiteLLM's Azure route reads ``AZURE_API_BASE``.
A stale value of any of them left in the shell would silently bypass the proxy.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from seedtape.client.clients import DEFAULT_PROXY

KEY_VARIABLES = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_API_KEY")
VERSION_VARIABLES = ("OPENAI_API_VERSION", "AZURE_API_VERSION")


def env_values(proxy: str = DEFAULT_PROXY, *, api_key: str | None = None, api_version: str | None = None) -> dict[str, str]:
    """The variables :func:`seedtape_env` sets (for a subprocess's ``env=``, say)."""
    base = proxy.rstrip("/")
    values = {"OPENAI_BASE_URL": base + "/v1", "OPENAI_API_BASE": base + "/v1", "AZURE_OPENAI_ENDPOINT": base, "AZURE_API_BASE": base}
    if api_key is not None:
        values |= dict.fromkeys(KEY_VARIABLES, api_key)
    if api_version is not None:
        values |= dict.fromkeys(VERSION_VARIABLES, api_version)
    return values


@contextmanager
def seedtape_env(proxy: str = DEFAULT_PROXY, *, api_key: str | None = None, api_version: str | None = None) -> Iterator[dict[str, str]]:
    """Set the base-URL variables to the proxy for the block; restore them on exit.

    ``api_key`` also sets ``OPENAI_API_KEY``/``AZURE_OPENAI_API_KEY``/``AZURE_API_KEY``
    (handy in replay, where any key will do); ``api_version`` sets
    ``OPENAI_API_VERSION``/``AZURE_API_VERSION``, which ``AzureOpenAI`` needs when the
    code does not pass one. The proxy must be a running one (``seedtape serve``):
    code that builds its own client opens a real connection.
    """
    values = env_values(proxy, api_key=api_key, api_version=api_version)
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield values
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
