"""Every template's own ONNX export imports back with import-onnx and computes the same (the import's
self-check: 1e-4 plus 1e-5 of the largest output, against ONNX Runtime running the export).

test_import.py round-trips the templates whose layers each map back onto one layer, layer by layer
(the RNN's unrolled steps included); this file the others, whose Transformer Encoder Layers import as
their parts (LayerNorm, Self-Attention, Add, Linear...): the parts named here must be there.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.compile.export import ExportResult
from engine.compile.importers import import_onnx
from tests.export.conftest import TEMPLATES
from tests.export.test_import import ONNX_ROUND_TRIP

BY_PARTS = [t for t in TEMPLATES if t not in ONNX_ROUND_TRIP]
#: Layers the import must make of a template, each as (type, parameters it has), by template.
EXPECTED: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "transformer_char_lm": [("positional_encoding", {"kind": "learned", "max_len": 64}),
                            ("self_attention", {"num_heads": 4, "causal": True}),
                            ("self_attention", {"num_heads": 4, "causal": True})],
    "transformer_digits_rows": [("positional_encoding", {"kind": "learned", "max_len": 8}),
                                ("self_attention", {"num_heads": 4, "causal": False}),
                                ("self_attention", {"num_heads": 4, "causal": False})],
}


def test_every_template_is_round_tripped_here_or_in_test_import() -> None:
    assert {t.stem for t in BY_PARTS} <= set(EXPECTED)
    assert len(BY_PARTS) + len(ONNX_ROUND_TRIP) == len(TEMPLATES)


@pytest.mark.parametrize("template", BY_PARTS, ids=[t.stem for t in BY_PARTS])
def test_a_template_with_transformer_layers_imports_back(template: Path,
                                                         exported: Callable[..., ExportResult]) -> None:
    result = import_onnx(exported(template, "onnx").paths[0])  # raises when the outputs differ
    assert result.max_abs_diff < 1e-4
    made = sorted((n.type_id, sorted(n.params.items())) for n in result.project.graph
                  if n.type_id in {t for t, _ in EXPECTED[template.stem]})
    expected = EXPECTED[template.stem]
    assert len(made) == len(expected), made
    for type_id, params in expected:
        assert any(t == type_id and params.items() <= dict(p).items() for t, p in made), (type_id, params, made)
