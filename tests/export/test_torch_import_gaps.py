"""import-torch of what hand-written models do: tuple results (``x.max(1).values``), attention masks,
several inputs, ``F.instance_norm``, timm's ``LayerScale2d`` and a channel shuffle written out."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import torch
from torch import nn

from engine.compile import compile_graph
from engine.compile.export.selfcheck import max_abs_diff, run_module
from engine.compile.importers import ImportProblem, ImportResult, import_torch_module
from engine.compile.weights import apply_weights
from engine.graph.fileformat import load_project
from tests.export.test_import import assert_user_error, run_cli

MODULE = "torch_gap_models"
SOURCE = '''
import torch
import torch.nn.functional as F
from torch import nn


class MaxMin(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)

    def forward(self, x):
        h = self.fc(x)
        a = h.max(1)[0]
        b = torch.max(h, 1).values
        c = h.max(dim=1).values
        d, _ = torch.min(h, -2)
        return a + b + c + d, torch.min(h, dim=2, keepdim=True).values


class Indices(nn.Module):
    def forward(self, x):
        return x.max(1).indices * 1.0


class Seq2Seq(nn.Module):
    def __init__(self, bool_mask=False):
        super().__init__()
        self.bool_mask = bool_mask
        self.src_embed = nn.Embedding(11, 8)
        self.tgt_embed = nn.Embedding(13, 8)
        self.encoder = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
        self.decoder = nn.TransformerDecoderLayer(8, 2, 16, batch_first=True)
        self.head = nn.Linear(8, 13)

    def forward(self, src, tgt):
        memory = self.encoder(self.src_embed(src))
        steps = tgt.size(1)
        if self.bool_mask:
            mask = torch.triu(torch.ones((steps, steps), dtype=torch.bool, device=tgt.device), diagonal=1)
        else:
            mask = nn.Transformer.generate_square_subsequent_mask(steps, device=tgt.device)
        return self.head(self.decoder(self.tgt_embed(tgt), memory, tgt_mask=mask, tgt_is_causal=True))


class CausalEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, norm_first=True)

    def forward(self, x):
        return self.layer(x, src_mask=nn.Transformer.generate_square_subsequent_mask(6))


class GPTBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.register_buffer("mask", torch.ones(16, 16, dtype=torch.bool).triu(1), persistent=False)

    def forward(self, x):
        out, _ = self.attn(x, x, x, attn_mask=self.mask[:6, :6], is_causal=True, need_weights=False)
        return x + out


class Padded(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, query, memory, padding):
        out, _ = self.attn(query, memory, memory, key_padding_mask=padding)
        return out


class NearlyCausal(nn.Module):
    def __init__(self):
        super().__init__()
        self.decoder = nn.TransformerDecoderLayer(8, 2, 16, batch_first=True)

    def forward(self, tgt, memory):
        return self.decoder(tgt, memory, tgt_mask=torch.triu(torch.full((5, 5), -1e9), 1))


class CrossCausal(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, query, memory):
        return self.attn(query, memory, memory, attn_mask=nn.Transformer.generate_square_subsequent_mask(5))[0]


class MemoryPadding(nn.Module):
    def __init__(self):
        super().__init__()
        self.decoder = nn.TransformerDecoderLayer(8, 2, 16, batch_first=True)

    def forward(self, tgt, memory, padding):
        return self.decoder(tgt, memory, memory_key_padding_mask=padding)


class Last(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        return self.fc(x)[:, -1]


class LayerScale2d(nn.Module):
    """timm.layers.LayerScale2d."""

    def __init__(self, dim, init_values=1e-5, inplace=False):
        super().__init__()
        self.inplace = inplace
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x):
        gamma = self.gamma.view(1, -1, 1, 1)
        return x.mul_(gamma) if self.inplace else x * gamma


def channel_shuffle(x, groups):
    """torchvision.models.shufflenetv2.channel_shuffle."""
    batchsize, num_channels, height, width = x.size()
    channels_per_group = num_channels // groups
    x = x.view(batchsize, groups, channels_per_group, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    x = x.view(batchsize, num_channels, height, width)
    return x


class ImageBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3, padding=1)
        self.weight = nn.Parameter(torch.rand(12) + 0.5)
        self.bias = nn.Parameter(torch.randn(12))
        self.scale = LayerScale2d(12, 0.5)
        with torch.no_grad():
            self.scale.gamma.uniform_(0.5, 1.5)

    def forward(self, x):
        x = F.instance_norm(self.conv(x), weight=self.weight, bias=self.bias, eps=1e-3)
        x = F.instance_norm(self.scale(x))
        x = channel_shuffle(x, 3)
        n, c, h, w = x.shape
        x = x.reshape(n, 4, c // 4, h, w).permute(0, 2, 1, 3, 4).flatten(1, 2)  # groups of 4, written otherwise
        return x


class SequenceBlock(nn.Module):
    def forward(self, x):
        x = F.instance_norm(x, eps=1e-4)
        return x.view(x.size(0), 2, 3, -1).transpose(1, 2).reshape(x.size(0), -1, x.size(2))


class SharedView(nn.Module):
    """The grouped view is read twice: no channel shuffle, but the view / transpose / view it is."""

    def forward(self, x):
        n, c, h, w = x.size()
        grouped = x.view(n, 2, c // 2, h, w)
        shuffled = grouped.transpose(1, 2).contiguous().view(n, c, h, w)
        return shuffled + grouped.view(n, c, h, w)
'''


@pytest.fixture(scope="module", autouse=True)
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("gap_models")
    (folder / f"{MODULE}.py").write_text(SOURCE, encoding="utf-8")
    sys.path.insert(0, str(folder))
    sys.modules.pop(MODULE, None)
    yield importlib.import_module(MODULE)
    sys.path.remove(str(folder))
    sys.modules.pop(MODULE, None)


def _import(name: str, shape: Any, args: Any = None) -> tuple[ImportResult, nn.Module]:
    """The import of ``name`` and the module it traced (the same initial weights)."""
    torch.manual_seed(0)
    result = import_torch_module(f"{MODULE}:{name}", args, shape)
    torch.manual_seed(0)
    model = getattr(sys.modules[MODULE], name)(**(args or {})).eval()
    return result, model


def _assert_same_outputs(result: ImportResult, model: nn.Module, *inputs: torch.Tensor) -> None:
    """The imported graph computes what the module does, on a batch of another size than the import's."""
    assert result.max_abs_diff <= 1e-5
    compiled = compile_graph(result.project.graph)
    apply_weights(compiled.module, result.weights, "imported")
    compiled.module.eval()
    assert max_abs_diff(run_module(model, inputs), run_module(compiled.module, inputs), "import") <= 1e-5


def _nodes(result: ImportResult, type_id: str) -> list[Any]:
    return [node for node in result.project.graph if node.type_id == type_id]


def _types(result: ImportResult) -> list[str]:
    return sorted(node.type_id for node in result.project.graph)


# --------------------------------------------------------------------- tuple results
def test_max_and_min_over_a_dim_are_reduce_layers() -> None:
    result, model = _import("MaxMin", (4, 6))
    reduced = [(n.params["op"], list(n.params["dims"]), n.params["keepdim"]) for n in _nodes(result, "reduce")]
    assert reduced == [("max", [1], False)] * 3 + [("min", [-2], False), ("min", [2], True)]
    assert _types(result).count("add") == 3 and len(_nodes(result, "output")) == 2
    _assert_same_outputs(result, model, torch.randn(5, 4, 6))


def test_the_indices_of_a_max_are_refused_by_name() -> None:
    with pytest.raises(ImportProblem, match=r"max_1\[1\] \(call_method max: a result the layer does not output"):
        import_torch_module(f"{MODULE}:Indices", None, (3, 4))


# --------------------------------------------------------------------- masks
@pytest.mark.parametrize("bool_mask", [False, True])
def test_an_encoder_decoder_with_a_causal_target_mask_and_two_token_inputs(bool_mask: bool) -> None:
    result, model = _import("Seq2Seq", [(7,), (5,)], {"bool_mask": bool_mask})
    inputs = {n.id: n.params for n in _nodes(result, "token_input")}
    assert inputs == {"src": {"vocab_size": 11, "seq_len": 7}, "tgt": {"vocab_size": 13, "seq_len": 5}}
    assert _nodes(result, "transformer_decoder_layer")[0].params["causal"] is True
    assert _nodes(result, "transformer_encoder_layer")[0].params["causal"] is False
    _assert_same_outputs(result, model, torch.randint(0, 11, (4, 7)), torch.randint(0, 13, (4, 5)))


def test_an_encoder_layer_with_a_causal_source_mask() -> None:
    result, model = _import("CausalEncoder", (6, 8))
    assert _nodes(result, "transformer_encoder_layer")[0].params["causal"] is True
    _assert_same_outputs(result, model, torch.randn(3, 6, 8))


def test_self_attention_through_the_causal_mask_is_causal_self_attention() -> None:
    result, model = _import("GPTBlock", (6, 8))
    (attention,) = _nodes(result, "self_attention")
    assert attention.params["causal"] is True and attention.params["num_heads"] == 2
    assert "multihead_attention" not in _types(result)
    _assert_same_outputs(result, model, torch.randn(2, 6, 8))


def test_a_float_key_padding_mask_is_the_mask_input() -> None:
    result, model = _import("Padded", [(5, 8), (7, 8), (7,)])
    (attention,) = _nodes(result, "multihead_attention")
    assert attention.params["key_padding_mask"] is True
    edges = {e.target_port: e.source for e in result.project.graph.edges if e.target == attention.id}
    assert edges == {"query": "query", "key": "memory", "value": "memory", "mask": "padding"}
    padding = torch.zeros(4, 7)
    padding[:, 5:] = float("-inf")
    _assert_same_outputs(result, model, torch.randn(4, 5, 8), torch.randn(4, 7, 8), padding)


@pytest.mark.parametrize(("name", "shape", "reason"), [
    ("NearlyCausal", (5, 8), "module TransformerDecoderLayer called with a tgt_mask that is not exactly the causal "
                             "mask"),
    ("CrossCausal", (5, 8), "module MultiheadAttention called with an attn_mask or is_causal: Multi-Head Attention "
                            "takes only a key-padding mask"),
    ("MemoryPadding", [(5, 8), (7, 8), (7,)], "called with memory_key_padding_mask, which the canvas Transformer "
                                              "Decoder Layer does not take"),
])
def test_masks_no_layer_takes_are_refused_saying_so(name: str, shape: Any, reason: str) -> None:
    with pytest.raises(ImportProblem, match="nothing imported") as caught:
        import_torch_module(f"{MODULE}:{name}", None, shape)
    assert reason in str(caught.value)


# --------------------------------------------------------------------- several inputs
def test_input_shapes_must_be_one_per_argument() -> None:
    with pytest.raises(ImportProblem, match=r"takes 3 tensor argument\(s\) \(query, memory, padding\) but 2 input "
                                            "shapes were given"):
        import_torch_module(f"{MODULE}:Padded", None, [(5, 8), (7, 8)])
    with pytest.raises(ImportProblem, match=r"argument src feeds an Embedding: its shape is SEQ_LEN \(give one "
                                            r"--input-shape per argument of forward \(src, tgt\)"):
        import_torch_module(f"{MODULE}:Seq2Seq", None, None)
    one_for_all = import_torch_module(f"{MODULE}:Seq2Seq", None, (5,))  # one shape: every argument's, as before
    assert {n.params["seq_len"] for n in _nodes(one_for_all, "token_input")} == {5}


def test_cli_takes_one_input_shape_per_argument(tmp_path: Path, models: Any) -> None:
    folder = str(Path(models.__file__).parent)
    result = run_cli("import-torch", f"{MODULE}:Padded", "--input-shape", "5,8", "--input-shape", "7x8",
                     "--input-shape", "7", "--out", str(tmp_path / "padded.json"), cwd=Path(folder))
    assert result.returncode == 0, result.stderr
    assert "import: self-check" in result.stdout
    shapes = {n.id: list(n.params["shape"]) for n in load_project(tmp_path / "padded.json").graph
              if n.type_id == "input"}
    assert shapes == {"query": [5, 8], "memory": [7, 8], "padding": [7]}
    result = run_cli("import-torch", f"{MODULE}:Padded", "--input-shape", "5,8", "--input-shape", "7,8",
                     "--out", str(tmp_path / "short.json"), cwd=Path(folder))
    assert_user_error(result, "2 input shapes were given", "give one --input-shape per argument")


# --------------------------------------------------------------------- select
def test_a_select_that_leaves_only_the_batch_says_why() -> None:
    with pytest.raises(ImportProblem, match=r"selecting index -1 of dim 1 from \(N, 5\) would leave \(N,\), one "
                                            "number per sample and no dimension after the batch, which no canvas "
                                            "tensor has"):
        import_torch_module(f"{MODULE}:Last", None, None)


# --------------------------------------------------------------------- image and sequence parts
def test_instance_norm_calls_layer_scale_2d_and_written_out_channel_shuffles() -> None:
    result, model = _import("ImageBlock", (3, 6, 6))
    assert _types(result) == ["channel_shuffle", "channel_shuffle", "conv2d", "input", "instancenorm2d",
                              "instancenorm2d", "layer_scale", "output"]
    norms = [(n.params["affine"], n.params["eps"], n.params["track_running_stats"])
             for n in _nodes(result, "instancenorm2d")]
    assert norms == [(True, 1e-3, False), (False, 1e-5, False)]
    assert [n.params["groups"] for n in _nodes(result, "channel_shuffle")] == [3, 4]
    (scale,) = _nodes(result, "layer_scale")
    assert result.weights[f"{scale.id}.gamma"].shape == (12, 1, 1)
    _assert_same_outputs(result, model, torch.randn(5, 3, 6, 6))


def test_a_sequence_instance_norm_and_channel_shuffle() -> None:
    result, model = _import("SequenceBlock", (6, 9))
    assert _types(result) == ["channel_shuffle", "input", "instancenorm1d", "output"]
    assert _nodes(result, "channel_shuffle")[0].params["groups"] == 2
    _assert_same_outputs(result, model, torch.randn(4, 6, 9))


def test_a_shuffle_whose_parts_are_read_elsewhere_stays_as_written() -> None:
    result, model = _import("SharedView", (4, 3, 3))
    assert "channel_shuffle" not in _types(result)
    assert _types(result).count("reshape") == 3 and "permute" in _types(result)
    _assert_same_outputs(result, model, torch.randn(2, 4, 3, 3))


def test_shufflenet_v2_shuffles_are_one_layer_each() -> None:
    from tests.zoo.shufflenetv2 import shufflenet_v2_x0_5

    options = {"num_classes": 10, "stages_repeats": [2, 2, 2], "stages_out_channels": [8, 16, 32, 64, 128]}
    torch.manual_seed(0)
    result = import_torch_module("tests.zoo.shufflenetv2:shufflenet_v2_x0_5", options, (3, 32, 32))
    shuffles = _nodes(result, "channel_shuffle")
    assert len(shuffles) == 6 and {n.params["groups"] for n in shuffles} == {2}
    assert shuffles[0].id == "stage2_0_shuffle" and shuffles[0].group == "stage2.0"
    assert not {"reshape", "permute"} & set(_types(result))
    torch.manual_seed(0)
    _assert_same_outputs(result, shufflenet_v2_x0_5(**options).eval(), torch.randn(2, 3, 32, 32))


def test_a_minimum_round_trips_through_onnx(tmp_path: Path, exported: Any) -> None:
    from engine.compile.importers import import_onnx
    from engine.graph import Graph, Project
    from engine.graph.fileformat import save_project
    from tests.graph_builders import chain, node

    graph = Graph()
    chain(graph, node("input", "x", shape=[4, 6]), node("reduce", "low", op="min", dims=[2], keepdim=True),
          node("output", "out"))
    path = tmp_path / "minimum.json"
    save_project(Project(graph=graph, meta={"name": "minimum", "family": "fnn", "task": "", "description": ""}), path)
    result = import_onnx(exported(path, "onnx").paths[0])
    (low,) = _nodes(result, "reduce")
    assert (low.params["op"], list(low.params["dims"]), low.params["keepdim"]) == ("min", [2], True)
    assert result.max_abs_diff <= 1e-5
