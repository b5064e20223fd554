"""The architecture, read from the source: import circles, the request path, the public face.

Every module under ``proxy/seedtape`` and ``client_shim`` is parsed with ``ast`` and
each import becomes an edge of the module graph: imports at any level (inside
functions too) and under ``if TYPE_CHECKING:``, since a circle a type checker walks is
still a circle a reader walks. ``from P import n`` is an edge to the module ``P.n``
when there is one, else to ``P``. A package's ``__init__`` importing its own
submodules is an edge like any other; merely being inside a package is not.
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOTS = {REPO / "proxy" / "seedtape": "seedtape", REPO / "client_shim": "client_shim"}

# The request path: what runs while the proxy answers a request (issue 11).
REQUEST_PATH_MODULES = (
    "app",
    "engine",
    "exchange",
    "routes",
    "key",
    "store",
    "cassette",
    "recorder",
    "replayer",
    "upstream",
    "prepared",
    "episode",
    "sse",
    "headers",
    "errors",
    "miss",
    "redaction",
    "jsonpath",
    "security",
    "durability",
    "config",
    "form",
)
REQUEST_PATH_PACKAGES = ("modes", "coordination", "families", "realtime", "teams")
# Off the request path: the simulator, drift reports, the commands, the client side.
FORBIDDEN_ON_REQUEST_PATH = ("seedtape.sim", "seedtape.drift.report", "seedtape.commands", "seedtape.client")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    name: str  # what it imports, absolute: a module, or the package a name comes from
    path: Path
    line: int
    where: str  # "top level", "under TYPE_CHECKING", "in function f"

    def __str__(self) -> str:
        return f"{self.source} -> {self.name} ({self.path.relative_to(REPO)}:{self.line}, {self.where})"


def _module_name(root: Path, package: str, path: Path) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def modules() -> dict[str, Path]:
    """Every module of the two packages, by dotted name."""
    return {_module_name(root, package, path): path for root, package in ROOTS.items() for path in sorted(root.rglob("*.py"))}


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, path: Path, known: dict[str, Path]) -> None:
        self.module, self.path, self.known = module, path, known
        self.package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        self.where = ["top level"]
        self.found: list[Import] = []

    def _add(self, name: str, node: ast.stmt) -> None:
        self.found.append(Import(self.module, name, self.path, node.lineno, self.where[-1]))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            parts = self.package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            self._add(submodule if submodule in self.known else base, node)

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            self.where.append("under TYPE_CHECKING")
            for child in node.body:
                self.visit(child)
            self.where.pop()
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.where.append(f"in function {node.name}")
        self.generic_visit(node)
        self.where.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function


@functools.cache
def imports() -> tuple[Import, ...]:
    """Every import statement's target in every module (third-party ones included)."""
    known = modules()
    found: list[Import] = []
    for module, path in known.items():
        visitor = _Imports(module, path, known)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        found += visitor.found
    return tuple(found)


def edges() -> list[Import]:
    """Imports between two of our modules (a module importing itself is not an edge)."""
    known = modules()
    return [i for i in imports() if i.name in known and i.name != i.source]


def strongly_connected(nodes: list[str], graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components of more than one module, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in nodes:
        if node not in index:
            visit(node)
    return sorted(components)


def import_cycles() -> list[tuple[list[str], list[Import]]]:
    """Each circle: its member modules and the imports that close it."""
    graph: dict[str, set[str]] = {}
    for edge in edges():
        graph.setdefault(edge.source, set()).add(edge.name)
    cycles = []
    for members in strongly_connected(sorted(modules()), graph):
        inside = [e for e in edges() if e.source in members and e.name in members]
        cycles.append((members, inside))
    return cycles


def describe(cycles: list[tuple[list[str], list[Import]]]) -> str:
    return "\n".join(f"circle among {', '.join(members)}:\n" + "\n".join(f"  {edge}" for edge in inside) for members, inside in cycles)


def request_path_modules() -> list[str]:
    top = {f"seedtape.{name}" for name in REQUEST_PATH_MODULES}
    packages = [f"seedtape.{name}" for name in REQUEST_PATH_PACKAGES]
    return sorted(m for m in modules() if m in top or any(_under(m, package) for package in packages))


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


# --- the facts ---------------------------------------------------------------------------


def test_the_graph_sees_the_whole_tree() -> None:
    """Guards the checks below against passing on an empty or renamed tree."""
    known = modules()
    assert {"seedtape", "seedtape.app", "seedtape.modes.replay", "client_shim", "client_shim.pytest_plugin"} <= set(known)
    missing = [m for m in (*REQUEST_PATH_MODULES, *REQUEST_PATH_PACKAGES) if f"seedtape.{m}" not in known]
    assert not missing, f"request-path modules named here that no longer exist: {missing}"
    assert any(e.where == "under TYPE_CHECKING" for e in edges()) and any(e.where.startswith("in function") for e in edges())


def test_cycle_finder_reports_a_package_importing_its_own_submodule() -> None:
    graph = {"p": {"p.a"}, "p.a": {"p"}, "p.b": {"p.a"}, "q": {"q.a"}}
    assert strongly_connected(["p", "p.a", "p.b", "q", "q.a"], graph) == [["p", "p.a"]]


def test_no_import_cycle() -> None:
    cycles = import_cycles()
    assert not cycles, "import circles (strongly connected components):\n" + describe(cycles)


def test_request_path_imports_no_simulator_report_command_or_client() -> None:
    path = set(request_path_modules())
    forbidden = [str(i) for i in imports() if i.source in path and any(_under(i.name, package) for package in FORBIDDEN_ON_REQUEST_PATH)]
    assert not forbidden, "request-path modules importing what is off the request path:\n" + "\n".join(forbidden)


def test_loading_the_request_path_loads_nothing_off_it() -> None:
    """The same fact at run time: import every request-path module, then look at sys.modules."""
    path = request_path_modules()
    script = (
        "import importlib, sys\n"
        f"for name in {path!r}: importlib.import_module(name)\n"
        f"print('\\n'.join(sorted(m for m in sys.modules if m.startswith({FORBIDDEN_ON_REQUEST_PATH!r}))))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO).stdout.split()
    assert not loaded, f"importing the request path loaded: {loaded}"


def test_client_shim_uses_only_the_public_face() -> None:
    reaching_in = [str(i) for i in imports() if _under(i.source, "client_shim") and i.name.startswith("seedtape.")]
    assert not reaching_in, "client_shim importing seedtape submodules instead of `seedtape`:\n" + "\n".join(reaching_in)
    assert any(i.name == "seedtape" for i in imports() if _under(i.source, "client_shim"))
