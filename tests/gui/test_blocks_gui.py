"""Blocks in the window: group and ungroup, open a block and come back, edit inside, expand in place.

Everything here goes through the window's actions and the canvas, as a person would.
"""

from __future__ import annotations

from PySide6.QtCore import Qt

from engine.layers.block import BLOCK_TYPE


def _group_convs(window, qtbot):  # noqa: ANN001, ANN202
    window.canvas.select_nodes(["conv1", "relu1", "conv2", "relu2"], center=False)
    before = window.document.model_analysis.parameters
    window.actions["group"].trigger()
    block_ids = [n.id for n in window.document.graph if n.type_id == BLOCK_TYPE]
    assert len(block_ids) == 1
    window.document.refresh_analysis()
    assert window.document.model_analysis.parameters == before
    return block_ids[0], before


def test_ctrl_g_groups_and_undo_brings_the_layers_back(window, qtbot) -> None:  # noqa: ANN001
    doc = window.document
    ids_before = list(doc.graph.nodes)
    block, params = _group_convs(window, qtbot)
    assert window.canvas.selected_node_ids() == [block]
    assert not {"conv1", "relu1", "conv2", "relu2"} & set(doc.graph.nodes)
    info = doc.analysis.nodes[block]
    assert info.output is not None and info.parameters == params - doc.analysis.nodes["fc1"].parameters \
        - doc.analysis.nodes["fc2"].parameters
    assert doc.model_analysis.valid
    name = doc.graph.nodes[block].params["definition"]
    assert name in doc.project.blocks and doc.undo_stack.undoText().startswith("Group 4 nodes")
    doc.undo()
    doc.refresh_analysis()
    assert list(doc.graph.nodes) == ids_before and name not in doc.project.blocks
    doc.redo()
    doc.refresh_analysis()
    assert block in doc.graph.nodes and doc.model_analysis.parameters == params


def test_grouping_the_input_is_refused_with_a_reason(window, qtbot) -> None:  # noqa: ANN001
    window.canvas.select_nodes(["image", "conv1"], center=False)
    window.actions["group"].trigger()
    assert not any(n.type_id == BLOCK_TYPE for n in window.document.graph)
    assert "image" in window.statusBar().currentMessage()


def test_open_a_block_edit_inside_and_come_back(window, qtbot) -> None:  # noqa: ANN001
    doc = window.document
    block, params = _group_convs(window, qtbot)
    window.canvas.select_nodes([block], center=False)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    assert doc.level == (block,)
    assert window.blocks.breadcrumb.isVisible() or not window.isVisible()
    assert window.blocks.breadcrumb.texts()[0] == "Model" and block in window.blocks.breadcrumb.texts()[1]
    scene = window.canvas.canvas_scene()
    assert {"conv1", "relu2"} <= set(scene.nodes) and "fc1" not in scene.nodes
    assert str(doc.analysis.nodes["conv1"].output).startswith("(N, ")  # what this instance receives
    window.canvas.select_nodes(["conv2"], center=False)
    window.inspector.set_value("out_channels", 8) if hasattr(window.inspector, "set_value") else \
        window.canvas.push(__import__("gui.commands", fromlist=["set_param"]).set_param(doc.graph, "conv2",
                                                                                       "out_channels", 8))
    doc.refresh_analysis()
    assert doc.model_analysis.parameters != params  # the edit inside changed the model
    window.actions["level_up"].trigger()
    assert doc.level == () and window.canvas.selected_node_ids() == [block]
    assert "fc1" in window.canvas.canvas_scene().nodes
    doc.undo()  # the edit inside is one undo step, undone from the top level
    doc.refresh_analysis()
    assert doc.model_analysis.parameters == params


def test_undoing_the_group_while_inside_goes_back_up(window, qtbot) -> None:  # noqa: ANN001
    doc = window.document
    block, _ = _group_convs(window, qtbot)
    assert window.blocks.open_node(block) and doc.level == (block,)
    doc.undo()
    assert doc.level == () and "conv1" in window.canvas.canvas_scene().nodes


def test_problems_inside_a_block_name_the_path_and_lead_to_it(window, qtbot) -> None:  # noqa: ANN001
    from gui import commands

    doc = window.document
    block, _ = _group_convs(window, qtbot)
    window.blocks.open_node(block)
    window.canvas.push(commands.set_param(doc.graph, "conv2", "in_channels", 3)) if "in_channels" in \
        doc.graph.nodes["conv2"].params else None
    window.canvas.push(commands.set_param(doc.graph, "conv1", "kernel_size", [50, 50]))
    doc.refresh_analysis()
    texts = [window.problems.list.item(i).text() for i in range(window.problems.list.count())]
    assert any(f"{block}/conv1" in t or f"{block}: " in t for t in texts), texts
    window.problems._chosen(next(window.problems.list.item(i) for i in range(window.problems.list.count())
                                 if block in window.problems.list.item(i).text()))
    assert doc.level == () and window.canvas.selected_node_ids() == [block]


def test_expand_in_place_is_read_only_and_collapses(window, qtbot) -> None:  # noqa: ANN001
    doc = window.document
    block, params = _group_convs(window, qtbot)
    window.canvas.select_nodes([block], center=False)
    window.actions["expand_block"].trigger()
    scene = window.canvas.canvas_scene()
    assert doc.expanded is not None and block not in scene.nodes
    members = doc.expanded.members[block]
    assert len(members) == 4 and set(members) <= set(scene.nodes)
    assert any(name.startswith(block) for name in scene.frames)
    assert doc.analysis.valid and sum(doc.analysis.nodes[m].parameters for m in members) == \
        doc.model_analysis.nodes[block].parameters
    count = doc.undo_stack.count()
    window.canvas.select_nodes([members[0]], center=False)
    assert not window.actions["delete"].isEnabled()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Delete)
    assert doc.undo_stack.count() == count and "expanded" in window.canvas.last_message
    window.actions["expand_block"].trigger()  # E on an expanded layer folds its block
    assert doc.expanded is None and block in window.canvas.canvas_scene().nodes
    assert window.canvas.selected_node_ids() == [block]


def test_enter_on_an_expanded_layer_opens_its_block_there(window, qtbot) -> None:  # noqa: ANN001
    doc = window.document
    block, _ = _group_convs(window, qtbot)
    window.canvas.select_nodes([block], center=False)
    window.actions["expand_block"].trigger()
    inner = next(m for m in doc.expanded.members[block] if doc.expanded.inner[m][1] == "conv2")
    window.canvas.select_nodes([inner], center=False)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    assert doc.level == (block,) and doc.expanded is None
    assert window.canvas.selected_node_ids() == ["conv2"]


def test_ungroup_and_make_unique(window, qtbot) -> None:  # noqa: ANN001
    doc = window.document
    block, params = _group_convs(window, qtbot)
    window.canvas.select_nodes([block], center=False)
    name = window.blocks.make_unique()
    assert name is not None and name != "" and doc.graph.nodes[block].params["definition"] == name
    assert name in doc.project.blocks
    window.canvas.select_nodes([block], center=False)
    window.actions["ungroup"].trigger()
    doc.refresh_analysis()
    assert block not in doc.graph.nodes and {"conv1", "relu2"} <= set(doc.graph.nodes)
    assert doc.model_analysis.parameters == params and doc.model_analysis.valid
    doc.undo()
    doc.refresh_analysis()
    assert block in doc.graph.nodes


def test_palette_blocks_add_builtins_and_library_blocks_with_their_definitions(window, qtbot) -> None:  # noqa: ANN001
    doc = window.document
    keys = window.palette_panel.visible_type_ids()
    assert "block:builtin:Bottleneck" in keys and "block:builtin:TransformerEncoderBlock" in keys or \
        any(k.startswith("block:builtin:Transformer") for k in keys)
    node_id = window.canvas.add_node_at("block:builtin:Bottleneck")
    assert node_id is not None and doc.graph.nodes[node_id].params["definition"] == "Bottleneck"
    assert "Bottleneck" in doc.project.blocks
    assert "block:project:Bottleneck" in window.palette_panel.visible_type_ids()
    doc.undo()
    assert "Bottleneck" not in doc.project.blocks and node_id not in doc.graph.nodes
    assert "block:project:Bottleneck" not in window.palette_panel.visible_type_ids()


def test_save_a_block_to_the_library_and_use_it_in_another_project(window, qtbot, tmp_path) -> None:  # noqa: ANN001
    from engine.templates import TEMPLATES_DIR

    block, params = _group_convs(window, qtbot)
    name = window.document.graph.nodes[block].params["definition"]
    window.canvas.select_nodes([block], center=False)
    path = window.blocks.save_to_library()
    assert path is not None and path.exists()
    assert f"block:library:{name}" in window.palette_panel.visible_type_ids()
    window.open_project(TEMPLATES_DIR / "fnn_spirals.json", untitled=True)
    node_id = window.canvas.add_node_at(f"block:library:{name}")
    assert node_id is not None and name in window.document.project.blocks


def test_copy_paste_carries_definitions_and_refuses_a_block_inside_itself(window, qtbot) -> None:  # noqa: ANN001
    from engine.templates import TEMPLATES_DIR

    block, _ = _group_convs(window, qtbot)
    name = window.document.graph.nodes[block].params["definition"]
    window.canvas.select_nodes([block], center=False)
    assert window.edits.copy()
    window.blocks.open_node(block)
    count = window.document.undo_stack.count()
    window.edits.paste()  # into its own inside
    assert window.document.undo_stack.count() == count and "itself" in window.statusBar().currentMessage()
    assert window.canvas.add_node_at(f"block:project:{name}") is None
    window.open_project(TEMPLATES_DIR / "fnn_spirals.json", untitled=True)
    doc = window.document
    doc.project.blocks.add(__import__("engine.graph.builtin_blocks", fromlist=["x"]).basic_block(name=name))
    doc.library_changed()
    window.edits.paste()  # same name, other contents: renamed
    pasted = [n for n in doc.graph if n.type_id == BLOCK_TYPE]
    assert len(pasted) == 1 and pasted[0].params["definition"] != name
    assert pasted[0].params["definition"] in doc.project.blocks
    doc.undo()
    assert len(doc.project.blocks) == 1


def test_look_inside_gets_the_flat_id_of_a_layer_inside_a_block(window, qtbot) -> None:  # noqa: ANN001
    doc = window.document
    block, _ = _group_convs(window, qtbot)
    assert doc.flat_id(block) is None and doc.flat_id("fc1") == "fc1"
    window.blocks.open_node(block)
    flat = doc.flat_id("conv2")
    assert flat is not None and doc.block_result.flat.paths[flat] == f"{block}/conv2"
    window.canvas.select_nodes(["conv2"], center=False)
    assert window.training.inside.node_id == flat


def test_rename_a_definition_renames_every_use_in_one_undo_step(window, qtbot) -> None:  # noqa: ANN001
    doc = window.document
    block, _ = _group_convs(window, qtbot)
    old = doc.graph.nodes[block].params["definition"]
    assert not window.blocks.rename(block, "1bad")
    assert "identifier" in window.statusBar().currentMessage()
    assert window.blocks.rename(block, "ConvStem")
    assert doc.graph.nodes[block].params["definition"] == "ConvStem" and "ConvStem" in doc.project.blocks
    assert old not in doc.project.blocks
    doc.refresh_analysis()
    assert doc.model_analysis.valid
    window.blocks.open_node(block)
    assert window.blocks.breadcrumb.texts()[-1] == f"{block} (ConvStem)"
    window.blocks.go_up()
    doc.undo()
    assert doc.graph.nodes[block].params["definition"] == old and old in doc.project.blocks


def test_a_graph_laid_out_top_to_bottom_gets_ports_on_the_top_and_bottom_edges(window, qtbot) -> None:  # noqa: ANN001
    doc = window.document
    scene = window.canvas.canvas_scene()
    assert not scene.vertical  # the template runs left to right
    conv = scene.nodes["conv1"]
    assert conv.input_scene_pos("in").x() == conv.pos().x()  # on the left edge
    window.actions["layout_down"].trigger()
    assert scene.vertical
    conv = scene.nodes["conv1"]
    assert conv.input_scene_pos("in").y() == conv.pos().y()  # on the top edge
    assert conv.output_scene_pos().y() == conv.pos().y() + conv.layout.height  # on the bottom edge
    hit = scene.port_at(conv.input_scene_pos("in"), 4.0)
    assert hit is not None and (hit.node_id, hit.kind, hit.port) == ("conv1", "in", "in")
    doc.undo()
    assert not scene.vertical
    window.actions["layout"].trigger()  # auto: the CNN template is shallow, left to right
    window.actions["layout_down"].trigger()
    window.canvas.set_document(doc)  # reopening keeps what the positions say
    assert window.canvas.canvas_scene().vertical

