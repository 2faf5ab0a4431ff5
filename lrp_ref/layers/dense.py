"""Dense (fully connected) layer: ``z_j = sum_i a_i w_ij + b_j``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import float_dtype
from .base import ParameterGradient, as_float_array, check_finite
from .linear import LinearLayer

Array = np.ndarray


class Dense(LinearLayer):
    """A fully connected layer, ``forward(a) = a @ W + b``.

    The weight has shape ``(in, out)`` so that ``W[i, j]`` is ``w_ij`` of the
    equations: ``z_ij = a_i w_ij``, ``z_j = sum_i z_ij + b_j``.

    The input is ``(B, in)``, or ``(B, ..., in)`` as for torch's ``Linear``: the
    map applies to the last axis at every position (a transformer's token), a
    linear layer whose ``P`` positions share ``W``, like a 1x1 convolution. Each
    position's relevance is that of the ``(B, in)`` layer on it; the ledger and
    the parameter gradients sum over the positions.

    Parameters
    ----------
    weight : array_like, shape (in, out)
    bias : array_like, shape (out,), optional
        Zeros when None.
    """

    array_names = ("weight", "bias")
    parameter_names = ("weight", "bias")
    grad_weight = ParameterGradient()
    grad_bias = ParameterGradient()

    def __init__(self, weight: Any, bias: Any = None) -> None:
        super().__init__()
        w = np.asarray(weight)
        dtype = float_dtype(w)
        self.weight = as_float_array(w, dtype, "Dense")
        if self.weight.ndim != 2:
            raise ValueError(f"Dense: weight must have shape (in, out), got {self.weight.shape}")
        n_out = self.weight.shape[1]
        self.bias = (np.zeros(n_out, dtype) if bias is None
                     else as_float_array(bias, dtype, "Dense"))
        if self.bias.shape != (n_out,):
            raise ValueError(f"Dense: bias must have shape ({n_out},), got {self.bias.shape}")
        check_finite("weight", self.weight, "Dense")
        check_finite("bias", self.bias, "Dense")

    def expected_input_shape(self) -> tuple[int | None, ...]:
        """``(B, in)``, the usual input; ``(B, ..., in)`` is accepted as well (class docstring)."""
        return (None, self.weight.shape[0])

    def _check_input(self, a: Any) -> Array:
        n_in = self.weight.shape[0]
        a = as_float_array(a, self.dtype, self.where)
        if a.ndim < 2 or a.shape[-1] != n_in:
            raise ValueError(f"{self.where}: expected input of shape (B, {n_in}), got "
                             f"{a.shape} (or (B, ..., {n_in}): the map reads the last axis)")
        check_finite("input", a, self.where)
        return a

    def _compute_parameter_gradients(self, a: Array, grad_z: Array) -> dict[str, Array]:
        a2, g2 = a.reshape(-1, a.shape[-1]), grad_z.reshape(-1, grad_z.shape[-1])
        return {"weight": a2.T @ g2, "bias": g2.sum(axis=0)}

    # -- the maps of the linear-rule engine --------------------------------------------

    def linear(self, a: Array, w: Array) -> Array:
        return a @ w

    def linear_T(self, s: Array, w: Array) -> Array:
        return s @ w.T

    def expand_bias(self, b: Array) -> Array:
        return b

    # P output positions (1 for (B, in) input), each reading the last axis (K = in)

    def patches(self, x: Array) -> Array:
        return x.reshape(x.shape[0], -1, x.shape[-1])

    def fold(self, cols: Array) -> Array:
        return cols.reshape(self._input.shape)

    def weight_pkj(self, w: Array) -> Array:
        return w[None]

    def output_pj(self, z: Array) -> Array:
        return z.reshape(z.shape[0], -1, z.shape[-1])

    def output_from_pj(self, z_pj: Array) -> Array:
        return z_pj.reshape(self._input.shape[:-1] + z_pj.shape[-1:])
