"""Diagnostics name the node, say what is wrong and what to do; inference is incremental."""

from __future__ import annotations

import pytest

from engine.graph import Edge, Graph, GraphError, Node
from engine.shapes import ShapeInference, analyze


def chain(*nodes: Node) -> Graph:
    g = Graph()
    for node in nodes:
        g.add_node(node)
    for a, b in zip(nodes, nodes[1:]):
        g.add_edge(Edge(a.id, b.id, b.layer.input_ports(b.params)[0]))
    return g


def messages(g: Graph) -> list[str]:
    return [d.format(g) for d in analyze(g).diagnostics]


def test_linear_after_an_image_suggests_flatten() -> None:
    g = chain(Node("x", "input", {"shape": [16, 4, 4]}), Node("fc", "linear"), Node("out", "output"))
    assert messages(g) == ["node fc (Linear): acts on the last dimension only, the width 4 of the image (N, 16, 4, 4): "
                           "to classify an image, insert a Flatten (or a global pooling) before it"]
    assert [d.severity for d in analyze(g).diagnostics] == ["warning"]  # it computes: a channels-last block wants it


def test_linear_on_channels_last_features_is_fine() -> None:
    g = chain(Node("x", "input", {"shape": [8, 8, 96]}), Node("fc", "linear", {"out_features": 384}),
              Node("out", "output"))
    assert messages(g) == [] and analyze(g).nodes["fc"].output.dims == (8, 8, 384)


def test_cycle_is_reported_on_each_node_with_its_path() -> None:
    g = chain(Node("x", "input", {"shape": [4]}), Node("a", "add"), Node("fc", "linear", {"out_features": 4}),
              Node("out", "output"))
    g.add_edge(Edge("fc", "a", "in2"))
    lines = messages(g)
    assert "node a (Add): is part of a cycle a -> fc -> a: data must flow one way; remove one of these " \
           "connections" in lines
    assert any(line.startswith("node fc (Linear): is part of a cycle") for line in lines)
    g.remove_edge(g.edge_into("a", "in2"))
    g.add_edge(Edge("x", "a", "in2"))
    assert messages(g) == []


def test_unconnected_inputs_and_missing_input_output() -> None:
    g = Graph()
    g.add_node(Node("fc", "linear"))
    lines = messages(g)
    assert lines[0].startswith("graph: the graph has no Input")
    assert lines[1].startswith("graph: the graph has no Output")
    assert "node fc (Linear): its input is not connected: drag a connection from a layer's output to it" in lines
    g.add_node(Node("add", "add"))
    assert any("node add (Add): input 'in2' is not connected" in line for line in messages(g))


def test_merge_size_mismatch_names_both_shapes() -> None:
    g = Graph()
    for node in (Node("x", "input", {"shape": [16, 8, 8]}), Node("c", "conv2d", {"out_channels": 32,
                 "padding": [1, 1]}), Node("add", "add"), Node("out", "output")):
        g.add_node(node)
    for e in (Edge("x", "c", "in"), Edge("x", "add", "in1"), Edge("c", "add", "in2"), Edge("add", "out", "in")):
        g.add_edge(e)
    (line,) = messages(g)
    assert line.startswith("node add (Add): input in2 is (N, 32, 8, 8) but in1 is (N, 16, 8, 8)")


def test_sequence_layer_fed_an_image_suggests_reshape() -> None:
    g = chain(Node("x", "input", {"shape": [1, 8, 8]}), Node("lstm", "lstm"), Node("out", "output"))
    (line,) = messages(g)
    assert line.startswith("node lstm (LSTM): expects (N, T, features) but receives (N, 1, 8, 8)")
    assert "Reshape" in line


def test_invalid_parameter_names_the_field() -> None:
    g = chain(Node("x", "input", {"shape": [4]}), Node("fc", "linear", {"out_features": 0}), Node("out", "output"))
    (diagnostic,) = analyze(g).diagnostics
    assert diagnostic.field == "out_features"
    assert diagnostic.format(g) == "node fc (Linear): out_features must be between 1 and 1000000, got 0"


def test_kernel_larger_than_input_collapses() -> None:
    g = chain(Node("x", "input", {"shape": [1, 4, 4]}), Node("c", "conv2d", {"kernel_size": [5, 5]}),
              Node("out", "output"))
    (line,) = messages(g)
    assert "kernel 5x5 is larger than the padded input 4x4" in line


def test_embedding_needs_token_ids_and_tokens_need_embedding() -> None:
    g = chain(Node("t", "token_input"), Node("fc", "linear"), Node("out", "output"))
    assert "insert an Embedding before it" in messages(g)[0]


def test_dead_end_nodes_warn_but_do_not_invalidate() -> None:
    g = chain(Node("x", "input", {"shape": [4]}), Node("fc", "linear"), Node("out", "output"))
    g.add_node(Node("lonely", "relu"))
    g.add_edge(Edge("x", "lonely", "in"))
    result = analyze(g)
    assert result.valid
    (warning,) = result.diagnostics
    assert warning.severity == "warning" and warning.node == "lonely"
    assert result.parameters == 4 * 64 + 64


def test_lowering_merge_inputs_below_connected_ports_is_refused() -> None:
    g = chain(Node("x", "input", {"shape": [4]}), Node("add", "add", {"num_inputs": 3}), Node("out", "output"))
    g.add_edge(Edge("x", "add", "in2"))
    g.add_edge(Edge("x", "add", "in3"))
    assert analyze(g).valid
    with pytest.raises(GraphError, match="would remove connected input"):
        g.set_param("add", "num_inputs", 2)
    g.remove_edge(g.edge_into("add", "in3"))
    g.set_param("add", "num_inputs", 2)
    assert analyze(g).valid


def test_incremental_inference_updates_only_what_changed() -> None:
    g = chain(Node("x", "input", {"shape": [8]}), *(Node(f"fc{i}", "linear", {"out_features": 8})
              for i in range(50)), Node("out", "output"))
    inference = ShapeInference(g)
    inference.analyze()
    calls = []
    original = inference._infer_node

    def counting(node: Node):  # noqa: ANN202
        calls.append(node.id)
        return original(node)

    inference._infer_node = counting  # type: ignore[method-assign]
    g.set_param("fc49", "bias", False)
    result = inference.analyze()
    assert calls == ["fc49"]
    calls.clear()
    g.set_param("fc10", "out_features", 9)  # changes fc10's output and fc11's parameter count only
    result = inference.analyze()
    assert calls == ["fc10", "fc11"]
    assert result.nodes["fc11"].parameters == 9 * 8 + 8
    assert str(result.nodes["fc10"].output) == "(N, 9)"
    inference.close()


@pytest.mark.parametrize("type_id", ["linear", "conv2d", "lstm", "self_attention", "embedding", "add"])
def test_defaults_on_an_unconnected_node_never_raise(type_id: str) -> None:
    g = Graph()
    g.add_node(Node("n", type_id))
    assert not analyze(g).valid
