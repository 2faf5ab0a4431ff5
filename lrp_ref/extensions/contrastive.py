"""Contrastive LRP (CLRP): what speaks for the target class and not for its dual.

Gu, Yang and Tresp 2018, "Understanding Individual Decisions of CNNs via
Contrastive Backpropagation" (ACCV 2018, arXiv:1812.02100), section
"Contrastive Layer-wise Relevance Propagation". For a network ``f`` whose last
layer is a Dense with weights ``W^L`` (columns ``w_k``, biases ``b_k``), the
target class ``j`` and its score ``S = y_j``, the paper defines::

    R      = f_LRP(x, W,     S)            the ordinary explanation of y_j
    R_dual = f_LRP(x, W_bar, S)            the explanation of a "dual" concept
    R_CLRP = max(0, R - R_dual)            element-wise

and two duals ``W_bar``, both equal to ``W`` below the last layer:

``dual="others"`` (their CLRP1)
    ``W_bar^L = W^L_{-j}``: the output neurons of every class but ``j``, with
    "the score ``S_{y_j}`` of the target class uniformly redistributed to the
    other classes". Here: the output relevance ``R_L[k] = y_j / (C - 1)`` for
    ``k != j``, ``R_L[j] = 0``, propagated through the unchanged network.
``dual="negated"`` (their CLRP2)
    ``W_bar^L = -w_j``: the target's output neuron with negated weights. Here
    the whole affine map is negated (``w_j -> -w_j`` and ``b_j -> -b_j``, so the
    dual neuron computes ``-y_j``) and seeded with ``R_L[j] = y_j``. Only the
    target column is ever seeded, so negating all columns of ``W^L`` is the
    same computation for every sample's target.

Choice points (the paper leaves them open; see docs/extensions.md):

* Normalisation of the dual. The paper text seeds the dual with the same
  total relevance ``S`` as the target (so ``sum R`` and ``sum R_dual`` agree up
  to the ledger terms); that is what this module does. The authors' code
  (github.com/JindongGu/Contrastive-LRP, ``run.py``) instead seeds each other
  class with its own ``|y_k|`` and rescales both heatmaps to unit sum before
  subtracting; reproduce it with ``explain(output_relevance=...)``.
* The bias of the negated neuron: the paper negates "the weights"; its code
  uses a bias-free z+ rule, where the choice does not show.
* The rule: any rule, list or composite of ``explain`` (applied to ``f`` and to
  the dual network alike). The paper uses z^B on the first layer and z+
  elsewhere. Note that with a sign-symmetric rule at the last layer (LRP-0,
  LRP-epsilon) negating ``w_j`` and ``b_j`` changes no ratio
  ``z_ij / z_j``: then ``R_dual = R`` and the negated CLRP is 0. The negated
  dual needs a rule that treats positive and negative contributions
  differently there (z+, alpha-beta), as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..layers.dense import Dense
from ..network import Explanation, Sequential, one_hot

Array = np.ndarray

DUALS = ("others", "negated")


@dataclass(frozen=True)
class ContrastiveExplanation:
    """The result of :func:`clrp`.

    Attributes
    ----------
    relevance : ndarray
        ``R_CLRP = max(0, R - R_dual)``, shaped like the input.
    explanation : Explanation
        The target's ordinary explanation ``R`` (with its ledger).
    dual : Explanation
        The dual's explanation ``R_dual`` (with its ledger). For
        ``dual="negated"`` its ``output`` is the dual network's, with
        ``-y_j`` at the target.
    """

    relevance: Array
    explanation: Explanation
    dual: Explanation


def clrp(net: Sequential, x: Array, target: Any = None, rule: Any = None,
         dual: str = "others", method: str = "fast") -> ContrastiveExplanation:
    """Contrastive LRP, ``R_CLRP = max(0, R - R_dual)`` (Gu et al. 2018).

    Parameters
    ----------
    net : Sequential
        A network whose last layer is a :class:`~lrp_ref.Dense` (the logits).
    x : ndarray
        Input batch.
    target : int, sequence of int or None
        The class ``j`` (None: each sample's argmax).
    rule : Rule, list or composite
        As in :meth:`~lrp_ref.Sequential.explain`, used for both explanations.
    dual : {"others", "negated"}
        The dual concept (module docstring): the other classes sharing ``y_j``
        uniformly, or the target neuron with negated weights and bias.
    method : {"fast", "explicit"}

    Returns
    -------
    ContrastiveExplanation
    """
    _check_network(net)
    if dual not in DUALS:
        raise ValueError(f"clrp: dual must be one of {DUALS}, got {dual!r}")
    explanation = net.explain(x, target=target, rule=rule, method=method)
    if dual == "others":
        seed = others_seed(explanation.output, explanation.target)
        dual_net = net
    else:
        seed = target_seed(explanation.output, explanation.target)
        dual_net = negated_network(net)
    dual_explanation = dual_net.explain(x, target=explanation.target, rule=rule,
                                        output_relevance=seed, method=method)
    relevance = np.maximum(0, explanation.relevance - dual_explanation.relevance)
    return ContrastiveExplanation(relevance, explanation, dual_explanation)


def others_seed(output: Array, target: Array) -> Array:
    """The "others" dual's output relevance: ``y_j / (C - 1)`` at every ``k != j``, 0 at ``j``.

    Parameters
    ----------
    output : ndarray, shape (B, C)
        The logits ``y``.
    target : ndarray, shape (B,)
        The target class ``j`` of each sample.
    """
    batch, classes = output.shape
    if classes < 2:
        raise ValueError("clrp: the 'others' dual needs at least 2 classes, "
                         f"the network has {classes}")
    samples = np.arange(batch)
    score = output[samples, target]
    seed = np.repeat((score / (classes - 1))[:, None], classes, axis=1)
    seed[samples, target] = 0
    return seed


def target_seed(output: Array, target: Array) -> Array:
    """``onehot(j) * y_j``: the score of the target class at the target, 0 elsewhere."""
    return one_hot(output, target, logit=True)


def negated_network(net: Sequential) -> Sequential:
    """A copy of ``net`` whose last Dense computes ``-y``: ``w -> -w``, ``b -> -b``."""
    _check_network(net)
    last = net.layers[-1]
    lower = [layer.astype(last.weight.dtype) for layer in net.layers[:-1]]
    return Sequential([*lower, Dense(-last.weight, -last.bias)])


def _check_network(net: Any) -> None:
    if not isinstance(net, Sequential) or not net.layers or not isinstance(net.layers[-1],
                                                                           Dense):
        raise TypeError(f"clrp needs a Sequential whose last layer is a Dense (the logits), "
                        f"got {type(net).__name__}")


__all__ = [
    "DUALS",
    "ContrastiveExplanation",
    "clrp",
    "negated_network",
    "others_seed",
    "target_seed",
]
