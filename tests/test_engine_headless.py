"""The engine stays headless and light: no Qt anywhere, no torch until a model is built."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import engine
from tests.conftest import ROOT

ENGINE_MODULES = sorted(m.name for m in pkgutil.walk_packages(engine.__path__, "engine."))
FORBIDDEN = ("PySide6", "pyqtgraph", "gui", "shiboken6")


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_every_engine_module_is_listed() -> None:
    assert {"engine.shapes", "engine.graph.model", "engine.layers.base", "engine.compile.fx_builder",
            "engine.cli"} <= set(ENGINE_MODULES)


def test_importing_every_engine_module_loads_no_gui_module() -> None:
    loaded = _loaded_after("; ".join(f"import {name}" for name in ENGINE_MODULES))
    offenders = sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN)
    assert offenders == []


def test_editing_modules_do_not_import_torch() -> None:
    """The canvas needs the catalogue, model and inference long before it needs torch."""
    loaded = _loaded_after("import engine.layers, engine.graph, engine.graph.fileformat, engine.shapes, "
                           "engine.graph.layout, engine.templates, engine.cli")
    assert "torch" not in loaded
