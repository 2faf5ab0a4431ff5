"""Concept heatmaps: the most relevant channels of a layer and their CRP heatmaps.

Concept Relevance Propagation (Achtibat et al. 2023, "From attribution maps to
human-understandable explanations through Concept Relevance Propagation",
Nat. Mach. Intell. 5) treats each channel ``c`` of a layer as a concept. Its
relevance is the relevance arriving at the layer's output summed over the
channel's elements, ``R_c = sum_{j in channel c} R_j``, and its heatmap is the
input relevance conditioned on it, ``R(x | c)`` (``explain(...,
conditions={layer: [c]})``). :func:`top_channels` returns the ``k`` channels
with the largest ``R_c`` and their heatmaps, for every sample at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..checks import is_int
from ..conditions import layer_path

Array = np.ndarray


@dataclass(frozen=True)
class ConceptHeatmaps:
    """The result of :func:`top_channels`.

    Attributes
    ----------
    path : str
        The layer's path.
    channels : ndarray, shape (B, k)
        The ``k`` most relevant channels of each sample, most relevant first
        (ties: lower channel index first).
    relevance : ndarray, shape (B, k)
        Their relevance ``R_c`` at the layer's output.
    heatmaps : ndarray, shape (B, k, ...)
        ``heatmaps[b, r]`` is the input relevance of sample ``b`` conditioned
        on channel ``channels[b, r]``, shaped like one input.
    """

    path: str
    channels: Array
    relevance: Array
    heatmaps: Array


def top_channels(net: Any, x: Array, layer: int | str, k: int,
                 target: Any = None, rule: Any = None, method: str = "fast") -> ConceptHeatmaps:
    """The ``k`` most relevant channels of ``layer`` and their conditional heatmaps.

    One unconditional explanation ranks the channels by ``R_c`` (the relevance
    at the layer's output summed over each channel); one conditional
    explanation of the input repeated ``k`` times, each copy conditioned on one
    of its sample's top channels (a per-sample mask), gives the heatmaps.

    Parameters
    ----------
    net : Sequential
    x : ndarray
        Input batch.
    layer : int or str
        A top-level index or a path, as in ``explain(conditions=...)``.
    k : int
        How many channels, ``1 <= k <= C``.
    target, rule, method
        As in :meth:`~lrp_ref.Sequential.explain` (``target=None``: the argmax).

    Returns
    -------
    ConceptHeatmaps
    """
    path = layer_path(net, layer)
    if not (is_int(k) and k >= 1):
        raise ValueError(f"top_channels: k must be an int >= 1, got {k!r}")
    explanation = net.explain(x, target=target, rule=rule, method=method)
    R = explanation.layer(path).relevance_out
    if R.ndim < 2 or k > R.shape[1]:
        raise ValueError(f"top_channels: layer '{path}' has output shape {R.shape}; k={k} "
                         "needs at least k channels on axis 1")
    batch, channels = R.shape[:2]
    R_c = R.reshape(batch, channels, -1).sum(axis=2)                  # (B, C)
    order = np.argsort(-R_c, axis=1, kind="stable")[:, :k]            # (B, k)
    # copy r of sample b sits at row b*k + r and keeps only channel order[b, r]
    masks = np.zeros((batch * k, channels), dtype=bool)
    masks[np.arange(batch * k), order.reshape(-1)] = True
    x_rows = np.repeat(np.asarray(x), k, axis=0)
    conditioned = net.explain(x_rows, target=np.repeat(explanation.target, k), rule=rule,
                              method=method, conditions={path: masks})
    heatmaps = conditioned.relevance.reshape(batch, k, *conditioned.relevance.shape[1:])
    return ConceptHeatmaps(path, order, np.take_along_axis(R_c, order, axis=1), heatmaps)


__all__ = ["ConceptHeatmaps", "top_channels"]
