"""Explaining token sequences: gradient baselines per token, and relevance-coloured text.

For a :class:`~lrp_ref.Sequential` whose first layer is an
:class:`~lrp_ref.Embedding`, LRP already returns one relevance per token
(``explain(ids).relevance``, shape ``(B, T)``). The gradient methods are taken
at the embedding vectors ``e_t`` (token ids are discrete), as in Arras et al.
2017 ("Explaining recurrent neural network predictions in sentiment analysis"):

* Gradient x Input:  ``R_t = sum_d e_{t,d} * df/de_{t,d}``
* sensitivity:       ``R_t = sum_d (df/de_{t,d})^2``  (the squared gradient norm)

with ``f`` the target logit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..layers.embedding import Embedding
from ..network import Sequential, select_targets

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
    seed = np.zeros_like(output)
    seed[np.arange(len(target)), target] = 1
    grad = seed
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


def plot_tokens(ax: Any, tokens: Sequence[str], relevance: Array, title: str | None = None,
                cmap: str = "bwr", fontsize: int = 13, title_width: float = 0.18) -> None:
    """Draw ``tokens`` in a row on ``ax``, each on a background coloured by its relevance.

    Colours are symmetric around 0 (``cmap`` from blue through white to red),
    scaled to the largest ``|relevance|`` of the row: red supports the explained
    class, blue speaks against it.

    Parameters
    ----------
    ax : matplotlib Axes
    tokens : sequence of str
    relevance : ndarray, shape (T,)
    title : str, optional
        Written at the left of the row; the tokens start at ``title_width``
        (axes fraction) or after the title if it is wider, so that rows align.
    """
    import matplotlib.pyplot as plt

    relevance = np.asarray(relevance, dtype=float)
    if relevance.shape != (len(tokens),):
        raise ValueError(f"plot_tokens: relevance must have shape ({len(tokens)},), "
                         f"got {relevance.shape}")
    scale = float(np.abs(relevance).max()) or 1.0
    colours = plt.get_cmap(cmap)(0.5 + 0.5 * relevance / scale)
    ax.set_axis_off()
    renderer = ax.figure.canvas.get_renderer()
    x = 0.0
    if title is not None:
        label = ax.text(x, 0.5, title, fontsize=fontsize, va="center", ha="left",
                        transform=ax.transAxes, fontweight="bold")
        x = max(title_width, _width(ax, label, renderer) + 0.02)
    for token, colour in zip(tokens, colours):
        text = ax.text(x, 0.5, token, fontsize=fontsize, va="center", ha="left",
                       transform=ax.transAxes,
                       bbox={"facecolor": colour, "edgecolor": "none", "pad": 2})
        x += _width(ax, text, renderer) + 0.01


def _width(ax: Any, text: Any, renderer: Any) -> float:
    """The width of a drawn text in axes coordinates."""
    box = text.get_window_extent(renderer=renderer)
    return box.width / ax.get_window_extent(renderer=renderer).width
