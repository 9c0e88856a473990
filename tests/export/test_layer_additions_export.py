"""The layers added for modern architectures export to every format, as readable model.py code,
and come back through the importers."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from engine.compile.export import FORMATS, TOLERANCE, ExportResult
from engine.compile.importers import import_onnx, import_torch_module
from engine.graph import Graph, Project
from engine.graph.fileformat import save_project
from engine.graph.layout import layered_layout
from tests.export.test_import import assert_same_model, importable  # noqa: F401 - a fixture
from tests.export.test_python_source import import_file
from tests.graph_builders import chain, connect, node

Exported = Callable[..., ExportResult]


def _project(graph: Graph, name: str) -> Project:
    graph.move_nodes(layered_layout(graph))
    return Project(graph=graph, dataset={"name": "digits"}, training={"epochs": 1, "batch_size": 64},
                   meta={"name": name, "family": "fnn", "task": "", "description": ""})


def image_blocks() -> Project:
    """A MobileNet / ConvNeXt-like chain with a squeeze-and-excitation gate."""
    graph = Graph()
    chain(graph, node("input", "image", shape=[4, 9, 9]), node("relu6", "r6"), node("hardswish", "hs"),
          node("groupnorm", "gn", num_groups=2), node("maxpool2d", "mp", kernel_size=[3, 3], stride=[2, 2],
                                                      ceil_mode=True),
          node("prelu", "pr", per_channel=True), node("instancenorm2d", "inorm", affine=True),
          node("avgpool2d", "ap", kernel_size=[3, 3], stride=[1, 1], padding=[1, 1], count_include_pad=False),
          node("layernorm2d", "ln2d"), node("channel_shuffle", "shuffle", groups=2), node("mish", "mish"),
          node("layer_scale", "ls", init_value=0.5), node("stochastic_depth", "drop_path", p=0.2))
    chain(graph, "drop_path", node("adaptive_avgpool2d", "squeeze"), node("hardsigmoid", "gate"))
    chain(graph, node("multiply", "excite"))
    connect(graph, "drop_path", "excite", "in1")
    connect(graph, "gate", "excite", "in2")
    chain(graph, "excite", node("adaptive_maxpool2d", "gmp", output_size=[2, 2]),
          node("reduce", "total", op="sum", dims=[2, 3]), node("softplus", "sp", beta=2.0), node("output", "out"))
    return _project(graph, "Image blocks")


def token_blocks() -> Project:
    """A ViT-like head (class token, position embedding, select) and 1-D pooling of the same tokens."""
    graph = Graph()
    chain(graph, node("input", "patches", shape=[6, 8]), node("class_token", "cls"), node("position_embedding", "pos"),
          node("transformer_encoder_layer", "encoder", nhead=2, dim_feedforward=16))
    chain(graph, node("select", "first", dim=1, index=0), node("output", "cls_out"))
    connect(graph, "encoder", "first", "in")
    chain(graph, node("permute", "channels_first", dims=[0, 2, 1]), node("instancenorm1d", "inorm"),
          node("avgpool1d", "ap", kernel_size=3, stride=2, padding=1, ceil_mode=True),
          node("adaptive_maxpool1d", "amp", output_size=2), node("adaptive_avgpool1d", "gap", flatten=True),
          node("output", "pooled"))
    connect(graph, "encoder", "channels_first", "in")
    return _project(graph, "Token blocks")


def encoder_decoder() -> Project:
    """A Transformer encoder and decoder, and attention with separate query, key, value and a mask."""
    graph = Graph()
    chain(graph, node("input", "source", shape=[7, 8]), node("transformer_encoder_layer", "encoder", nhead=2,
                                                              dim_feedforward=16))
    chain(graph, node("input", "target", shape=[5, 8]), node("transformer_decoder_layer", "decoder", nhead=2,
                                                              dim_feedforward=16, causal=True))
    connect(graph, "encoder", "decoder", "memory")
    graph.add_node(node("input", "padding", shape=[7]))
    graph.add_node(node("multihead_attention", "attend", num_heads=2, key_padding_mask=True))
    for port, source in (("query", "decoder"), ("key", "encoder"), ("value", "encoder"), ("mask", "padding")):
        connect(graph, source, "attend", port)
    chain(graph, "attend", node("reduce", "mean", dims=[1]), node("output", "out"))
    return _project(graph, "Encoder decoder")


PROJECTS = {"image_blocks": image_blocks, "token_blocks": token_blocks, "encoder_decoder": encoder_decoder}


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("layer_additions")
    paths = {}
    for name, make in PROJECTS.items():
        paths[name] = folder / f"{name}.json"
        save_project(make(), paths[name])
    return paths


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", list(PROJECTS))
def test_new_layers_export_and_check_themselves(name: str, fmt: str, exported: Exported,
                                                projects: dict[str, Path]) -> None:
    assert exported(projects[name], fmt).max_abs_diff <= TOLERANCE


@pytest.mark.parametrize("name", list(PROJECTS))
def test_model_py_of_new_layers_reads_as_written_by_hand(name: str, exported: Exported,
                                                         projects: dict[str, Path]) -> None:
    folder = exported(projects[name], "python").paths[0].parent
    text = (folder / "model.py").read_text(encoding="utf-8")
    for noise in ("getattr_", ";  ", " = None", "torch.nn.functional.", "_tensor_constant", "torch._C"):
        assert noise not in text, noise
    model = import_file(folder / "model.py", f"generated_{name}").build_model()
    assert sum(p.numel() for p in model.parameters()) > 0
    expected = {"image_blocks": ["F.relu6(image)", "F.max_pool2d(gn, (3, 3), (2, 2), (0, 0), ceil_mode=True)",
                                 "count_include_pad=False", "F.channel_shuffle(ln2d, 2)", "drop_path * gate",
                                 "torch.sum(gmp, (2, 3))", "self.ln2d = LayerNorm2d(4)",
                                 "self.drop_path = StochasticDepth(0.2)"],
                "token_blocks": ["self.cls = ClassToken(8)", "self.pos = PositionEmbedding((7, 8))",
                                 "encoder.select(1, 0)", "F.avg_pool1d(inorm, 3, 2, 1, ceil_mode=True)"],
                "encoder_decoder": ["self.decoder = CausalTransformerDecoderLayer(8, 2, 5",
                                    "self.attend = MaskedQKVAttention(8, 2)",
                                    "self.attend(decoder, encoder, encoder, padding)", "torch.mean(attend, 1)"]}[name]
    for line in expected:
        assert line in text, line


@pytest.mark.parametrize("name", list(PROJECTS))
def test_new_layers_import_back_from_their_python_source(name: str, projects: dict[str, Path],
                                                         importable: Callable[[Path], tuple[str, Path]],  # noqa: F811
                                                         ) -> None:
    from engine.compile.export.source import load_source

    shapes = [spec.dims for spec in load_source(projects[name]).compiled.input_specs]  # one per argument
    module, weights = importable(projects[name])
    result = import_torch_module(module, None, shapes, weights)
    assert result.max_abs_diff <= 1e-5
    assert_same_model(projects[name], result.project.graph, result.weights)


def test_new_layers_import_back_from_onnx(tmp_path: Path, exported: Exported) -> None:
    graph = Graph()
    chain(graph, node("input", "x", shape=[4, 9, 9]), node("relu6", "a"), node("hardswish", "b"),
          node("hardsigmoid", "c"), node("mish", "d"), node("prelu", "e", per_channel=True),
          node("instancenorm2d", "f"), node("maxpool2d", "g", kernel_size=[3, 3], stride=[2, 2], ceil_mode=True),
          node("avgpool2d", "h", kernel_size=[3, 3], stride=[1, 1], padding=[1, 1], count_include_pad=False),
          node("layer_scale", "i", init_value=0.5), node("position_embedding", "j"), node("adaptive_maxpool2d", "k"),
          node("reduce", "l", op="sum", dims=[2], keepdim=True), node("select", "m", dim=1, index=-1),
          node("output", "out"))
    path = tmp_path / "onnx_layers.json"
    save_project(_project(graph, "ONNX layers"), path)
    result = import_onnx(exported(path, "onnx").paths[0])
    assert result.max_abs_diff <= 1e-5
    assert_same_model(path, result.project.graph, result.weights)


def test_hand_written_attention_and_decoder_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "seq2seq_parts.py").write_text(
        "from torch import nn\n\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)\n"
        "        self.dec = nn.TransformerDecoderLayer(8, 2, 16, batch_first=True)\n"
        "        self.head = nn.Linear(8, 3)\n\n"
        "    def forward(self, x):\n"
        "        a = self.attn(x, x, x, need_weights=False)[0]\n"
        "        return self.head(self.dec(a, x))\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = import_torch_module("seq2seq_parts:Net", None, [5, 8])
    assert result.max_abs_diff <= 1e-5
    assert sorted(n.type_id for n in result.project.graph) == ["input", "linear", "multihead_attention", "output",
                                                               "transformer_decoder_layer"]
    attend = next(n for n in result.project.graph if n.type_id == "multihead_attention")
    assert {e.target_port for e in result.project.graph.edges if e.target == attend.id} == {"query", "key", "value"}
