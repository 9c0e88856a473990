"""Small projects with a search section, fast to train (a few hundred 2-D points)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.graph.fileformat import load_project

ROOT = Path(__file__).resolve().parents[2]


def spirals_search(tmp_path: Path, space: dict[str, Any] | None = None, epochs: int = 3, **search: Any) -> Path:
    """The spirals MLP template on 300 points with ``space`` searched; returns the project file."""
    data = json.loads((ROOT / "templates" / "fnn_spirals.json").read_text())
    data["dataset"]["samples"] = 300
    data["training"]["epochs"] = epochs
    data["search"] = {"space": space if space is not None else {
        "training.lr": {"low": 1e-3, "high": 3e-2, "log": True},
        "nodes.fc2.out_features": {"low": 8, "high": 64, "step": 8}}, **search}
    path = tmp_path / "spirals.json"
    path.write_text(json.dumps(data))
    return path


def cnn_project() -> Any:
    """The CNN-on-digits template, loaded."""
    return load_project(ROOT / "templates" / "cnn_digits.json")
