"""The public face: ``seedtape.__all__`` pinned (as httpx pins its own), light to import.

Adding or removing a public name is a decision: it changes this list on purpose.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import client_shim
import seedtape

# In the order of the literal __all__ (ruff's RUF022 sort: constants, classes, the rest).
EXPECTED_ALL = [
    "DUMMY_KEY",
    "MISS_TYPES",
    "MODES",
    "MODE_NAMES",
    "CassetteError",
    "InProcessProxy",
    "InvalidCassetteName",
    "Miss",
    "ProxyError",
    "Settings",
    "Unused",
    "__version__",
    "async_azure_client",
    "async_openai_client",
    "azure_client",
    "create_app",
    "default_upstream",
    "find_unused",
    "http_stack",
    "openai_client",
    "proxy_headers",
    "seedtape_env",
    "validate_cassette_name",
    "write_unused_report",
]


def test_exported_names_are_pinned() -> None:
    assert seedtape.__all__ == EXPECTED_ALL
    assert dir(seedtape) == sorted(EXPECTED_ALL)


def test_every_exported_name_resolves() -> None:
    unresolved = [name for name in seedtape.__all__ if getattr(seedtape, name, None) is None]
    assert not unresolved


def test_an_unexported_name_is_an_attribute_error() -> None:
    assert not hasattr(seedtape, "Engine")


def test_the_version_has_one_source() -> None:
    assert seedtape.__version__ == version("seedtape")


def test_import_seedtape_stays_light() -> None:
    """The pytest plugin imports seedtape in every test run: no web stack, SDK or app until asked."""
    heavy = ("starlette", "httpx", "openai", "seedtape.app")
    script = f"import sys, seedtape; print(' '.join(m for m in sys.modules if m.split('.')[0] in {heavy!r} or m in {heavy!r}))"
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert not loaded, f"`import seedtape` loaded {loaded}"


def test_client_shim_re_exports_seedtapes_objects() -> None:
    assert set(client_shim.__all__) <= set(seedtape.__all__)
    different = [name for name in client_shim.__all__ if getattr(client_shim, name) is not getattr(seedtape, name)]
    assert not different
