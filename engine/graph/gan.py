"""Which part of a graph is a GAN's generator and which its discriminator: one rule for the whole app.

A graph with a Noise Input is a GAN. An Output reached from a Noise Input is the generator's;
any other Output is the discriminator's. The trainer, the exporters, Look Inside, the data
check and the canvas's network frames all ask here.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from engine.graph.model import Graph, Node

#: The layer type whose node feeds a generator.
NOISE_INPUT = "noise_input"


def is_noise_input(node: Node) -> bool:
    """Whether ``node`` is a Noise Input (a generator's latent vector, not data)."""
    return node.type_id == NOISE_INPUT


def is_gan(graph: Graph) -> bool:
    """Whether ``graph`` has a Noise Input, which makes it a GAN."""
    return any(is_noise_input(node) for node in graph)


@dataclass(frozen=True)
class GanParts:
    """The two networks of a GAN.

    Args:
        generator_outputs: Outputs reached from a Noise Input.
        discriminator_outputs: The other Outputs.
        generator: Every node leading to a generator Output (its Outputs included), in graph order.
        discriminator: Every other node leading to a discriminator Output, in graph order.
    """

    generator_outputs: list[str]
    discriminator_outputs: list[str]
    generator: list[str]
    discriminator: list[str]


def gan_parts(graph: Graph) -> GanParts:
    """Split ``graph`` into generator and discriminator (both empty when it has no Noise Input).

    A node that leads to both (a GAN's discriminator is fed by the generator's output) counts
    as the generator's in :attr:`GanParts.generator` only when it lies upstream of a generator
    Output.
    """
    if not is_gan(graph):
        return GanParts([], [], [], [])
    g = graph.nx_graph()
    generator_outputs: list[str] = []
    discriminator_outputs: list[str] = []
    generator: set[str] = set()
    discriminator: set[str] = set()
    for node in graph:
        if node.layer.role != "output":
            continue
        upstream = nx.ancestors(g, node.id) | {node.id}
        if any(is_noise_input(graph.nodes[n]) for n in upstream):
            generator_outputs.append(node.id)
            generator |= upstream
        else:
            discriminator_outputs.append(node.id)
            discriminator |= upstream
    order = list(graph.nodes)
    return GanParts(generator_outputs, discriminator_outputs, [n for n in order if n in generator],
                    [n for n in order if n in discriminator and n not in generator])


def gan_networks(graph: Graph) -> dict[str, list[str]]:
    """``{"Generator": ids, "Discriminator": ids}`` for a GAN (a graph with a Noise Input), else ``{}``.

    Each network is every node that leads to its Output (its Output included); a node shared
    by both counts as the generator's (:func:`engine.graph.gan.gan_parts`).
    """
    parts = gan_parts(graph)
    networks = {"Generator": parts.generator, "Discriminator": parts.discriminator}
    return {name: ids for name, ids in networks.items() if ids}
