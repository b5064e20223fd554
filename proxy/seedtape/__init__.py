"""seedtape: a record-and-replay cache proxy for OpenAI and Azure OpenAI.

The public face: everything a user's code, the pytest plugin and ``client_shim``
need is importable from here, and nothing else is promised (``__all__``). Names are
loaded on first use, so ``import seedtape`` (and the pytest plugin, which every test
run of an environment loads) stays cheap; the proxy app, the SDK and the simulator
are imported only when asked for.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from seedtape._version import __version__

# public name -> (module, attribute)
_EXPORTS: dict[str, tuple[str, str]] = {
    # running a proxy
    "Settings": ("seedtape.config", "Settings"),
    "default_upstream": ("seedtape.config", "default_upstream"),
    "create_app": ("seedtape.app", "create_app"),
    "MODES": ("seedtape.modes", "MODES"),
    "MODE_NAMES": ("seedtape.modes", "MODE_NAMES"),
    # in the user's process
    "InProcessProxy": ("seedtape.client.inprocess", "InProcessProxy"),
    "seedtape_env": ("seedtape.client.env", "seedtape_env"),
    "openai_client": ("seedtape.client.clients", "openai_client"),
    "async_openai_client": ("seedtape.client.clients", "async_openai_client"),
    "azure_client": ("seedtape.client.clients", "azure_client"),
    "async_azure_client": ("seedtape.client.clients", "async_azure_client"),
    "proxy_headers": ("seedtape.client.clients", "proxy_headers"),
    "http_stack": ("seedtape.client.clients", "http_stack"),
    "DUMMY_KEY": ("seedtape.client.clients", "DUMMY_KEY"),
    # errors
    "ProxyError": ("seedtape.errors", "ProxyError"),
    "CassetteError": ("seedtape.cassette", "CassetteError"),
    "InvalidCassetteName": ("seedtape.cassette", "InvalidCassetteName"),
    "validate_cassette_name": ("seedtape.cassette", "validate_name"),
    # what the pytest plugin reports: replay misses, unused recordings
    "Miss": ("seedtape.client.misses", "Miss"),
    "MISS_TYPES": ("seedtape.client.misses", "MISS_TYPES"),
    "Unused": ("seedtape.commands.prune", "Unused"),
    "find_unused": ("seedtape.commands.prune", "find_unused"),
    "write_unused_report": ("seedtape.commands.prune", "write_report"),
}

__all__ = [
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

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads these
    from seedtape.app import create_app as create_app
    from seedtape.cassette import CassetteError as CassetteError
    from seedtape.cassette import InvalidCassetteName as InvalidCassetteName
    from seedtape.cassette import validate_name as validate_cassette_name
    from seedtape.client.clients import (
        DUMMY_KEY as DUMMY_KEY,
    )
    from seedtape.client.clients import (
        async_azure_client as async_azure_client,
    )
    from seedtape.client.clients import (
        async_openai_client as async_openai_client,
    )
    from seedtape.client.clients import (
        azure_client as azure_client,
    )
    from seedtape.client.clients import (
        http_stack as http_stack,
    )
    from seedtape.client.clients import (
        openai_client as openai_client,
    )
    from seedtape.client.clients import (
        proxy_headers as proxy_headers,
    )
    from seedtape.client.env import seedtape_env as seedtape_env
    from seedtape.client.inprocess import InProcessProxy as InProcessProxy
    from seedtape.client.misses import MISS_TYPES as MISS_TYPES
    from seedtape.client.misses import Miss as Miss
    from seedtape.commands.prune import Unused as Unused
    from seedtape.commands.prune import find_unused as find_unused
    from seedtape.commands.prune import write_report as write_unused_report
    from seedtape.config import Settings as Settings
    from seedtape.config import default_upstream as default_upstream
    from seedtape.errors import ProxyError as ProxyError
    from seedtape.modes import MODE_NAMES as MODE_NAMES
    from seedtape.modes import MODES as MODES


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'seedtape' has no attribute {name!r}") from None
    value = getattr(import_module(module), attribute)
    globals()[name] = value  # the next lookup is a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
