"""Canonizers: rewrites that keep a network's forward pass but change its explanation.

:func:`merge_batchnorm` folds every BatchNorm into the Dense or Conv2d before it,
the third of the three BatchNorm treatments (``lrp_ref/layers/batchnorm.py``).
"""

from __future__ import annotations

import warnings

import numpy as np

from ..graph import Graph
from ..layers import (
    BatchNorm,
    BatchNorm1d,
    BatchNorm2d,
    Conv1d,
    Conv2d,
    Dense,
    Layer,
    Residual,
)
from ..layers.base import build, where
from ..layers.calls import join
from ..network import Sequential

Array = np.ndarray

#: The layers a BatchNorm can fold into: the BatchNorm type that may follow each,
#: and the weight axis that indexes its outputs (Dense ``(in, out)``, Conv2d
#: ``(C_out, C_in, kh, kw)``).
FOLDABLE: dict[type[Layer], tuple[type[BatchNorm], int]] = {
    Dense: (BatchNorm1d, 1),
    Conv1d: (BatchNorm1d, 0),
    Conv2d: (BatchNorm2d, 0),
}


class UnfoldedBatchNormWarning(UserWarning):
    """Issued by :func:`merge_batchnorm` for BatchNorms it left in place.

    ``paths`` lists their paths in the original network.
    """

    def __init__(self, message: str, paths: list[str]) -> None:
        super().__init__(message)
        self.paths = paths


def merge_batchnorm(net: Layer) -> Layer:
    """A copy of ``net`` with every foldable BatchNorm merged into the layer before it.

    A BatchNorm that directly follows a Dense (BatchNorm1d) or Conv2d
    (BatchNorm2d) in the same Sequential — at any depth, including inside
    Residual branches and nested Sequentials — is folded and removed. In a
    Graph, a BatchNorm node folds into the Dense/Conv2d node it reads when no
    other node reads that one; its readers then read the folded node, which
    keeps its name. With
    ``a = gamma / sqrt(running_var + eps)`` per output channel ``j``
    (Zennit's ``MergeBatchNorm``)::

        W'_ij = W_ij a_j,        b'_j = (b_j - running_mean_j) a_j + beta_j

    so ``forward`` is unchanged up to rounding. Removing a layer shifts the
    paths of the layers after it in its Sequential.

    Parameters
    ----------
    net : Layer
        A Sequential (or any layer). It is not modified.

    Returns
    -------
    Layer
        The merged copy (new arrays throughout).

    Warns
    -----
    UnfoldedBatchNormWarning
        When some BatchNorm cannot be folded (it is the first layer of its
        Sequential, follows a layer other than Dense/Conv2d, does not match it,
        or is a Residual branch on its own). Those BatchNorms stay in place;
        the warning names each with the reason, its ``paths`` attribute lists
        their paths.
    """
    reasons: dict[str, str] = {}
    merged = _merge(net, reasons)
    if reasons:
        warnings.warn(UnfoldedBatchNormWarning(
            "merge_batchnorm left BatchNorm(s) unfolded: " + "; ".join(reasons.values()),
            list(reasons)), stacklevel=2)
    return merged


def _merge(layer: Layer, reasons: dict[str, str], path: str = "") -> Layer:
    """A merged copy of ``layer`` (at ``path``); unfolded BatchNorms are reported in ``reasons``."""
    if isinstance(layer, Sequential):
        return Sequential(_merge_sequence(layer.layers, reasons, path))
    if isinstance(layer, Graph):
        return _merge_graph(layer, reasons, path)
    if isinstance(layer, Residual):
        shortcut = (None if layer.shortcut is None
                    else _merge(layer.shortcut, reasons, join(path, "shortcut")))
        return Residual(_merge(layer.body, reasons, join(path, "body")), shortcut, layer.epsilon)
    if isinstance(layer, BatchNorm):
        reasons[path] = (f"{where(path, layer)} is not inside a Sequential after a Dense "
                         "or Conv2d")
    return _copy(layer)


def _copy(layer: Layer) -> Layer:
    """A copy of a plain layer with its own arrays."""
    return build(layer.config(), {k: v.copy() for k, v in layer.state().items()})


def _merge_sequence(layers: list[Layer], reasons: dict[str, str], path: str) -> list[Layer]:
    out: list[Layer] = []
    for k, layer in enumerate(layers):
        if not isinstance(layer, BatchNorm):
            out.append(_merge(layer, reasons, join(path, str(k))))
            continue
        why = _why_not_foldable(out[-1] if out else None, layers[k - 1] if k else None, layer,
                                join(path, str(k)), join(path, str(k - 1)))
        if why is None:
            out[-1] = _fold(out[-1], layer)
        else:
            reasons[join(path, str(k))] = why
            out.append(_copy(layer))
    return out


def _merge_graph(g: Graph, reasons: dict[str, str], path: str) -> Graph:
    """A BatchNorm node folds into the node it reads when only it reads that node.

    The folded node keeps its name and place; the BatchNorm's readers read it instead.
    """
    readers = [source for node in g.nodes for source in node.inputs] + [g.output_name]
    layers: dict[str, Layer] = {}                  # name -> merged layer, in order
    inputs: dict[str, tuple[str, ...]] = {}
    renamed: dict[str, str] = {}                   # folded BatchNorm -> the node it folded into
    for node in g.nodes:
        sources = tuple(renamed.get(source, source) for source in node.inputs)
        node_path = join(path, node.name)
        if isinstance(node.layer, BatchNorm):
            source = node.inputs[0]
            bn_where = where(node_path, node.layer)
            if source == g.input_name:
                why = f"{bn_where} reads the graph's input"
            elif readers.count(source) > 1:
                why = (f"{bn_where} reads {where(join(path, source), g[source])}, which is "
                       "also read elsewhere")
            else:
                why = _why_not_foldable(layers[sources[0]], g[source], node.layer, node_path,
                                        join(path, source))
            if why is None:
                layers[sources[0]] = _fold(layers[sources[0]], node.layer)
                renamed[node.name] = sources[0]
                continue
            reasons[node_path] = why
            layers[node.name] = _copy(node.layer)
        else:
            layers[node.name] = _merge(node.layer, reasons, node_path)
        inputs[node.name] = sources
    merged = Graph()
    merged.input(g.input_name)
    for name, layer in layers.items():
        merged.add(layer, *inputs[name], name=name)
    merged.output(renamed.get(g.output_name, g.output_name))
    return merged


def _why_not_foldable(merged: Layer | None, original: Layer | None, bn: BatchNorm,
                      bn_path: str, original_path: str) -> str | None:
    """Why ``bn`` (at ``bn_path``) cannot fold into ``merged`` (the copy of ``original``,
    at ``original_path``); None if it can."""
    bn_where, original_where = where(bn_path, bn), where(original_path, original)
    if merged is None:
        return f"{bn_where} is the first layer of its Sequential"
    if type(merged) not in FOLDABLE:
        return f"{bn_where} follows {original_where}, not a Dense or Conv2d"
    bn_type, axis = FOLDABLE[type(merged)]
    if type(bn) is not bn_type:
        return f"{bn_where} cannot follow {original_where} (expected a {bn_type.__name__})"
    if merged.weight.shape[axis] != bn.gamma.shape[0]:
        return (f"{bn_where} has {bn.gamma.shape[0]} channels but {original_where} has "
                f"{merged.weight.shape[axis]} outputs")
    return None


def _fold(linear: Layer, bn: BatchNorm) -> Layer:
    """``linear`` followed by ``bn`` as one layer: ``W' = W a``, ``b' = a b + c``."""
    _, axis = FOLDABLE[type(linear)]
    a, c = bn.weight, bn.bias               # a = gamma/sqrt(var+eps), c = beta - a*mean
    scale = a.reshape((-1,) + (1,) * (linear.weight.ndim - 1 - axis))
    arrays = {**linear.arrays(), "weight": linear.weight * scale, "bias": a * linear.bias + c}
    return type(linear).from_config(linear.config(), arrays)
