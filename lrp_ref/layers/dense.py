"""Dense (fully connected) layer: ``z_j = sum_i a_i w_ij + b_j``.

On a sequence ``(B, ..., in)`` (tokens ``(B, T, in)``) it acts on every position on
its own, as torch's ``nn.Linear``: the weights are shared, a position's outputs
read only that position's inputs, so every rule is the 2-D rule of each position.
"""

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

    Input ``(B, in)``, or ``(B, ..., in)`` (position-wise: module docstring).

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
        return (None, self.weight.shape[0])

    def _check_input(self, a: Any) -> Array:
        if np.ndim(a) <= 2:
            return super()._check_input(a)
        # position-wise on (B, ..., in): every axis but the last is free
        a = as_float_array(a, self.dtype, self.where)
        if a.shape[-1] != self.weight.shape[0]:
            n_in = self.weight.shape[0]
            raise ValueError(f"{self.where}: expected input of shape (B, {n_in}) or "
                             f"(B, ..., {n_in}), got {a.shape}")
        check_finite("input", a, self.where)
        return a

    def _compute_parameter_gradients(self, a: Array, grad_z: Array) -> dict[str, Array]:
        # dL/dw_ij = sum over samples (and positions) of a_i g_j
        a2, g2 = a.reshape(-1, a.shape[-1]), grad_z.reshape(-1, grad_z.shape[-1])
        return {"weight": a2.T @ g2, "bias": g2.sum(axis=0)}

    # -- the maps of the linear-rule engine --------------------------------------------

    def linear(self, a: Array, w: Array) -> Array:
        return a @ w

    def linear_T(self, s: Array, w: Array) -> Array:
        return s @ w.T

    def expand_bias(self, b: Array) -> Array:
        return b

    # one output position per input position (P = 1 for (B, in)); its receptive field is
    # that position's input (K = in)

    def patches(self, x: Array) -> Array:
        return x.reshape(x.shape[0], -1, x.shape[-1])

    def fold(self, cols: Array) -> Array:
        return cols.reshape(cols.shape[0], *self._input.shape[1:])

    def weight_pkj(self, w: Array) -> Array:
        return w[None]

    def output_pj(self, z: Array) -> Array:
        return z.reshape(z.shape[0], -1, z.shape[-1])

    def output_from_pj(self, z_pj: Array) -> Array:
        return z_pj.reshape(z_pj.shape[0], *self._input.shape[1:-1], z_pj.shape[-1])
