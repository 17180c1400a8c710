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
            found.add(module)
            # `from . import x` may import the submodule x.
            found.update(f"{module}.{alias.name}" for alias in node.names if alias.name != "*")
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
