"""Point code that builds its own client (LangChain, LiteLLM, ...) at seedtape."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from .clients import DEFAULT_PROXY

VARIABLES = ("OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT")


@contextmanager
def seedtape_env(proxy: str = DEFAULT_PROXY, *, api_key: str | None = None) -> Iterator[dict[str, str]]:
    """Set ``OPENAI_BASE_URL`` and ``AZURE_OPENAI_ENDPOINT`` to the proxy; restore on exit.

    ``api_key`` also sets ``OPENAI_API_KEY``/``AZURE_OPENAI_API_KEY`` (handy in replay,
    where any key will do).
    """
    base = proxy.rstrip("/")
    values = {"OPENAI_BASE_URL": base + "/v1", "AZURE_OPENAI_ENDPOINT": base}
    if api_key is not None:
        values |= {"OPENAI_API_KEY": api_key, "AZURE_OPENAI_API_KEY": api_key}
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
