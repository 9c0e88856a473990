"""The compiler builds the same network a PyTorch user would write by hand.

For each model the graph is drawn with the engine API, compiled, and compared with an
``nn.Module`` written the ordinary way: same parameter count, the weights (and buffers)
copied across in state-dict order with matching shapes, and the same outputs on a random
batch in evaluation mode (float64, atol 1e-6).
"""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from engine.compile import CompiledModel, GraphInvalidError, compile_graph
from engine.graph import Graph
from engine.shapes import analyze
from tests.graph_builders import add, chain, connect, node
from tests.reference_models import (MLP, LeNet, LSTMClassifier, ResidualNet, TransformerClassifier, lenet_graph,
                                     lstm_graph, mlp_graph, residual_graph, transformer_graph, transformer_names)

ATOL = 1e-6


# ------------------------------------------------------------------ helpers
def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def copy_state(source: nn.Module, target: nn.Module) -> None:
    """Copy ``source``'s parameters and buffers into ``target`` by state-dict order.

    The two state dicts must list the same tensors in the same order: same count, the
    same final name component (``weight``, ``bias``, ``running_mean``, ...), same shapes.
    """
    src = list(source.state_dict().items())
    dst = list(target.state_dict().items())
    assert len(src) == len(dst), ([k for k, _ in src], [k for k, _ in dst])
    mapped = {}
    for (src_key, src_value), (dst_key, dst_value) in zip(src, dst):
        assert src_key.rsplit(".", 1)[-1] == dst_key.rsplit(".", 1)[-1], (src_key, dst_key)
        assert src_value.shape == dst_value.shape, (src_key, dst_key, src_value.shape, dst_value.shape)
        mapped[dst_key] = src_value.clone()
    target.load_state_dict(mapped, strict=True)


def check_equivalent(graph: Graph, reference: nn.Module, *input_shapes: tuple[int, ...],
                     batch: int = 5, expected_params: int | None = None,
                     warm_up: int = 0) -> tuple[CompiledModel, nn.Module]:
    """Compile ``graph``, copy its weights into ``reference`` and compare outputs.

    Args:
        input_shapes: Per-sample shapes of the inputs, in argument order.
        expected_params: The exact parameter count both must have, when given.
        warm_up: Train-mode forward passes on the compiled model before copying, so that
            BatchNorm running statistics are non-trivial.
    """
    torch.manual_seed(0)
    compiled = compile_graph(graph)
    model = compiled.module
    assert [tuple(s.dims) for s in compiled.input_specs] == [tuple(s) for s in input_shapes]
    analysis = analyze(graph)
    assert analysis.valid
    assert n_params(model) == n_params(reference) == analysis.parameters
    if expected_params is not None:
        assert analysis.parameters == expected_params
    model.double()
    reference.double()
    if warm_up:
        model.train()
        with torch.no_grad():
            for _ in range(warm_up):
                model(*(3 * torch.randn(8, *s, dtype=torch.float64) + 1 for s in input_shapes))
    copy_state(model, reference)
    model.eval()
    reference.eval()
    inputs = tuple(torch.randn(batch, *s, dtype=torch.float64) for s in input_shapes)
    with torch.no_grad():
        got = model(*inputs)
        want = reference(*inputs)
    got_t = got if isinstance(got, tuple) else (got,)
    want_t = want if isinstance(want, tuple) else (want,)
    assert len(got_t) == len(want_t)
    for g, w, spec in zip(got_t, want_t, compiled.output_specs):
        assert g.shape == w.shape == (batch, *spec.dims)
        torch.testing.assert_close(g, w, atol=ATOL, rtol=0)
    return compiled, reference


# ---------------------------------------------------------------------- MLP
def test_mlp_matches_hand_written() -> None:
    check_equivalent(mlp_graph(), MLP(), (20,), expected_params=20 * 64 + 64 + 64 * 32 + 32 + 32 * 3 + 3)


# ------------------------------------------------------------------- LeNet-5
def test_lenet5_matches_tutorial_model() -> None:
    graph = lenet_graph()
    analysis = analyze(graph)
    assert analysis.parameters == 61706
    assert analysis.nodes["flatten"].output.dims == (400,)
    reference = LeNet()
    assert n_params(reference) == 61706
    compiled, _ = check_equivalent(graph, reference, (1, 32, 32), expected_params=61706)
    assert compiled.output_specs[0].dims == (10,)


# ------------------------------------------------------------ residual block
def test_residual_block_matches_hand_written() -> None:
    graph = residual_graph()
    compiled, reference = check_equivalent(graph, ResidualNet(), (8, 6, 6), warm_up=3)
    running = reference.bn1.running_mean
    assert running.abs().sum() > 0 and int(reference.bn1.num_batches_tracked) == 3
    # Training mode (batch statistics, running-stat updates) agrees as well.
    model = compiled.module
    model.train()
    reference.train()
    x = torch.randn(4, 8, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), atol=ATOL, rtol=0)
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), reference.state_dict().items()):
        torch.testing.assert_close(v1, v2, atol=ATOL, rtol=0, msg=f"{k1} vs {k2}")


# ---------------------------------------------------------- LSTM classifier
def test_lstm_classifier_matches_hand_written() -> None:
    graph = lstm_graph()
    assert analyze(graph).nodes["lstm"].output.dims == (32,)
    expected = 4 * 32 * (8 + 32 + 2) + 32 * 10 + 10
    check_equivalent(graph, LSTMClassifier(), (8, 8), expected_params=expected)


# --------------------------------------------------- Transformer classifier
def copy_state_by_name(source: nn.Module, target: nn.Module, names: dict[str, str]) -> None:
    """Copy tensors by an explicit ``source key -> target key`` map covering both state dicts."""
    src, dst = source.state_dict(), target.state_dict()
    assert set(names) == set(src), sorted(set(names) ^ set(src))
    assert set(names.values()) == set(dst), sorted(set(names.values()) ^ set(dst))
    for src_key, dst_key in names.items():
        assert src[src_key].shape == dst[dst_key].shape, (src_key, dst_key)
    target.load_state_dict({names[k]: v.clone() for k, v in src.items()}, strict=True)


def test_transformer_classifier_matches_hand_written() -> None:
    graph = transformer_graph()
    analysis = analyze(graph)
    assert analysis.valid, analysis.errors
    torch.manual_seed(0)
    compiled = compile_graph(graph)
    model = compiled.module
    reference = TransformerClassifier()
    assert n_params(model) == n_params(reference) == analysis.parameters
    copy_state_by_name(model, reference, transformer_names(reference))
    model.double().eval()
    reference.double().eval()
    x = torch.randn(5, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        got, want = model(x), reference(x)
    assert got.shape == want.shape == (5, 10)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)
    # The same in float32, the dtype a trained model runs in.
    model.float()
    reference.float()
    with torch.no_grad():
        torch.testing.assert_close(model(x.float()), reference(x.float()), atol=1e-5, rtol=0)


# --------------------------------------------------------- several in / out
def test_several_inputs_and_outputs() -> None:
    graph = Graph()
    add(graph, "input", "a", shape=[4])
    add(graph, "input", "b", shape=[6])
    add(graph, "concat", "cat", dim=1)
    add(graph, "linear", "fc", out_features=3)
    add(graph, "output", "joined")
    add(graph, "output", "scores")
    connect(graph, "a", "cat", "in1")
    connect(graph, "b", "cat", "in2")
    chain(graph, "cat", "joined")
    chain(graph, "cat", "fc", "scores")
    compiled = compile_graph(graph)
    assert compiled.input_ids == ["a", "b"]
    assert compiled.output_ids == ["joined", "scores"]
    assert [s.dims for s in compiled.output_specs] == [(10,), (3,)]
    a, b = compiled.example_inputs(batch=3)
    assert a.shape == (3, 4) and b.shape == (3, 6)
    result = compiled.module(a, b)
    assert isinstance(result, tuple) and len(result) == 2
    joined, scores = result
    assert joined.shape == (3, 10) and scores.shape == (3, 3)
    torch.testing.assert_close(joined, torch.cat([a, b], dim=1))
    fc = compiled.module.get_submodule("fc")
    torch.testing.assert_close(scores, fc(torch.cat([a, b], dim=1)), atol=ATOL, rtol=0)


def test_inputs_are_arguments_in_the_order_they_were_added() -> None:
    graph = Graph()
    add(graph, "input", "second", shape=[2])
    add(graph, "input", "first", shape=[5])
    add(graph, "concat", "cat")
    connect(graph, "first", "cat", "in1")
    connect(graph, "second", "cat", "in2")
    chain(graph, "cat", node("output", "out"))
    compiled = compile_graph(graph)
    assert compiled.input_ids == ["second", "first"]
    second, first = compiled.example_inputs(batch=2)
    torch.testing.assert_close(compiled.module(second, first), torch.cat([first, second], dim=1))


# -------------------------------------------------------------- invalid graphs
LINE = re.compile(r"^node (?P<id>[A-Za-z_][A-Za-z0-9_]*) \((?P<title>[^()]+)\): (?P<message>\S.*)$")


def test_invalid_graph_raises_with_a_line_per_node_problem() -> None:
    graph = Graph()
    # A recurrent layer straight after an image input, and a kernel larger than its input.
    chain(graph, node("input", "image", shape=[3, 8, 8]), node("lstm", "rnn"), node("output", "out1"))
    chain(graph, "image", node("conv2d", "big", kernel_size=[9, 9]), node("output", "out2"))
    # An out-of-bounds value and an unconnected input.
    chain(graph, "image", node("maxpool2d", "pool", kernel_size=[0, 2]), node("output", "out3"))
    chain(graph, node("add", "plus"), node("output", "out4"))
    connect(graph, "image", "plus", "in1")
    with pytest.raises(GraphInvalidError) as info:
        compile_graph(graph)
    error = info.value
    assert error.lines and len(error.lines) == len(error.diagnostics)
    faulty = set()
    for line, diagnostic in zip(error.lines, error.diagnostics):
        match = LINE.match(line)
        assert match, line
        assert match["id"] == diagnostic.node and match["id"] in graph.nodes
        assert match["title"] == graph.nodes[match["id"]].layer.title
        assert diagnostic.severity == "error"
        faulty.add(match["id"])
    assert faulty == {"rnn", "big", "pool", "plus"}
    assert "Reshape" in next(l for l in error.lines if l.startswith("node rnn (LSTM): "))
    assert str(error).startswith("the graph is invalid: node ")


def test_linear_after_an_image_is_a_warning_that_names_flatten() -> None:
    graph = Graph()
    chain(graph, node("input", "image", shape=[3, 8, 8]), node("linear", "fc"), node("output", "out"))
    diagnostics = [d for d in analyze(graph).diagnostics if d.node == "fc"]
    assert [d.severity for d in diagnostics] == ["warning"]
    assert "Flatten" in diagnostics[0].message
    compile_graph(graph)  # a warning does not stop compilation


def test_invalid_graph_lines_for_whole_graph_problems() -> None:
    graph = Graph()
    add(graph, "linear", "fc")
    with pytest.raises(GraphInvalidError) as info:
        compile_graph(graph)
    lines = info.value.lines
    assert any(l.startswith("graph: ") and "no Input" in l for l in lines)
    assert any(l.startswith("graph: ") and "no Output" in l for l in lines)
    assert all(LINE.match(l) or l.startswith("graph: ") for l in lines)


# ------------------------------------------------------------- generated code
def test_generated_code_reads_like_hand_written_pytorch() -> None:
    """Layers with weights are submodules named after their nodes; weightless ones are function calls."""
    compiled = compile_graph(lenet_graph())
    code = compiled.module.code
    for node_id in ("conv1", "conv2", "fc1", "fc2", "fc3"):
        assert f"{node_id} = self.{node_id}(" in code, code
    for node_id in ("relu1", "relu2", "relu3", "relu4"):
        assert f"{node_id} = torch.nn.functional.relu(" in code, code
    assert "pool1 = torch.nn.functional.max_pool2d(relu1, (2, 2), (2, 2), (0, 0))" in code, code
    assert "torch.flatten(" in code
    assert "def forward(self, image)" in code
    assert sorted(name for name, _ in compiled.module.named_children()) == ["conv1", "conv2", "fc1", "fc2", "fc3"]


SHADOWING_IDS = ["input", "forward", "self", "torch", "device", "dtype", "cuda", "to", "state_dict", "parameters",
                 "modules", "training", "graph", "code", "meta", "recompile", "print_readable", "class", "None",
                 "lambda"]


@pytest.mark.parametrize("node_id", SHADOWING_IDS)
def test_node_ids_that_shadow_module_members_still_compile(node_id: str) -> None:
    """Any id the model accepts compiles, as a layer submodule and as an input argument."""
    for ids in ((node_id, "fc", "act"), ("x", node_id, "act"), ("x", "fc", node_id)):
        graph = Graph()
        chain(graph, node("input", ids[0], shape=[4]), node("linear", ids[1], out_features=3),
              node("relu", ids[2]), node("output", "out"))
        compiled = compile_graph(graph)
        x, = compiled.example_inputs(batch=2)
        fc = compiled.module.get_submodule(next(n for n, m in compiled.module.named_children()
                                                 if isinstance(m, nn.Linear)))
        torch.testing.assert_close(compiled.module(x), torch.relu(fc(x)))


def test_every_keyword_builtin_and_graph_module_member_is_a_usable_node_id() -> None:
    """Sweep: every such name the model accepts as an id compiles into a model that runs."""
    import builtins
    import keyword

    from torch import fx

    from engine.graph.model import NODE_ID_PATTERN

    names = set(keyword.kwlist) | set(dir(builtins)) | set(dir(fx.GraphModule(nn.Module(), fx.Graph())))
    names |= {"operator", "math", "fx", "getattr", "inf", "nan"}
    failures = []
    for name in sorted(n for n in names if NODE_ID_PATTERN.match(n)):
        for position in range(3):
            ids = ["x", "fc", "act"]
            ids[position] = name
            graph = Graph()
            chain(graph, node("input", ids[0], shape=[4]), node("linear", ids[1], out_features=3),
                  node("flatten", ids[2]), node("output", "out"))
            try:
                compiled = compile_graph(graph)
                out = compiled.module(*compiled.example_inputs(batch=2))
                assert out.shape == (2, 3)
            except Exception as exc:  # noqa: BLE001 - collect every failing name
                failures.append(f"{name} as {['input', 'linear', 'flatten'][position]}: "
                                f"{type(exc).__name__}: {str(exc)[:80]}")
    assert not failures, "\n".join(failures)


def test_activations_overwrite_what_only_they_read_after_a_convolution_or_a_sum() -> None:
    graph = Graph()
    chain(graph, node("input", "image", shape=[3, 8, 8]), node("conv2d", "conv", out_channels=4, padding=[1, 1]),
          node("relu", "act"), node("conv2d", "conv2", out_channels=4, padding=[1, 1]), node("relu", "act2"),
          node("add", "plus"), node("relu", "act3"), node("output", "out"))
    connect(graph, "act", "plus", "in2")  # a skip connection: act's result is read by conv2 and plus
    compiled = compile_graph(graph)
    calls = {n.name: n.kwargs.get("inplace", False) for n in compiled.module.graph.nodes if n.op == "call_function"
             and "relu" in str(n.target)}
    assert calls == {"act": True, "act2": True, "act3": True}
    x = compiled.example_inputs(batch=2)[0].requires_grad_()
    compiled.module(x).sum().backward()  # autograd accepts every overwrite


def test_an_activation_never_overwrites_a_value_read_elsewhere_or_saved_for_backward() -> None:
    graph = Graph()
    chain(graph, node("input", "image", shape=[3, 8, 8]), node("conv2d", "conv", out_channels=3, padding=[1, 1]),
          node("relu", "act"), node("output", "out"))
    chain(graph, "conv", node("output", "raw"))  # conv's output is also returned: act must copy
    chain(graph, "image", node("sigmoid", "gate"), node("relu", "after_sigmoid"), node("output", "out3"))
    compiled = compile_graph(graph)
    inplace = {n.name: n.kwargs.get("inplace", False) for n in compiled.module.graph.nodes
               if n.op == "call_function" and "relu" in str(n.target)}
    assert inplace == {"act": False, "after_sigmoid": False}
    x = compiled.example_inputs(batch=2)[0]
    out, raw, _ = compiled.module(x)
    assert (raw < 0).any() and torch.equal(out, torch.relu(raw))
