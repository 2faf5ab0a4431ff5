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

    The input is ``(B, in)``, or ``(B, ..., in)`` as torch's ``nn.Linear`` takes
    it (tokens ``(B, T, in)``, a channels-last image ``(B, H, W, in)``): every
    position is mapped on its own, and its relevance is that of a sample of its
    own (the explicit path's output positions ``p``).

    Parameters
    ----------
    weight : array_like, shape (in, out)
    bias : array_like, shape (out,), optional
        Zeros when None.
    """

    array_names = ("weight", "bias")
    parameter_names = ("weight", "bias")
    maps_positions = True
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

    def _compute_parameter_gradients(self, a: Array, grad_z: Array) -> dict[str, Array]:
        a, grad_z = a.reshape(-1, a.shape[-1]), grad_z.reshape(-1, grad_z.shape[-1])
        return {"weight": a.T @ grad_z, "bias": grad_z.sum(axis=0)}     # summed over positions

    # -- the maps of the linear-rule engine --------------------------------------------

    def linear(self, a: Array, w: Array) -> Array:
        return a @ w

    def linear_T(self, s: Array, w: Array) -> Array:
        return s @ w.T

    def expand_bias(self, b: Array) -> Array:
        return b

    # the output positions p are the positions of (B, ..., in) (P = 1 for (B, in)); the
    # receptive field of each is its own input row (K = in)

    def patches(self, x: Array) -> Array:
        return x.reshape(x.shape[0], -1, x.shape[-1])

    def fold(self, cols: Array) -> Array:
        return cols.reshape(self._input.shape)

    def weight_pkj(self, w: Array) -> Array:
        return w[None]

    def output_pj(self, z: Array) -> Array:
        return z.reshape(z.shape[0], -1, z.shape[-1])

    def output_from_pj(self, z_pj: Array) -> Array:
        return z_pj.reshape(self.output_shape)
