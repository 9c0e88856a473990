"""The node-editor canvas shows the model and edits it only through undo commands."""

from __future__ import annotations


import pytest
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDropEvent, QKeyEvent, QMouseEvent
from PySide6.QtWidgets import QApplication

from engine.graph import Edge, Graph, Node, Project
from engine.graph.fileformat import dumps
from engine.layers import get_layer
from gui import commands
from gui.canvas import CanvasView, EdgeItem, NodeItem
from gui.canvas.labels import count_text, key_params_text
from gui.canvas.quick_add import QuickAddPopup, matching_layers
from gui.document import Document
from gui.style import DARK, LAYER_MIME
from tests.conftest import ROOT

TEMPLATE = ROOT / "templates" / "cnn_digits.json"


def chain_document() -> Document:
    """x -> fc1 -> relu1 -> fc2 -> out laid out left to right, plus an unconnected relu2."""
    graph = Graph()
    graph.extend([Node("x", "input", {"shape": [4]}, (0, 0)),
                  Node("fc1", "linear", {"out_features": 16}, (240, 0)),
                  Node("relu1", "relu", {}, (480, 0)),
                  Node("fc2", "linear", {"out_features": 3}, (720, 0)),
                  Node("out", "output", {}, (960, 0)),
                  Node("relu2", "relu", {}, (480, 200))],
                 [Edge("x", "fc1", "in"), Edge("fc1", "relu1", "in"), Edge("relu1", "fc2", "in"),
                  Edge("fc2", "out", "in")])
    return Document(Project(graph))


@pytest.fixture
def view(qtbot) -> CanvasView:  # noqa: ANN001
    canvas = CanvasView(chain_document())
    qtbot.addWidget(canvas)
    canvas.resize(1200, 700)
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.set_zoom(1.0)
    canvas.centerOn(600, 100)
    return canvas


def send_mouse(view: CanvasView, kind: QEvent.Type, scene_pos: QPointF,
               button: Qt.MouseButton = Qt.MouseButton.LeftButton,
               modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    """Deliver one mouse event at a scene position to the view's viewport."""
    pos = QPointF(view.mapFromScene(scene_pos))
    held = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else button
    event = QMouseEvent(kind, pos, QPointF(view.viewport().mapToGlobal(pos.toPoint())),
                        Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else button, held, modifiers)
    QApplication.sendEvent(view.viewport(), event)


def drag(view: CanvasView, start: QPointF, end: QPointF, steps: int = 5) -> None:
    """Press at ``start``, move to ``end`` in steps, release there."""
    send_mouse(view, QEvent.Type.MouseButtonPress, start)
    for i in range(1, steps + 1):
        send_mouse(view, QEvent.Type.MouseMove, start + (end - start) * (i / steps))
    send_mouse(view, QEvent.Type.MouseButtonRelease, end)


def press_key(view: CanvasView, key: Qt.Key, modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    QApplication.sendEvent(view, QKeyEvent(QEvent.Type.KeyPress, key, modifiers))


def settle(view: CanvasView) -> None:
    """Run the document's coalesced analysis now."""
    view.document.refresh_analysis()


# ------------------------------------------------------------------ showing the model
def test_one_item_per_node_and_edge_at_the_model_positions(qtbot) -> None:  # noqa: ANN001
    document = Document.open(TEMPLATE)
    canvas = CanvasView(document)
    qtbot.addWidget(canvas)
    scene = canvas.scene()
    assert set(scene.nodes) == set(document.graph.nodes)
    assert len(scene.edges) == len(document.graph.edges)
    assert sum(isinstance(i, NodeItem) for i in scene.items()) == len(document.graph)
    assert sum(isinstance(i, EdgeItem) for i in scene.items()) == len(document.graph.edges)
    for node in document.graph:
        item = scene.nodes[node.id]
        assert (item.pos().x(), item.pos().y()) == node.position
    conv = scene.nodes["conv1"]
    assert conv._rows[0][1] == "16 · 3x3 · s1"
    assert ("text", "(N, 16, 8, 8)") in conv._rows and ("subtle", "160 params") in conv._rows


def test_edge_label_shows_the_shape_it_carries(view: CanvasView) -> None:
    scene = view.scene()
    edge_item = scene.edges[Edge("fc1", "relu1", "in")]
    assert edge_item.label == "(N, 16)" and edge_item.label_visible
    assert "(N, 16)" in edge_item.toolTip() and not edge_item.error


def test_invalid_node_is_marked_and_explains_itself(view: CanvasView) -> None:
    graph = view.document.graph
    view.push(commands.add_node(graph, Node("conv", "conv1d", {}, (720, 200))))
    view.push(commands.connect(graph, Edge("relu1", "conv", "in")))  # a Conv1d now gets (N, 16)
    settle(view)
    item = view.scene().nodes["conv"]
    assert item.has_error
    message = next(d.message for d in view.document.analysis.nodes["conv"].diagnostics if d.severity == "error")
    assert message in item.toolTip()
    assert view.scene().edges[Edge("relu1", "conv", "in")].error


def test_a_warning_explains_itself_without_marking_an_error(view: CanvasView) -> None:
    graph = view.document.graph
    view.push(commands.set_param(graph, "x", "shape", [1, 8, 8]))  # a Linear now gets an image
    settle(view)
    item = view.scene().nodes["fc1"]
    assert not item.has_error and "insert a Flatten" in item.toolTip()
    assert not view.scene().edges[Edge("x", "fc1", "in")].error
    assert not view.scene().edges[Edge("fc1", "relu1", "in")].error
    assert view.scene().nodes["relu2"].has_error  # unconnected input
    view.document.undo_stack.undo()
    settle(view)
    assert not item.has_error and not view.scene().edges[Edge("x", "fc1", "in")].error


def test_parameter_edits_update_the_card_and_its_ports(view: CanvasView) -> None:
    graph = view.document.graph
    view.push(commands.add_node(graph, Node("add1", "add", {}, (600, 300))))
    item = view.scene().nodes["add1"]
    assert item.layout.inputs == ("in1", "in2")
    view.push(commands.set_param(graph, "add1", "num_inputs", 4))
    assert item.layout.inputs == ("in1", "in2", "in3", "in4")
    assert key_params_text(get_layer("add"), graph.nodes["add1"].params) in item._rows[0][1]


# ----------------------------------------------------------------------- palette drops
def test_dropping_a_palette_layer_creates_it_at_the_drop_point(view: CanvasView) -> None:
    mime = QMimeData()
    mime.setData(LAYER_MIME, b"conv2d")
    drop_at = QPoint(300, 420)
    event = QDropEvent(QPointF(drop_at), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    view.dropEvent(event)
    added = [n for n in view.document.graph if n.type_id == "conv2d"]
    assert len(added) == 1 and added[0].id == "conv1"
    expected = view.mapToScene(drop_at)
    assert abs(added[0].position[0] - expected.x()) <= 5 and abs(added[0].position[1] - expected.y()) <= 5
    assert "conv1" in view.scene().nodes and view.selected_node_ids() == ["conv1"]
    assert view.document.undo_stack.count() == 1


def test_dropping_an_unknown_layer_says_so(view: CanvasView) -> None:
    mime = QMimeData()
    mime.setData(LAYER_MIME, b"no_such_layer")
    event = QDropEvent(QPointF(300, 400), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    view.dropEvent(event)
    assert len(view.document.graph) == 6 and "no_such_layer" in view.last_message


# ----------------------------------------------------------------------- connecting
def test_dragging_from_an_output_to_a_free_input_connects(view: CanvasView) -> None:
    scene = view.scene()
    drag(view, scene.nodes["fc1"].output_scene_pos(), scene.nodes["relu2"].input_scene_pos("in"))
    assert view.document.graph.edge_into("relu2", "in") == Edge("fc1", "relu2", "in")
    assert Edge("fc1", "relu2", "in") in scene.edges
    view.document.undo_stack.undo()
    assert view.document.graph.edge_into("relu2", "in") is None and Edge("fc1", "relu2", "in") not in scene.edges


def test_dragging_backwards_from_a_free_input_connects(view: CanvasView) -> None:
    scene = view.scene()
    drag(view, scene.nodes["relu2"].input_scene_pos("in"), scene.nodes["relu1"].output_scene_pos())
    assert view.document.graph.edge_into("relu2", "in") == Edge("relu1", "relu2", "in")


def test_compatible_ports_light_up_while_dragging(view: CanvasView) -> None:
    scene = view.scene()
    start = scene.nodes["fc1"].output_scene_pos()
    send_mouse(view, QEvent.Type.MouseButtonPress, start)
    send_mouse(view, QEvent.Type.MouseMove, start + QPointF(40, 40))
    assert scene.nodes["relu2"].highlights == {"in": "free"}
    assert scene.nodes["fc2"].highlights == {"in": "replace"}
    assert scene.nodes["fc1"].highlights == {} and scene.nodes["relu1"].highlights == {}  # itself, and its edge
    send_mouse(view, QEvent.Type.MouseButtonRelease, scene.nodes["fc1"].pos() + QPointF(60, 40))
    assert all(not item.highlights for item in scene.nodes.values())


def test_an_incompatible_connection_is_refused_with_its_reason(view: CanvasView) -> None:
    scene = view.scene()
    before = dumps(view.document.project)
    drag(view, scene.nodes["relu1"].output_scene_pos(), scene.nodes["relu1"].input_scene_pos("in"))
    assert "would connect relu1 to itself" in view.last_message
    drag(view, scene.nodes["relu2"].output_scene_pos(), scene.nodes["fc1"].output_scene_pos())
    assert "output to an output" in view.last_message
    drag(view, scene.nodes["fc1"].output_scene_pos(), scene.nodes["relu1"].input_scene_pos("in"))
    assert "input 'in' of node relu1 is already connected to fc1" in view.last_message
    assert dumps(view.document.project) == before and view.document.undo_stack.count() == 0


def test_dropping_on_a_connected_input_replaces_its_edge_in_one_step(view: CanvasView) -> None:
    scene = view.scene()
    graph = view.document.graph
    drag(view, scene.nodes["x"].output_scene_pos(), scene.nodes["fc2"].input_scene_pos("in"))
    assert graph.edge_into("fc2", "in") == Edge("x", "fc2", "in") and Edge("relu1", "fc2", "in") not in graph.edges
    assert view.document.undo_stack.count() == 1
    view.document.undo_stack.undo()
    assert graph.edge_into("fc2", "in") == Edge("relu1", "fc2", "in")


def test_dropping_on_a_node_body_uses_its_free_input(view: CanvasView) -> None:
    scene = view.scene()
    drag(view, scene.nodes["fc1"].output_scene_pos(), scene.nodes["relu2"].pos() + QPointF(75, 50))
    assert view.document.graph.edge_into("relu2", "in") == Edge("fc1", "relu2", "in")


def test_pulling_an_edge_off_its_input_onto_empty_canvas_disconnects(view: CanvasView) -> None:
    scene = view.scene()
    drag(view, scene.nodes["relu1"].input_scene_pos("in"), QPointF(560, 420))
    assert view.document.graph.edge_into("relu1", "in") is None
    view.document.undo_stack.undo()
    assert view.document.graph.edge_into("relu1", "in") == Edge("fc1", "relu1", "in")


def test_pulling_an_edge_onto_another_input_moves_it(view: CanvasView) -> None:
    scene = view.scene()
    graph = view.document.graph
    drag(view, scene.nodes["relu1"].input_scene_pos("in"), scene.nodes["relu2"].input_scene_pos("in"))
    assert graph.edge_into("relu1", "in") is None and graph.edge_into("relu2", "in") == Edge("fc1", "relu2", "in")
    assert view.document.undo_stack.count() == 1


def test_dropping_a_connection_on_empty_canvas_adds_a_connected_node(view: CanvasView, qtbot) -> None:  # noqa: ANN001
    scene = view.scene()
    drop_at = QPointF(700, 300)
    drag(view, scene.nodes["relu2"].output_scene_pos(), drop_at)
    popup = view.gestures.popup
    assert isinstance(popup, QuickAddPopup) and popup.isVisible()
    assert "input" not in popup.visible_type_ids()  # layers without an input cannot be fed
    popup.set_filter("dropout")
    assert popup.choose_current()
    graph = view.document.graph
    assert graph.edge_into("dropout1", "in") == Edge("relu2", "dropout1", "in")
    port = scene.nodes["dropout1"].input_scene_pos("in")
    assert abs(port.x() - drop_at.x()) <= 5 and abs(port.y() - drop_at.y()) <= 5
    assert view.document.undo_stack.count() == 1
    view.document.undo_stack.undo()
    assert "dropout1" not in graph.nodes and "dropout1" not in scene.nodes


# ----------------------------------------------------------------- deleting, moving
def test_delete_removes_a_node_with_its_edges_and_undo_restores_both(view: CanvasView) -> None:
    scene = view.scene()
    before = dumps(view.document.project)
    view.select_nodes(["relu1"])
    press_key(view, Qt.Key.Key_Delete)
    graph = view.document.graph
    assert "relu1" not in graph.nodes and "relu1" not in scene.nodes
    assert len(graph.edges) == 2 and len(scene.edges) == 2
    view.document.undo_stack.undo()
    assert dumps(view.document.project) == before
    assert "relu1" in scene.nodes and Edge("fc1", "relu1", "in") in scene.edges and len(scene.edges) == 4


def test_delete_removes_selected_edges_too(view: CanvasView) -> None:
    scene = view.scene()
    scene.edges[Edge("x", "fc1", "in")].setSelected(True)
    press_key(view, Qt.Key.Key_Backspace)
    assert view.document.graph.edge_into("fc1", "in") is None and "x" in view.document.graph.nodes


def test_moving_nodes_pushes_one_undo_command_on_release(view: CanvasView) -> None:
    scene = view.scene()
    graph = view.document.graph
    view.select_nodes(["fc1", "relu1"], center=False)
    grab = scene.nodes["fc1"].pos() + QPointF(75, 50)
    send_mouse(view, QEvent.Type.MouseButtonPress, grab)
    for step in range(1, 8):
        send_mouse(view, QEvent.Type.MouseMove, grab + QPointF(10 * step, 5 * step))
        assert graph.nodes["fc1"].position == (240.0, 0.0)  # the model moves only on release
    send_mouse(view, QEvent.Type.MouseButtonRelease, grab + QPointF(70, 35))
    assert view.document.undo_stack.count() == 1
    assert graph.nodes["fc1"].position == (310.0, 40.0) and graph.nodes["relu1"].position == (550.0, 40.0)
    edge = scene.edges[Edge("x", "fc1", "in")]
    assert edge.boundingRect().contains(scene.nodes["fc1"].input_scene_pos("in"))
    view.document.undo_stack.undo()
    assert scene.nodes["fc1"].pos() == QPointF(240, 0) and scene.nodes["relu1"].pos() == QPointF(480, 0)


def test_read_only_document_refuses_edits_and_says_why(view: CanvasView) -> None:
    scene = view.scene()
    view.document.read_only_reason = "training is running"
    before = dumps(view.document.project)
    drag(view, scene.nodes["fc1"].output_scene_pos(), scene.nodes["relu2"].input_scene_pos("in"))
    assert "training is running" in view.last_message
    view.last_message = ""
    grab = scene.nodes["relu2"].pos() + QPointF(75, 50)
    drag(view, grab, grab + QPointF(80, 40))
    assert scene.nodes["relu2"].pos() == QPointF(480, 200) and "training is running" in view.last_message
    view.select_nodes(["relu2"])
    assert not view.delete_selection()
    assert view.add_node_at("relu") is None
    assert dumps(view.document.project) == before


# ------------------------------------------------------------- selection and zoom
def test_selection_changed_emits_selected_ids_in_document_order(view: CanvasView, qtbot) -> None:  # noqa: ANN001
    with qtbot.waitSignal(view.selection_changed) as blocker:
        view.select_nodes(["relu1", "fc1"])
    assert blocker.args == [["fc1", "relu1"]]
    with qtbot.waitSignal(view.selection_changed) as blocker:
        scene_pos = view.scene().nodes["fc2"].pos() + QPointF(75, 50)
        send_mouse(view, QEvent.Type.MouseButtonPress, scene_pos)
        send_mouse(view, QEvent.Type.MouseButtonRelease, scene_pos)
    assert view.selected_node_ids() == ["fc2"]
    for kind in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease):
        send_mouse(view, kind, view.scene().nodes["x"].pos() + QPointF(75, 50), modifiers=Qt.KeyboardModifier.ShiftModifier)
    assert view.selected_node_ids() == ["x", "fc2"]
    for kind in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease):
        send_mouse(view, kind, view.scene().nodes["fc2"].pos() + QPointF(75, 50),
                   modifiers=Qt.KeyboardModifier.ControlModifier)
    assert view.selected_node_ids() == ["x"]


def test_zoom_is_clamped_and_fit_all_frames_every_node(view: CanvasView) -> None:
    view.zoom_in()
    assert view.zoom_factor() == pytest.approx(1.25)
    press_key(view, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    assert view.zoom_factor() == pytest.approx(1.0)
    for _ in range(30):
        view.zoom_in()
    assert view.zoom_factor() == pytest.approx(4.0)
    for _ in range(40):
        view.zoom_out()
    assert view.zoom_factor() == pytest.approx(0.1)
    press_key(view, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert view.zoom_factor() == pytest.approx(1.0)
    view.centerOn(5000, 5000)
    press_key(view, Qt.Key.Key_F)
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    for item in view.scene().nodes.values():
        assert visible.contains(item.sceneBoundingRect())


def test_theme_switch_recolours_items(view: CanvasView) -> None:
    view.set_theme(DARK)
    assert view.scene().kit.theme is DARK and view.scene().nodes["fc1"].kit.theme is DARK
    assert not view.grab().isNull()


# --------------------------------------------------------------------- quick-add
def test_quick_add_filters_by_title_type_and_category() -> None:
    from engine.layers import all_layers
    layers = all_layers()
    titles = [layer.title for layer in matching_layers("CONV", layers)]
    assert titles[:2] == ["Conv1d", "Conv2d"] and "ConvTranspose2d" in titles
    assert {layer.type_id for layer in matching_layers("pooling", layers)} >= {"maxpool2d", "avgpool2d"}
    assert [layer.type_id for layer in matching_layers("log_soft", layers)] == ["log_softmax"]
    assert matching_layers("zzz", layers) == []


def test_quick_add_opens_at_the_cursor_and_adds_the_chosen_layer(view: CanvasView, qtbot) -> None:  # noqa: ANN001
    press_key(view, Qt.Key.Key_Tab)
    popup = view.gestures.popup
    assert popup is not None and popup.isVisible()
    qtbot.keyClicks(popup.search, "sigm")
    assert popup.visible_type_ids()[0] == "sigmoid"  # a title starting with the text comes first
    qtbot.keyClick(popup.search, Qt.Key.Key_Return)
    assert "sigmoid1" in view.document.graph.nodes and view.selected_node_ids() == ["sigmoid1"]
    assert not popup.isVisible()


def test_quick_add_closes_on_escape(view: CanvasView, qtbot) -> None:  # noqa: ANN001
    view.open_quick_add(QPoint(100, 100))
    popup = view.gestures.popup
    qtbot.keyClick(popup.search, Qt.Key.Key_Escape)
    assert not popup.isVisible() and len(view.document.graph) == 6


def test_labels_read_compactly() -> None:
    assert key_params_text(get_layer("conv2d"), {"out_channels": 16, "kernel_size": (3, 3), "stride": (1, 1)}) \
        == "16 · 3x3 · s1"
    assert key_params_text(get_layer("maxpool2d"), {"kernel_size": (2, 2), "stride": (0, 0)}) == "2x2"
    assert key_params_text(get_layer("lstm"), {"hidden_size": 64, "num_layers": 1, "output": "last"}) \
        == "64 · 1 layer · last"
    assert count_text(0) == "no params" and count_text(1) == "1 param" and count_text(61706) == "61,706 params"


def test_switching_documents_rebuilds_the_scene(view: CanvasView) -> None:
    other = Document.open(TEMPLATE)
    view.set_document(other)
    assert set(view.scene().nodes) == set(other.graph.nodes)
    view.set_document(None)
    assert view.canvas_scene() is None and view.selected_node_ids() == []


def test_dragging_on_empty_canvas_selects_with_a_rubber_band(view: CanvasView) -> None:
    drag(view, QPointF(200, -60), QPointF(650, 150))
    assert view.selected_node_ids() == ["fc1", "relu1"]
    assert view.document.undo_stack.count() == 0


def test_middle_button_pans_and_the_wheel_zooms_towards_the_cursor(view: CanvasView) -> None:
    from PySide6.QtGui import QWheelEvent
    start = view.mapToScene(view.viewport().rect().center())
    middle = Qt.MouseButton.MiddleButton
    anchor = QPointF(600, 100)
    send_mouse(view, QEvent.Type.MouseButtonPress, anchor, button=middle)
    moved = QPointF(view.mapFromScene(anchor)) + QPointF(100, 50)
    event = QMouseEvent(QEvent.Type.MouseMove, moved, QPointF(view.viewport().mapToGlobal(moved.toPoint())),
                        Qt.MouseButton.NoButton, middle, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.viewport(), event)
    send_mouse(view, QEvent.Type.MouseButtonRelease, view.mapToScene(moved.toPoint()), button=middle)
    shifted = view.mapToScene(view.viewport().rect().center())
    assert shifted.x() == pytest.approx(start.x() - 100, abs=2) and shifted.y() == pytest.approx(start.y() - 50, abs=2)
    cursor = QPointF(300, 200)
    under = view.mapToScene(cursor.toPoint())
    wheel = QWheelEvent(cursor, QPointF(view.viewport().mapToGlobal(cursor.toPoint())), QPoint(0, 0), QPoint(0, 120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), wheel)
    assert view.zoom_factor() == pytest.approx(1.25)
    after = view.mapToScene(cursor.toPoint())
    assert after.x() == pytest.approx(under.x(), abs=2) and after.y() == pytest.approx(under.y(), abs=2)


def test_double_click_on_empty_canvas_opens_quick_add(view: CanvasView) -> None:
    send_mouse(view, QEvent.Type.MouseButtonDblClick, QPointF(300, 400))
    popup = view.gestures.popup
    assert popup is not None and popup.isVisible()
    popup.close()


def test_dragging_an_unselected_node_moves_just_it_in_one_step(view: CanvasView) -> None:
    scene = view.scene()
    view.select_nodes(["fc1"], center=False)
    grab = scene.nodes["relu2"].pos() + QPointF(75, 50)
    drag(view, grab, grab + QPointF(100, 20))
    assert view.document.graph.nodes["relu2"].position == (580.0, 220.0)
    assert view.document.graph.nodes["fc1"].position == (240.0, 0.0)
    assert view.document.undo_stack.count() == 1 and view.selected_node_ids() == ["relu2"]


def test_a_connection_drag_survives_the_graph_changing_under_it(view: CanvasView) -> None:
    scene = view.scene()
    start = scene.nodes["relu2"].output_scene_pos()
    send_mouse(view, QEvent.Type.MouseButtonPress, start)
    send_mouse(view, QEvent.Type.MouseMove, start + QPointF(30, 30))
    view.document.push(commands.remove(view.document.graph, ["relu2"]))
    send_mouse(view, QEvent.Type.MouseMove, start + QPointF(60, 30))
    send_mouse(view, QEvent.Type.MouseButtonRelease, scene.nodes["fc2"].input_scene_pos("in"))
    assert view.document.graph.edge_into("fc2", "in") == Edge("relu1", "fc2", "in")
    assert view.gestures.drag is None


def test_far_out_the_scene_paints_one_overview_and_still_takes_clicks(view: CanvasView) -> None:
    from PySide6.QtWidgets import QGraphicsItem
    scene = view.scene()
    view.set_zoom(0.15)
    no_contents = QGraphicsItem.GraphicsItemFlag.ItemHasNoContents
    assert scene.overview_mode and scene.overview.isVisible()
    assert all(item.flags() & no_contents for item in scene.nodes.values())
    view.centerOn(scene.nodes["fc2"].sceneBoundingRect().center())
    target = scene.nodes["fc2"].pos() + QPointF(75, 50)
    send_mouse(view, QEvent.Type.MouseButtonPress, target)
    send_mouse(view, QEvent.Type.MouseButtonRelease, target)
    assert view.selected_node_ids() == ["fc2"]
    assert not view.grab().isNull()
    view.zoom_reset()
    assert not scene.overview_mode and not scene.overview.isVisible()
    assert not any(item.flags() & no_contents for item in scene.nodes.values())


def test_space_and_left_drag_pans_instead_of_selecting(view: CanvasView) -> None:
    start = view.mapToScene(view.viewport().rect().center())
    press_key(view, Qt.Key.Key_Space)
    grab = view.scene().nodes["fc1"].pos() + QPointF(75, 50)  # on a node: still pans, does not move it
    send_mouse(view, QEvent.Type.MouseButtonPress, grab)
    moved = QPointF(view.mapFromScene(grab)) + QPointF(-120, 0)
    event = QMouseEvent(QEvent.Type.MouseMove, moved, QPointF(view.viewport().mapToGlobal(moved.toPoint())),
                        Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.viewport(), event)
    send_mouse(view, QEvent.Type.MouseButtonRelease, view.mapToScene(moved.toPoint()))
    QApplication.sendEvent(view, QKeyEvent(QEvent.Type.KeyRelease, Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier))
    assert view.mapToScene(view.viewport().rect().center()).x() == pytest.approx(start.x() + 120, abs=2)
    assert view.document.graph.nodes["fc1"].position == (240.0, 0.0) and view.selected_node_ids() == []
    assert not view.space_held
