"""Embedding: integer token ids ``(B, T)`` to vectors ``(B, T, dim)``; PositionalEmbedding.

The forward pass is a table lookup, ``e[b, t, :] = W[ids[b, t], :]``. It has no
contributions to split: the vector ``e_t`` *is* token ``t``, so LRP gives the
token the sum of its dimensions' relevance (Arras et al. 2017, "Explaining
recurrent neural network predictions in sentiment analysis", WASSA@EMNLP)::

    R_t = sum_d R_{t,d}

and nothing is absorbed. Token ids are discrete: the gradient with respect to
them is not defined, so ``backward`` gives ``grad_weight`` (the gradient of
the table, for training) and returns zeros. Gradient x Input and sensitivity
for tokens are taken at the embedding vectors (``lrp_ref.text``).

``PositionalEmbedding`` adds a learned vector per position, ``z_t = x_t + p_t``
(BERT's and ViT's learned positions): for relevance ``p_t`` is a bias, as the
constant of :class:`~lrp_ref.AddConstant` (eq. (6) of docs/theory.md), so the
tokens keep ``x_t / (z_t + eps sign z_t) R_t`` and the positions' share is
booked as ``absorbed_bias``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..audit import Ledger
from ..checks import float_dtype
from ..rules import Rule
from .base import Layer, ParameterGradient, as_float_array, check_finite
from .constant import AddConstant

Array = np.ndarray


class Embedding(Layer):
    """A lookup table: ``forward(ids) = W[ids]``, like ``torch.nn.Embedding``.

    Parameters
    ----------
    weight : array_like, shape (vocab, dim)
        Row ``k`` is the vector of token id ``k``.

    Notes
    -----
    The input is integer token ids of shape ``(B, T)`` with ``0 <= id < vocab``;
    a :class:`~lrp_ref.Sequential` that starts with an Embedding hands them on
    unconverted. ``relevance`` returns one value per token, shape ``(B, T)``.
    """

    array_names = ("weight",)
    parameter_names = ("weight",)
    grad_weight = ParameterGradient()
    reads_token_ids = True

    def __init__(self, weight: Any) -> None:
        super().__init__()
        w = np.asarray(weight)
        dtype = float_dtype(w)
        self.weight = as_float_array(w, dtype, "Embedding")
        if self.weight.ndim != 2:
            raise ValueError(f"Embedding: weight must have shape (vocab, dim), "
                             f"got {self.weight.shape}")
        check_finite("weight", self.weight, "Embedding")

    def _check_input(self, ids: Any) -> Array:
        ids = np.asarray(ids)
        if not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"{self.where}: expected integer token ids, got dtype {ids.dtype}"
                            " (convert whole-number ids with ids.astype(int))")
        if ids.ndim != 2:
            raise ValueError(f"{self.where}: expected token ids of shape (B, T), "
                             f"got {ids.shape}")
        vocab = self.weight.shape[0]
        bad = ids[(ids < 0) | (ids >= vocab)]
        if bad.size:
            raise ValueError(f"{self.where}: token ids must lie in [0, {vocab}), "
                             f"got {sorted(set(bad.tolist()))[:10]}")
        return ids.astype(np.int64, copy=False)

    def _forward(self, ids: Array) -> Array:
        return self.weight[ids]

    def _backward(self, grad_e: Array) -> Array:
        grad_weight = np.zeros_like(self.weight)
        np.add.at(grad_weight, self._input, grad_e)   # rows of repeated ids add up
        self._parameter_gradients = {"weight": grad_weight}
        return np.zeros(self._input.shape, self.weight.dtype)

    def _relevance(self, R: Array, rule: Rule | None, method: str) -> tuple[Array, Ledger]:
        self.check_rule(rule)
        # R_t = sum_d R_{t,d}: the vector is the token
        return R.sum(axis=2), self._no_loss(R)


class PositionalEmbedding(AddConstant):
    """``z[b, t] = x[b, t] + P[t]``: a learned vector per position, for ``T <= max_len``.

    The input is ``(B, T, dim)`` (an :class:`Embedding`'s output); row ``t`` of
    the table is added at position ``t``. Relevance: eq. (6) of docs/theory.md
    with the one contribution ``x`` and the bias ``p_t``, as
    :class:`~lrp_ref.AddConstant`::

        R(x_{t,d}) = x_{t,d} / (z_{t,d} + epsilon sign(z_{t,d})) R_{t,d}

    the positions' share ``p_{t,d} / (z + epsilon sign z) R`` is booked as
    ``absorbed_bias``. The table is trainable: ``backward`` gives
    ``grad_weight[t] = sum_b dL/dz[b, t]`` (zero rows beyond ``T``).

    Example (``epsilon = 0``): ``x = 3``, ``p = 1``, ``R = 8``: ``R_x = 3/4 8 = 6``,
    absorbed ``2``.

    Parameters
    ----------
    weight : array_like, shape (max_len, dim)
    epsilon : float
        The stabilizer of the split (default 1e-6, as Add and AddConstant).
    """

    array_names = ("weight",)
    parameter_names = ("weight",)
    grad_weight = ParameterGradient()

    def __init__(self, weight: Any, epsilon: float = 1e-6) -> None:
        super().__init__(weight, epsilon)
        if self.constant.ndim != 2:
            raise ValueError(f"PositionalEmbedding: weight must have shape (max_len, dim), "
                             f"got {self.constant.shape}")

    @property
    def weight(self) -> Array:
        """The table ``P``, ``(max_len, dim)``."""
        return self.constant

    def added(self, a: Array) -> Array:
        max_len, dim = self.weight.shape
        if a.ndim != 3 or a.shape[1] > max_len or a.shape[2] != dim:
            raise ValueError(f"{self.where}: expected input of shape (B, T <= {max_len}, {dim}),"
                             f" got {a.shape}")
        return self.weight[:a.shape[1]]

    def _backward(self, grad_z: Array) -> Array:
        grad_weight = np.zeros_like(self.weight)
        grad_weight[:grad_z.shape[1]] = grad_z.sum(axis=0)      # dL/dp_t = sum_b dL/dz_bt
        self._parameter_gradients = {"weight": grad_weight}
        return grad_z                                           # dz/dx = 1
