"""2-D convolution: a linear layer whose outputs see a sliding window of the input."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import float_dtype
from ..engine import kernels
from ..engine.patches import Window
from .base import ParameterGradient, as_float_array, check_finite
from .linear import LinearLayer

Array = np.ndarray


class Conv2d(LinearLayer):
    """2-D convolution (cross-correlation, NCHW), like ``torch.nn.functional.conv2d``.

    With input ``a`` of shape ``(B, C_in, H, W)``, weight ``w`` of shape
    ``(C_out, C_in, kh, kw)``, stride ``(sh, sw)`` and zero padding ``(ph, pw)``::

        z[b, o, p, q] = sum_{c, u, v} a_pad[b, c, p*sh + u, q*sw + v] * w[o, c, u, v] + b[o]

    In the symbols of the equations an output ``j = (o, p, q)`` is connected to
    the inputs ``i = (c, y, x)`` of its window, with ``w_ij = w[o, c, u, v]``
    where ``y = p*sh + u - ph`` and ``x = q*sw + v - pw``; so ``z_ij = a_i w_ij``
    and ``z_j = sum_i z_ij + b_j`` as for Dense, and every linear rule applies
    (eqs. (5)-(7) of docs/theory.md; the rule zoo of Montavon et al. 2019). Padded positions
    are not inputs: they hold 0 in ``a`` and in every modified input, so they add
    nothing to any ``z_j``, count for no ``n_j`` in Flat and take no relevance.

    The explicit path materialises ``z_ij`` per output position ``p`` and
    receptive-field element ``k = (c, u, v)``; the fast path is the four steps
    of the engine (``lrp_ref.engine.linear``) with ``linear`` an im2col GEMM
    and ``linear_T`` the transposed convolution (``lrp_ref.engine.kernels``:
    a convolution with the flipped kernel or GEMMs and a fold, the same values
    either way).

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in, kh, kw)
    bias : array_like, shape (C_out,), optional
        Zeros when None.
    stride, padding : int or pair of ints
        As in PyTorch: ``stride >= 1``, zero padding ``>= 0`` on each side.
    """

    array_names = ("weight", "bias")
    parameter_names = ("weight", "bias")
    #: The largest im2col block built at once, in bytes (``kernels.BAND_BYTES``).
    BAND_BYTES = kernels.BAND_BYTES
    grad_weight = ParameterGradient()
    grad_bias = ParameterGradient()

    def __init__(self, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0) -> None:
        super().__init__()
        w = np.asarray(weight)
        dtype = float_dtype(w)
        self.weight = as_float_array(w, dtype, "Conv2d")
        if self.weight.ndim != 4:
            raise ValueError("Conv2d: weight must have shape (C_out, C_in, kh, kw), "
                             f"got {self.weight.shape}")
        if 0 in self.weight.shape:
            raise ValueError("Conv2d: weight must have at least 1 output channel, 1 input "
                             f"channel and a 1x1 kernel, got {self.weight.shape}")
        n_out = self.weight.shape[0]
        self.bias = (np.zeros(n_out, dtype) if bias is None
                     else as_float_array(bias, dtype, "Conv2d"))
        if self.bias.shape != (n_out,):
            raise ValueError(f"Conv2d: bias must have shape ({n_out},), got {self.bias.shape}")
        check_finite("weight", self.weight, "Conv2d")
        check_finite("bias", self.bias, "Conv2d")
        self.window = Window.make(self.weight.shape[2:], stride, padding, "Conv2d")

    def hyperparameters(self) -> dict[str, Any]:
        return {"stride": list(self.window.stride), "padding": list(self.window.padding)}

    def expected_input_shape(self) -> tuple[int | None, ...]:
        return (None, self.weight.shape[1], None, None)

    def _cols(self, x: Array) -> Array:
        """im2col: ``cols[b, k, p]``, ``(B, K, P)`` with ``k = (c, u, v)``, ``p = (p, q)``."""
        self.window.output_size(x.shape[2:], self.where)
        cols = self.window.columns(x)
        return cols.reshape(cols.shape[0], -1, cols.shape[3] * cols.shape[4])

    def _compute_parameter_gradients(self, a: Array, grad_z: Array) -> dict[str, Array]:
        B, n_out = grad_z.shape[:2]
        # dL/dw[o, k] = sum_{b, p} dL/dz[b, o, p] * cols[b, k, p]
        grad_w = np.tensordot(grad_z.reshape(B, n_out, -1), self._cols(a), axes=([0, 2], [0, 2]))
        return {"weight": grad_w.reshape(self.weight.shape), "bias": grad_z.sum(axis=(0, 2, 3))}

    # -- the maps of the linear-rule engine --------------------------------------------

    def linear(self, x: Array, w: Array) -> Array:
        self.window.output_size(x.shape[2:], self.where)
        return kernels.convolve(x, w, self.window, self.BAND_BYTES)

    def linear_T(self, s: Array, w: Array) -> Array:
        return kernels.transposed_convolution(s, w, self.window, self._input.shape[2:],
                                              self.BAND_BYTES)

    def expand_bias(self, b: Array) -> Array:
        return b[:, None, None]

    # explicit path: P = Ho*Wo output positions, K = C_in*kh*kw window elements, J = C_out

    def patches(self, x: Array) -> Array:
        return self._cols(x).transpose(0, 2, 1)

    def fold(self, cols: Array) -> Array:
        B = cols.shape[0]
        Ho, Wo = self._output_shape[2:]
        C, kh, kw = self.weight.shape[1:]
        windows = cols.transpose(0, 2, 1).reshape(B, C, kh * kw, Ho, Wo)
        return self.window.fold(windows, self._input.shape[2:])

    def weight_pkj(self, w: Array) -> Array:
        return w.reshape(w.shape[0], -1).T[None]

    def output_pj(self, z: Array) -> Array:
        return z.reshape(z.shape[0], z.shape[1], -1).transpose(0, 2, 1)

    def output_from_pj(self, z_pj: Array) -> Array:
        return z_pj.transpose(0, 2, 1).reshape(z_pj.shape[0], -1, *self._output_shape[2:])
