"""The package's layering (README, Layout): imports go to the same layer or a layer above, never below, with no cycle
between packages; only ``adop.flows`` and ``adop.service`` import Prefect, and only the commands that start a flow or
talk to the server (``adop run``, the studio-service commands) import them."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import adop

ROOT = Path(adop.__file__).parent

LAYERS: list[set[str]] = [
    {"adop", "adop.errors", "adop.config", "adop.storage", "adop.images", "adop.exif", "adop.native"},
    {"adop.scene"},
    {"adop.raster", "adop.nn", "adop.paths", "adop.cache", "adop.dense"},
    {"adop.model"},
    {"adop.ingest", "adop.reconstruct", "adop.evaluate", "adop.train", "adop.render", "adop.deliver", "adop.synth"},
    {"adop.pipeline", "adop.studio", "adop.cli", "adop.__main__"},
    {"adop.flows"},
    {"adop.service"},
]
PREFECT_UNITS = ("adop.flows", "adop.service")
"""The units that import Prefect."""
CLI_CALLS_UP = {"adop.flows.capture_to_deliverable", "adop.service.runs", "adop.service.setup",
                "adop.service.connection", "adop.service.nightly", "adop.service.page"}
"""The imports against the layers: ``adop run`` starts the Prefect flow, the studio-service commands talk to the
server (each imported inside its command, so every other command runs without Prefect)."""


def _calls_up(name: str, target: str) -> bool:
    return name == "adop.cli" and target in CLI_CALLS_UP


def _unit(module: str) -> str:
    """The layered unit a module belongs to: its top-level package or module under ``adop``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else parts[0]


def _layer(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT.parent).with_suffix("")
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        found[".".join(parts)] = path
    return found


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every absolute import in the file (module level and inside functions), with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
    return found


def test_every_module_is_in_a_layer() -> None:
    units = {_unit(name) for name in _modules()}
    assert units <= set().union(*LAYERS), sorted(units - set().union(*LAYERS))


def test_imports_never_go_to_a_lower_layer() -> None:
    problems = []
    for name, path in _modules().items():
        here = _unit(name)
        for target, line in _imports(path):
            if _calls_up(name, target):
                continue
            if target.split(".")[0] == "adop" and _layer(_unit(target)) > _layer(here):
                problems.append(f"{path.relative_to(ROOT.parent)}:{line} ({here}) imports {target}")
    assert not problems, "\n".join(problems)


def test_no_cycle_between_packages() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in _modules().items():
        for target, _ in _imports(path):
            if not _calls_up(name, target) and target.split(".")[0] == "adop" and _unit(target) not in (
                _unit(name), "adop"
            ):
                edges[_unit(name)].add(_unit(target))

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in edges[start])

    cycles = sorted(unit for unit in list(edges) if reaches(unit, unit, {unit}))
    assert not cycles, {unit: sorted(edges[unit]) for unit in cycles}


def test_only_the_flows_and_the_service_import_prefect() -> None:
    for name, path in _modules().items():
        if _unit(name) in PREFECT_UNITS:
            continue
        for target, line in _imports(path):
            where = f"{path.relative_to(ROOT.parent)}:{line}"
            assert target.split(".")[0] != "prefect", f"{where} imports Prefect"
            if target.startswith(PREFECT_UNITS):
                assert _calls_up(name, target), f"{where} imports {target}"


def test_every_command_but_run_works_without_prefect() -> None:
    """Importing the whole library and the CLI (as `adop render` does) loads no Prefect module."""
    code = (
        "import importlib, pkgutil, sys, adop, adop.cli\n"
        "for info in pkgutil.walk_packages(adop.__path__, 'adop.'):\n"
        "    if not info.name.startswith(('adop.flows', 'adop.service')) and info.name != 'adop.__main__':\n"
        "        importlib.import_module(info.name)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'prefect')\n"
        "assert not loaded, loaded[:5]\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_dense_stereo_needs_only_torch() -> None:
    """``adop.dense`` runs where only torch is installed (a GPU machine): no pycolmap, open3d, OpenImageIO or Prefect,
    except COLMAP's own entry point, which runs in a child process."""
    heavy = ("pycolmap", "open3d", "OpenImageIO", "prefect")
    problems = []
    for name, path in _modules().items():
        if not name.startswith("adop.dense"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        child_entry = {id(node) for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef) and fn.name == "_main"
                       for node in ast.walk(fn)}
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for target in names:
                if target.split(".")[0] in heavy and id(node) not in child_entry:
                    problems.append(f"{name}:{node.lineno} imports {target}")
    assert not problems, problems
