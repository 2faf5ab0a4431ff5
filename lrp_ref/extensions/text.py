"""Explaining token sequences: gradient baselines per token.

For a :class:`~lrp_ref.Sequential` whose first layer is an
:class:`~lrp_ref.Embedding` (or a :class:`~lrp_ref.Graph` whose input is read
by one Embedding node), LRP already returns one relevance per token
(``explain(ids).relevance``, shape ``(B, T)``). The gradient methods are taken
at the embedding vectors ``e_t`` (token ids are discrete), as in Arras et al.
2017 ("Explaining recurrent neural network predictions in sentiment analysis"):

* Gradient x Input:  ``R_t = sum_d e_{t,d} * df/de_{t,d}``
* sensitivity:       ``R_t = sum_d (df/de_{t,d})^2``  (the squared gradient norm)

with ``f`` the target logit. The gradient is that of the rest of the network
(everything after the Embedding) at ``e``, positional embeddings included.
``lrp_ref.viz.plot.plot_tokens`` draws the tokens coloured by their relevance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..graph import Graph
from ..layers.embedding import Embedding
from ..network import Network, Sequential, select_targets

Array = np.ndarray


def embedding_gradient(net: Network, ids: Any, target: int | Sequence[int] | None = None
                       ) -> tuple[Array, Array, Array]:
    """The embeddings ``e`` ``(B, T, D)``, ``df_target/de`` (same shape) and the target.

    Parameters
    ----------
    net : Sequential or Graph
        A Sequential that starts with an Embedding, or a Graph whose input is
        read by one node, an Embedding.
    ids : array_like of int, shape (B, T)
    target : int, sequence of int or None
        The explained class per sample; None for each sample's argmax.
    """
    embedding, rest = split_at_embedding(net)
    ids = net.check_input(ids)                  # validated integer ids (B, T)
    output = net.forward(ids)                   # the network is left at this batch
    target = select_targets(output, target)
    embeddings = embedding.weight[ids]          # e_t = W[id_t], the Embedding's lookup
    return embeddings, rest.gradient(embeddings, target), target


def split_at_embedding(net: Network) -> tuple[Embedding, Network]:
    """The Embedding that reads ``net``'s token ids and the network after it (its layers
    shared): a Sequential of the other layers, or a Graph whose input is the Embedding
    node's output."""
    if isinstance(net, Sequential) and net.layers and isinstance(net[0], Embedding):
        return net[0], Sequential(net.layers[1:])
    if isinstance(net, Graph):
        readers = [node for node in net.nodes if net.input_name in node.inputs]
        if len(readers) == 1 and isinstance(readers[0].layer, Embedding):
            rest = Graph()
            rest.input(readers[0].name)
            for node in net.nodes:
                if node is not readers[0]:
                    rest.add(node.layer, *node.inputs, name=node.name)
            rest.output(net.output_name)
            return readers[0].layer, rest
        raise TypeError(f"expected a Graph with its input read by one Embedding node, "
                        f"got the readers {[node.name for node in readers]}")
    raise TypeError(f"expected a Sequential that starts with an Embedding or a Graph, "
                    f"got {net!r}")


def gradient_x_input(net: Network, ids: Any,
                     target: int | Sequence[int] | None = None) -> Array:
    """``R_t = sum_d e_{t,d} df/de_{t,d}`` per token, shape ``(B, T)``."""
    e, grad, _ = embedding_gradient(net, ids, target)
    return (e * grad).sum(axis=2)


def sensitivity(net: Network, ids: Any, target: int | Sequence[int] | None = None) -> Array:
    """``R_t = sum_d (df/de_{t,d})^2`` per token, shape ``(B, T)``."""
    _, grad, _ = embedding_gradient(net, ids, target)
    return (grad ** 2).sum(axis=2)

