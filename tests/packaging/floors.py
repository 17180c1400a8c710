"""A wheel of this checkout and a fresh venv holding it with its dependencies at their floors.

Used by test_lowest_versions.py, and runnable to put the whole test suite on the floors:

    .venv/bin/python -m tests.packaging.floors [pytest arguments]     (or: make test-floors)

builds the wheel, installs it with the `server` and `dev` extras into a temporary venv, every
runtime and `server` dependency pinned at its floor (where the dev extra asks for more, at the
dev floor: the test harness's own needs), and runs pytest from the checkout with that venv.

A floor is the `>=` of the requirement in the wheel's metadata. The venv gets pins, not
`uv pip install --resolution lowest-direct wheel`: for uv the wheel is the direct requirement
and its dependencies are transitive, which that resolution leaves at their newest releases.
Pins also fail loudly when two floors cannot be installed together. Needs PyPI (uv fetches the
build backend and the dependencies; its cache makes later runs quicker).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from uv import find_uv_bin

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "fastapi_realtime"
# What the build needs from the checkout (pyproject's readme, license-files and package).
SOURCES = ["pyproject.toml", "README.md", "LICENSE", PACKAGE]
EXTRA = "server"  # the extra the README's `uvicorn ...` command needs


def uv(*args: str | Path, cwd: Path | None = None) -> str:
    proc = subprocess.run(
        [find_uv_bin(), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=400,
        env={**os.environ, "NO_COLOR": "1"},
    )
    if proc.returncode != 0:
        raise AssertionError(f"uv {' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def floor(req: Requirement) -> Version:
    """The version of the requirement's `>=`: every dependency must have one."""
    lows = [spec.version for spec in req.specifier if spec.operator == ">="]
    if len(lows) != 1:
        raise AssertionError(f"requirement {req} has no single `>=` floor")
    return Version(lows[0])


def floors(requirements: list[Requirement]) -> dict[str, Version]:
    """Canonical name -> floor; the highest one where several requirements name a distribution."""
    out: dict[str, Version] = {}
    for req in requirements:
        name = canonicalize_name(req.name)
        out[name] = max(out.get(name, floor(req)), floor(req))
    return out


def pins(versions: dict[str, Version]) -> str:
    return "".join(f"{name}=={version}\n" for name, version in sorted(versions.items()))


def requirements(metadata: Message, *extras: str) -> list[Requirement]:
    """The wheel's requirements installed with these extras (the runtime ones always)."""
    every = [Requirement(line) for line in metadata.get_all("Requires-Dist") or []]
    wanted = {"", *extras}
    return [r for r in every if r.marker is None or any(r.marker.evaluate({"extra": e}) for e in wanted)]


@dataclass
class Built:
    wheel: Path
    metadata: Message


@dataclass
class FloorVenv:
    python: Path
    bin: Path
    floors: dict[str, Version]  # canonical name -> the pinned floor
    installed: dict[str, Version]  # canonical name -> what `uv pip freeze` lists


def build(work: Path) -> Built:
    """A wheel built through an sdist (as `uv build` does) from a copy of the checkout's sources,
    with the build backend at its floor."""
    src = work / "src"
    src.mkdir(parents=True)
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    build_system = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    constraints = work / "build-constraints.txt"
    constraints.write_text(pins(floors([Requirement(r) for r in build_system["requires"]])))
    uv("build", "--build-constraint", constraints, "--out-dir", work / "dist", src)
    (wheel,) = (work / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = HeaderParser().parsestr(zf.read(name).decode())
    return Built(wheel, metadata)


def floor_venv(built: Built, venv: Path, extras: tuple[str, ...] = (EXTRA,)) -> FloorVenv:
    """A fresh venv with the wheel and `extras`; the runtime and `server` dependencies pinned at
    their floors (raised to another extra's floor where one of `extras` asks for more)."""
    # The interpreter of the test run: on CI, requires-python's floor (3.11).
    uv("venv", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    pinned = floors(requirements(built.metadata, *extras))
    direct = {canonicalize_name(r.name) for r in requirements(built.metadata, EXTRA)}
    pinned = {name: version for name, version in pinned.items() if name in direct}
    constraints = venv.parent / f"{venv.name}-floors.txt"
    constraints.write_text(pins(pinned))
    uv("pip", "install", "--python", python, "--constraint", constraints, f"{built.wheel}[{','.join(extras)}]")
    installed: dict[str, Version] = {}
    for line in uv("pip", "freeze", "--python", python).splitlines():
        name, sep, version = line.partition("==")
        if sep:
            installed[canonicalize_name(name)] = Version(version)
    return FloorVenv(python, venv / "bin", pinned, installed)


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="fastapi-realtime-floors-") as tmp:
        work = Path(tmp)
        env = floor_venv(build(work / "build"), work / "venv", (EXTRA, "dev"))
        print("floors:", " ".join(f"{name}=={version}" for name, version in sorted(env.floors.items())), flush=True)
        # The suite runs from the checkout (its tests import the package from there); the
        # dependencies are the venv's.
        args = argv or ["-q", "--ignore=tests/packaging"]
        return subprocess.call([str(env.python), "-m", "pytest", *args], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
