"""Import direction between layers (DESIGN.md "Layers"), checked by parsing the sources with `ast`.

Every import counts, including ones inside functions and under TYPE_CHECKING: a layer that
names another in a type hint still depends on it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import fastapi_realtime

PACKAGE = "fastapi_realtime"
ROOT = Path(fastapi_realtime.__file__).resolve().parent
# Leaf modules below every layer; the codecs raise the package's exceptions.
FOUNDATION = {f"{PACKAGE}._types", f"{PACKAGE}.exceptions", f"{PACKAGE}.reasons"}
SOCKETIO_LAYERS = ("socketio", "server", "namespace", "socket", "client", "broadcast", "router", "handlers", "adapters")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from . import x` imports the submodule x when there is one; only names that are
            # not submodules come from the package itself.
            subs = {f"{module}.{alias.name}" for alias in node.names if alias.name != "*"}
            found.update(subs)
            if node.module or not all(_exists(sub) for sub in subs):
                found.add(module)
    return found


def sources(*relative: str) -> list[Path]:
    out: list[Path] = []
    for rel in relative:
        target = ROOT / rel
        out.extend(sorted(target.rglob("*.py")) if target.is_dir() else [target])
    return out


def is_stdlib(module: str) -> bool:
    return module.split(".")[0] in sys.stdlib_module_names


def within(module: str, *names: str) -> bool:
    return any(module == f"{PACKAGE}.{n}" or module.startswith(f"{PACKAGE}.{n}.") for n in names)


def ours(modules: set[str]) -> set[str]:
    # Only real modules of the package; `from .x import SomeClass` adds x.SomeClass, which is no module.
    return {m for m in modules if m.split(".")[0] == PACKAGE and _exists(m)}


def _exists(module: str) -> bool:
    path = ROOT.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_resolver_sees_relative_imports() -> None:
    """Guard for the checker itself: a known relative import must be resolved."""
    assert f"{PACKAGE}.exceptions" in imports_of(ROOT / "engineio" / "packet.py")
    assert ours(imports_of(ROOT / "server.py")) >= {f"{PACKAGE}.asgi", f"{PACKAGE}.sessions"}


@pytest.mark.parametrize("path", sources("engineio", "socketio"), ids=lambda p: module_name(p))
def test_codecs_import_only_stdlib_and_each_other(path: Path) -> None:
    imported = imports_of(path)
    third_party = {m for m in imported if not is_stdlib(m) and m.split(".")[0] != PACKAGE}
    other_layers = {m for m in ours(imported) if m not in FOUNDATION and not within(m, "engineio", "socketio")}
    bad = third_party | other_layers
    assert not bad, f"{module_name(path)} imports {sorted(bad)}"


@pytest.mark.parametrize("module", sorted(FOUNDATION))
def test_foundation_is_stdlib_only(module: str) -> None:
    path = ROOT.parent.joinpath(*module.split(".")).with_suffix(".py")
    assert {m for m in imports_of(path) if not is_stdlib(m)} == set()


@pytest.mark.parametrize(
    "path", sources("transports", "sessions.py", "asgi.py"), ids=lambda p: module_name(p)
)
def test_engine_never_imports_socketio_layers(path: Path) -> None:
    bad = {m for m in ours(imports_of(path)) if within(m, *SOCKETIO_LAYERS)}
    assert not bad, f"{module_name(path)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", sources("adapters"), ids=lambda p: module_name(p))
def test_adapters_do_not_reach_into_the_server(path: Path) -> None:
    bad = {m for m in ours(imports_of(path)) if within(m, "server", "client", "socket", "namespace")}
    assert not bad, f"{module_name(path)} imports {sorted(bad)}"


# --------------------------------------------------------------------------- the whole package


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (type-only imports included)."""
    return {module_name(p): {m for m in ours(imports_of(p)) if m != module_name(p)} for p in sources(".")}


def import_cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[set[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, pending = work[-1]
            if pending:
                nxt = pending.pop()
                if nxt not in graph:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph[nxt])))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(component)
    return cycles


def test_no_import_circles() -> None:
    """Type-only imports count: the API layer's lower modules reach the objects above them
    through Protocols they declare (socket.SocketClient, admission.AdmissionServer, ...)."""
    assert import_cycles(import_graph()) == []


# The Socket.IO API layer, bottom to top (issue 9): each module imports only those before it.
API_LAYERS = ("handlers", "broadcast", "socket", "router", "namespace", "admission", "client", "lifecycle", "server")
# Built on the API layer and never imported by it.
ABOVE_API = ("dependencies", "conformance", "asyncapi", "testing", "admin", "metrics")


@pytest.mark.parametrize("name", API_LAYERS)
def test_api_layer_imports_only_what_is_below(name: str) -> None:
    module = f"{PACKAGE}.{name}"
    assert _exists(module), f"{module} is gone: update API_LAYERS"
    deps = import_graph()[module]
    below = {f"{PACKAGE}.{n}" for n in API_LAYERS[: API_LAYERS.index(name)]}
    upward = {d for d in deps if within(d, *API_LAYERS) and d not in below}
    assert not upward, f"{module} imports {sorted(upward)}, which are not below it in {API_LAYERS}"
    above = {d for d in deps if within(d, *ABOVE_API) or d == PACKAGE}
    assert not above, f"{module} imports {sorted(above)}, which are built on the API layer"


def test_layer_check_sees_upward_imports() -> None:
    """Guard for the check itself: the client really imports admission, which is below it."""
    assert f"{PACKAGE}.admission" in import_graph()[f"{PACKAGE}.client"]


def test_cycle_finder_finds_cycles() -> None:
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_the_upper_layers_are_imported_by_nobody_below() -> None:
    """asyncapi/ and testing/ are built on the server and never imported by it (the package
    entry wires the docs routes); lifecycle and admission serve the server and the client only."""
    graph = import_graph()
    for module, deps in graph.items():
        if not within(module, "asyncapi") and module != PACKAGE:
            assert not any(within(d, "asyncapi") for d in deps), module
        if not within(module, "testing"):
            assert not any(within(d, "testing") for d in deps), module
        if f"{PACKAGE}.admission" in deps:
            assert module in {f"{PACKAGE}.client"}, module
        if f"{PACKAGE}.lifecycle" in deps:
            assert module in {f"{PACKAGE}.server"}, module


MAX_MODULE_LINES = 600


@pytest.mark.parametrize("path", sources("."), ids=lambda p: module_name(p))
def test_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{module_name(path)} has {lines} lines; split it by job"
