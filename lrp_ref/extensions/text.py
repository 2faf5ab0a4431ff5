"""Explaining token sequences: gradient baselines per token.

For a :class:`~lrp_ref.Sequential` whose first layer is an
:class:`~lrp_ref.Embedding`, LRP already returns one relevance per token
(``explain(ids).relevance``, shape ``(B, T)``). The gradient methods are taken
at the embedding vectors ``e_t`` (token ids are discrete), as in Arras et al.
2017 ("Explaining recurrent neural network predictions in sentiment analysis"):

* Gradient x Input:  ``R_t = sum_d e_{t,d} * df/de_{t,d}``
* sensitivity:       ``R_t = sum_d (df/de_{t,d})^2``  (the squared gradient norm)

with ``f`` the target logit. ``lrp_ref.viz.plot.plot_tokens`` draws the tokens
coloured by their relevance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..layers.embedding import Embedding
from ..network import Sequential, one_hot, select_targets

Array = np.ndarray


def embedding_gradient(net: Sequential, ids: Any, target: int | Sequence[int] | None = None
                       ) -> tuple[Array, Array, Array]:
    """The embeddings ``e`` ``(B, T, D)``, ``df_target/de`` (same shape) and the target.

    Parameters
    ----------
    net : Sequential
        Starts with an Embedding.
    ids : array_like of int, shape (B, T)
    target : int, sequence of int or None
        The explained class per sample; None for each sample's argmax.
    """
    if not (isinstance(net, Sequential) and net.layers and isinstance(net[0], Embedding)):
        raise TypeError(f"expected a Sequential that starts with an Embedding, got {net!r}")
    ids = net.check_input(ids)                  # validated integer ids (B, T)
    output = net.forward(ids)
    target = select_targets(output, target)
    grad = one_hot(output, target)
    for layer in reversed(net.layers[1:]):
        grad = layer.backward(grad)
    embeddings = net[0].weight[ids]             # e_t = W[id_t], the Embedding's lookup
    return embeddings, grad, target


def gradient_x_input(net: Sequential, ids: Any,
                     target: int | Sequence[int] | None = None) -> Array:
    """``R_t = sum_d e_{t,d} df/de_{t,d}`` per token, shape ``(B, T)``."""
    e, grad, _ = embedding_gradient(net, ids, target)
    return (e * grad).sum(axis=2)


def sensitivity(net: Sequential, ids: Any, target: int | Sequence[int] | None = None) -> Array:
    """``R_t = sum_d (df/de_{t,d})^2`` per token, shape ``(B, T)``."""
    _, grad, _ = embedding_gradient(net, ids, target)
    return (grad ** 2).sum(axis=2)

