"""Shared pytest configuration for the seedtape suite."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio through anyio's plugin (the SDK and the proxy use anyio)."""
    return "asyncio"
