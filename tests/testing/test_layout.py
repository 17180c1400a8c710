"""The test client's place in the layers: built on the package, imported by none of it, no circle inside."""

from __future__ import annotations

import pytest

from tests.test_layering import PACKAGE, ROOT, imports_of, module_name, ours, sources, within

# Each module imports only those before it (type-only imports included).
ORDER = ["errors", "driver", "transports", "socket", "blocking", "client"]


def test_order_lists_every_module() -> None:
    found = {module_name(path).rpartition(".")[2] for path in sources("testing")} - {"testing"}
    assert found == set(ORDER)


@pytest.mark.parametrize("name", ORDER)
def test_modules_import_only_the_ones_before(name: str) -> None:
    imported = {m.removeprefix(f"{PACKAGE}.testing.") for m in ours(imports_of(ROOT / "testing" / f"{name}.py"))}
    later = imported & set(ORDER[ORDER.index(name) :])
    assert not later, f"testing.{name} imports {sorted(later)}"


def test_driver_and_transports_know_no_socketio() -> None:
    for name in ("driver", "transports"):
        bad = {m for m in ours(imports_of(ROOT / "testing" / f"{name}.py")) if within(m, "socketio", "server", "broadcast")}
        assert not bad, f"testing.{name} imports {sorted(bad)}"


def test_nothing_in_the_package_imports_testing() -> None:
    importers = [
        module_name(path)
        for path in sources(".")
        if not within(module_name(path), "testing") and any(within(m, "testing") for m in imports_of(path))
    ]
    assert importers == []
