"""Real ``openai`` clients pointed at a running seedtape proxy."""

from __future__ import annotations

from typing import Any

import openai

DUMMY_KEY = "seedtape-dummy-key"
DEFAULT_PROXY = "http://127.0.0.1:8787"
DEFAULT_API_VERSION = "2024-02-01"


def proxy_headers(cassette: str | None = None, mode: str | None = None, session: str | None = None) -> dict[str, str]:
    """The ``x-seedtape-*`` request headers that pick a cassette, a mode and a session."""
    headers = {}
    if cassette:
        headers["x-seedtape-cassette"] = cassette
    if mode:
        headers["x-seedtape-mode"] = mode
    if session:
        headers["x-seedtape-session"] = session
    return headers


def _merge_headers(kwargs: dict[str, Any], cassette: str | None, mode: str | None, session: str | None) -> dict[str, Any]:
    headers = {**proxy_headers(cassette, mode, session), **(kwargs.pop("default_headers", None) or {})}
    return {"default_headers": headers, **kwargs} if headers else kwargs


def openai_client(
    proxy: str = DEFAULT_PROXY,
    *,
    cassette: str | None = None,
    mode: str | None = None,
    session: str | None = None,
    api_key: str = DUMMY_KEY,
    **kwargs: Any,
) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.rstrip("/") + "/v1", api_key=api_key, **_merge_headers(kwargs, cassette, mode, session))


def async_openai_client(
    proxy: str = DEFAULT_PROXY,
    *,
    cassette: str | None = None,
    mode: str | None = None,
    session: str | None = None,
    api_key: str = DUMMY_KEY,
    **kwargs: Any,
) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.rstrip("/") + "/v1", api_key=api_key, **_merge_headers(kwargs, cassette, mode, session))


def azure_client(
    proxy: str = DEFAULT_PROXY,
    *,
    api_version: str = DEFAULT_API_VERSION,
    cassette: str | None = None,
    mode: str | None = None,
    session: str | None = None,
    api_key: str = DUMMY_KEY,
    **kwargs: Any,
) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        azure_endpoint=proxy.rstrip("/"), api_version=api_version, api_key=api_key, **_merge_headers(kwargs, cassette, mode, session)
    )


def async_azure_client(
    proxy: str = DEFAULT_PROXY,
    *,
    api_version: str = DEFAULT_API_VERSION,
    cassette: str | None = None,
    mode: str | None = None,
    session: str | None = None,
    api_key: str = DUMMY_KEY,
    **kwargs: Any,
) -> openai.AsyncAzureOpenAI:
    return openai.AsyncAzureOpenAI(
        azure_endpoint=proxy.rstrip("/"), api_version=api_version, api_key=api_key, **_merge_headers(kwargs, cassette, mode, session)
    )


def http_stack(client: Any) -> str:
    """Which HTTP package a client sends through: ``"httpx2"`` or ``"httpx"``.

    Takes an ``openai`` client or an HTTP client. The SDK's default HTTP client is a
    subclass defined in ``openai._base_client``, so the answer comes from the first
    class in the MRO that belongs to one of the two packages, not from the type's
    own module.
    """
    inner = getattr(client, "_client", client)
    for cls in type(inner).__mro__:
        package = cls.__module__.split(".")[0]
        if package in ("httpx2", "httpx"):
            return package
    raise TypeError(f"{type(inner).__qualname__} is neither an httpx2 nor an httpx client")
