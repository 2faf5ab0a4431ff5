"""2-D convolution: a linear layer whose outputs see a sliding window of the input."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import as_float_array, check_finite
from .linear import LinearLayer, ParameterGradient
from .patches import Window

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
    (seed eqs. (5)-(7); the rule zoo of Montavon et al. 2019). Padded positions
    are not inputs: they hold 0 in ``a`` and in every modified input, so they add
    nothing to any ``z_j``, count for no ``n_j`` in Flat and take no relevance.

    The explicit path materialises ``z_ij`` per output position ``p`` and
    receptive-field element ``k = (c, u, v)``; the fast path is the four steps
    of the engine (``lrp_ref.layers.linear``) with ``_linear`` an im2col GEMM
    and ``_linear_T`` the transposed convolution: for stride-1 layers that do
    not widen and have at least ``2 C_in`` output positions a convolution with
    the flipped kernel, otherwise GEMMs and a fold (the same values either way).

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in, kh, kw)
    bias : array_like, shape (C_out,), optional
        Zeros when None.
    stride, padding : int or pair of ints
        As in PyTorch: ``stride >= 1``, zero padding ``>= 0`` on each side.
    """

    array_names = ("weight", "bias")
    #: The largest im2col block built at once, in bytes. Small blocks are served again
    #: from the allocator's heap (arrays above 32 MB are fresh pages from the OS on
    #: every call, whose first touch costs as much as the GEMM at batch 8) and stay
    #: in cache while the GEMM reads them.
    BAND_BYTES = 16 * 2**20
    grad_weight = ParameterGradient()
    grad_bias = ParameterGradient()

    def __init__(self, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0) -> None:
        super().__init__()
        w = np.asarray(weight)
        dtype = w.dtype if np.issubdtype(w.dtype, np.floating) else np.float64
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

    def _convolve(self, x: Array, w: Array, window: Window) -> Array:
        """``z[b, o, p, q] = sum_{c, u, v} x_pad[b, c, p*sh + u, q*sw + v] w[o, c, u, v]``.

        A GEMM ``(C_out, K) @ (K, P)`` per sample on the im2col matrix, built and
        multiplied in bands of output rows whose block stays below
        :attr:`BAND_BYTES` (a loop over bands, never over single positions).
        """
        Ho, Wo = window.output_size(x.shape[2:], self.where)
        B, n_out = x.shape[0], w.shape[0]
        w_mat = w.reshape(n_out, -1)
        z = np.empty((B, n_out, Ho * Wo), dtype=np.result_type(x, w))
        rows = max(1, self.BAND_BYTES // (B * w_mat.shape[1] * Wo * z.itemsize))
        for p0 in range(0, Ho, rows):
            band = range(p0, min(p0 + rows, Ho))
            cols = window.columns(x, band).reshape(B, w_mat.shape[1], -1)
            # matmul broadcasts the weight over the batch; the rows land in NCHW order
            np.matmul(w_mat, cols, out=z[:, :, band.start * Wo:band.stop * Wo])
        return z.reshape(B, n_out, Ho, Wo)

    def _compute_parameter_gradients(self, a: Array, grad_z: Array) -> dict[str, Array]:
        B, n_out = grad_z.shape[:2]
        # dL/dw[o, k] = sum_{b, p} dL/dz[b, o, p] * cols[b, k, p]
        grad_w = np.tensordot(grad_z.reshape(B, n_out, -1), self._cols(a), axes=([0, 2], [0, 2]))
        return {"weight": grad_w.reshape(self.weight.shape), "bias": grad_z.sum(axis=(0, 2, 3))}

    # -- the maps of the linear-rule engine --------------------------------------------

    def _linear(self, x: Array, w: Array) -> Array:
        return self._convolve(x, w, self.window)

    def _linear_T(self, s: Array, w: Array) -> Array:
        # c_i = sum_j w_ij s_j: the transposed convolution, without np.add.at.
        (kh, kw), (ph, pw) = self.window.kernel, self.window.padding
        n_out, n_in = w.shape[:2]
        positions = s.shape[2] * s.shape[3]
        if (self.window.stride == (1, 1) and ph < kh and pw < kw and n_out <= n_in
                and positions >= 2 * n_in):
            # With stride 1 it is itself a convolution: of s zero-padded by
            # (kh-1-ph, kw-1-pw), with the kernel flipped in space and its channel axes
            # swapped (substitute u' = kh-1-u in c[c, y, x] = sum w[o, c, u, v]
            # s[o, y + ph - u, x + pw - v]):
            #   c[b, c, y, x] = sum_{o, u', v'} w[o, c, kh-1-u', kw-1-v']
            #                                   * s_pad[b, o, y + u', x + v']
            # One im2col GEMM with K = C_out kh kw and no fold. Its column matrix has
            # C_out kh kw rows where the fold's has C_in kh kw: taken when C_out <= C_in
            # (VGG-16's first layer, 3 -> 64 channels, folds 6x faster). It also needs a
            # copy of the flipped kernel, C_in C_out kh kw entries in a slow strided
            # order, where the fold adds C_in kh kw entries per position: taken when
            # there are at least 2 C_in positions (VGG-16's 512-channel layers at 28x28
            # and 14x14 fold faster).
            flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
            return self._convolve(s, flipped, Window((kh, kw), (1, 1), (kh - 1 - ph, kw - 1 - pw)))
        return self._fold_transposed(s, w)

    def _fold_transposed(self, s: Array, w: Array) -> Array:
        """The transposed convolution for any stride: GEMMs, then fold.

        For a group of input channels c, the window entries
        ``cols[b, (c, u, v), p] = sum_o w[o, c, u, v] s[b, o, p]`` are one GEMM
        (rows of ``w^T``: a slice, no copy), and fold adds them onto those
        channels of the padded result. Each GEMM reads all of ``s``, so groups
        are large: as many channels as keep the block below :attr:`BAND_BYTES`
        (the budget of the im2col bands), and at least ``ceil(C_in / (kh kw))``
        (a block the size of the input, so ``s`` is read at most ``kh kw``
        times, also at batch 8). All groups share one block buffer and one
        padded result (fresh memory is slow to touch for the first time).
        """
        B, n_out, Ho, Wo = s.shape
        C, K = w.shape[1], w.shape[2] * w.shape[3]
        w_t = w.reshape(n_out, C * K).T
        s_p = s.reshape(B, n_out, Ho * Wo)
        c_pad = self.window.zeros_padded(B, C, self._input.shape[2:], s.dtype)
        group = min(C, max(-(-C // K), self.BAND_BYTES // (B * K * Ho * Wo * s.itemsize)))
        block = np.empty((B, group * K, Ho * Wo), dtype=s.dtype)
        for c0 in range(0, C, group):
            c1 = min(c0 + group, C)
            cols = np.matmul(w_t[c0 * K:c1 * K], s_p, out=block[:, :(c1 - c0) * K])
            self.window.add_windows(c_pad[:, c0:c1], cols.reshape(B, c1 - c0, K, Ho, Wo))
        return self.window.crop(c_pad)

    def _expand_bias(self, b: Array) -> Array:
        return b[:, None, None]

    # explicit path: P = Ho*Wo output positions, K = C_in*kh*kw window elements, J = C_out

    def _patches(self, x: Array) -> Array:
        return self._cols(x).transpose(0, 2, 1)

    def _fold(self, cols: Array) -> Array:
        B = cols.shape[0]
        Ho, Wo = self._output_shape[2:]
        C, kh, kw = self.weight.shape[1:]
        windows = cols.transpose(0, 2, 1).reshape(B, C, kh * kw, Ho, Wo)
        return self.window.fold(windows, self._input.shape[2:])

    def _weight_pkj(self, w: Array) -> Array:
        return w.reshape(w.shape[0], -1).T[None]

    def _output_pj(self, z: Array) -> Array:
        return z.reshape(z.shape[0], z.shape[1], -1).transpose(0, 2, 1)

    def _output_from_pj(self, z_pj: Array) -> Array:
        return z_pj.transpose(0, 2, 1).reshape(z_pj.shape[0], -1, *self._output_shape[2:])
