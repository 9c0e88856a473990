"""A project's model as ordinary layers: what training and export compile.

Training, the exporters and everything they call (task detection, GAN parts, Look Inside)
read ``project.graph`` and know nothing of blocks. :func:`flat_project` gives them a copy of
the project whose graph is the flattened one (:func:`engine.graph.flatten.flatten`): top-level
nodes keep their ids, inner layers get flat ids (``layer1_0__conv1``), so the compiled module's
parameter names are those :func:`engine.compile.block_compile.compile_with_blocks` gives.
"""

from __future__ import annotations

import dataclasses

from engine.errors import UserError
from engine.graph.blocks import BlockError, BlockLibrary
from engine.graph.flatten import flatten
from engine.graph.project import Project
from engine.layers.block import BLOCK_TYPE


def has_blocks(project: Project) -> bool:
    """Whether the project holds block definitions or its graph holds block instances."""
    return bool(project.blocks) or any(node.type_id == BLOCK_TYPE for node in project.graph)


def flat_project(project: Project) -> Project:
    """``project`` itself when it has no blocks, else a copy with the flattened graph and no definitions.

    Raises:
        UserError: An instance cannot be expanded (one line naming it by its path).
    """
    if not has_blocks(project):
        return project
    try:
        flat = flatten(project.graph, project.blocks)
    except BlockError as exc:
        raise UserError(str(exc)) from None
    return dataclasses.replace(project, graph=flat.graph, blocks=BlockLibrary())
