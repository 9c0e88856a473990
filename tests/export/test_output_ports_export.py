"""A graph whose Chunk feeds two branches exports in every format and reads back."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.compile.export import FORMATS, export_model
from engine.graph import Edge, Graph, Node, Project


def chunk_project() -> Project:
    graph = Graph()
    graph.extend([Node("x", "input", {"shape": [8, 4, 4]}, (0, 0)),
                  Node("halves", "chunk", {"chunks": 2, "dim": 1}, (240, 0)),
                  Node("conv", "conv2d", {"out_channels": 4, "kernel_size": [1, 1]}, (480, 0)),
                  Node("join", "concat", {"num_inputs": 2, "dim": 1}, (720, 0)),
                  Node("out", "output", {}, (960, 0))],
                 [Edge("x", "halves", "in"), Edge("halves", "conv", "in", "out2"),
                  Edge("halves", "join", "in1", "out1"), Edge("conv", "join", "in2"), Edge("join", "out", "in")])
    return Project(graph=graph, dataset={"name": "digits"}, training={"seed": 1})


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_chunk_exports_and_passes_its_self_check(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / ("model" if fmt == "python" else f"model.{'safetensors' if fmt == 'safetensors' else fmt}")
    result = export_model(chunk_project(), fmt, out)
    assert result.max_abs_diff <= 1e-5
    if fmt == "python":
        source = (out / "model.py").read_text()
        assert ".chunk(2, 1)" in source
