"""Comments on the canvas: notes and frames people write, saved in the project and undoable."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QKeyEvent, QMouseEvent
from PySide6.QtWidgets import QApplication

from engine.graph.fileformat import load_project
from gui.canvas.comment_item import CommentItem
from gui.main_window import MainWindow


@pytest.fixture
def window(window: MainWindow, qtbot) -> MainWindow:  # noqa: ANN001 - the conftest's window, shown at 1280 x 800
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    return window


def _mouse(view, kind: QEvent.Type, scene_pos: QPointF, buttons: Qt.MouseButton) -> None:  # noqa: ANN001
    pos = QPointF(view.mapFromScene(scene_pos))
    event = QMouseEvent(kind, pos, QPointF(view.viewport().mapToGlobal(pos.toPoint())), Qt.MouseButton.LeftButton,
                        buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.viewport(), event)


def _drag(view, start: QPointF, end: QPointF) -> None:  # noqa: ANN001
    _mouse(view, QEvent.Type.MouseButtonPress, start, Qt.MouseButton.LeftButton)
    for step in range(1, 6):
        _mouse(view, QEvent.Type.MouseMove, start + (end - start) * step / 5, Qt.MouseButton.LeftButton)
    _mouse(view, QEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton)


def test_a_frame_around_layers_is_written_saved_and_undone(window: MainWindow, tmp_path: Path) -> None:
    doc, canvas = window.document, window.canvas
    canvas.select_nodes(["conv1", "relu1"], center=False)
    window.actions["add_comment"].trigger()
    scene = canvas.scene()
    item = scene.comments.items["c1"]
    assert item.editing and item.isSelected() and canvas.editing_text()
    for node_id in ("conv1", "relu1"):
        assert item.scene_rect().contains(scene.nodes[node_id].sceneBoundingRect().adjusted(9, 9, -9, -9))
    item.label.setPlainText("Feature extractor")
    item.finish_editing(keep=True)
    assert doc.project.comments[0].text == "Feature extractor" and not canvas.editing_text()
    assert window._save_to(tmp_path / "noted.json")
    assert load_project(tmp_path / "noted.json").comments == doc.project.comments
    doc.undo()
    assert doc.project.comments[0].text == "Comment" and item.label.toPlainText() == "Comment"
    doc.undo()
    assert doc.project.comments == [] and "c1" not in scene.comments.items
    doc.redo()
    doc.redo()
    assert scene.comments.items["c1"].label.toPlainText() == "Feature extractor"
    assert window.open_project(tmp_path / "noted.json")
    assert [i.label.toPlainText() for i in window.canvas.scene().comments.items.values()] == ["Feature extractor"]


def test_dragging_a_frame_carries_its_layers_in_one_step(window: MainWindow) -> None:
    doc, canvas = window.document, window.canvas
    canvas.set_zoom(1.0)
    canvas.select_nodes(["conv1"], center=True)
    comment_id = canvas.add_comment()
    item: CommentItem = canvas.scene().comments.items[comment_id]
    item.finish_editing(keep=False)
    canvas.scene().clearSelection()
    before_node, before_rect = doc.graph.nodes["conv1"].position, item.comment.rect
    other = doc.graph.nodes["relu1"].position
    grab = item.scene_rect().topLeft() + QPointF(60, 10)  # on the text band
    steps = doc.undo_stack.count()
    _drag(canvas, grab, grab + QPointF(40, 60))
    assert doc.undo_stack.count() == steps + 1
    assert doc.graph.nodes["conv1"].position == (before_node[0] + 40, before_node[1] + 60)
    assert doc.project.comments[0].rect[:2] == (before_rect[0] + 40, before_rect[1] + 60)
    assert doc.graph.nodes["relu1"].position == other  # outside the frame: stays
    doc.undo()
    assert doc.graph.nodes["conv1"].position == before_node and doc.project.comments[0].rect == before_rect


def test_a_click_inside_a_frame_reaches_the_canvas_and_delete_removes_the_comment(window: MainWindow) -> None:
    doc, canvas = window.document, window.canvas
    canvas.set_zoom(1.0)
    canvas.select_nodes(["conv1"], center=True)
    comment_id = canvas.add_comment()
    scene = canvas.scene()
    item = scene.comments.items[comment_id]
    item.finish_editing(keep=True)
    body = scene.nodes["conv1"].sceneBoundingRect().center()
    assert scene.node_item_at(body) is not None  # the card inside, not the comment, takes the click
    assert not item.shape().contains(item.mapFromScene(item.scene_rect().center() + QPointF(0, 30)))
    scene.clearSelection()
    item.setSelected(True)
    canvas.delete_selection()
    assert doc.project.comments == [] and comment_id not in scene.comments.items
    doc.undo()
    assert [c.id for c in doc.project.comments] == [comment_id]


def test_typing_into_a_comment_is_text_not_commands(window: MainWindow) -> None:
    canvas = window.canvas
    comment_id = canvas.add_comment()
    override = QKeyEvent(QEvent.Type.ShortcutOverride, Qt.Key.Key_F, Qt.KeyboardModifier.NoModifier, "f")
    QApplication.sendEvent(canvas, override)
    assert override.isAccepted()  # F is a letter here, not Fit All
    canvas.scene().comments.items[comment_id].finish_editing(keep=True)
    override = QKeyEvent(QEvent.Type.ShortcutOverride, Qt.Key.Key_F, Qt.KeyboardModifier.NoModifier, "f")
    QApplication.sendEvent(canvas, override)
    assert not override.isAccepted()


def test_comments_are_locked_while_training_like_the_graph(window: MainWindow) -> None:
    doc, canvas = window.document, window.canvas
    comment_id = canvas.add_comment()
    item = canvas.scene().comments.items[comment_id]
    item.finish_editing(keep=True)
    doc.set_read_only("training")
    assert canvas.add_comment() is None and len(doc.project.comments) == 1
    item.start_editing()
    assert not item.editing
    doc.set_read_only(None)
