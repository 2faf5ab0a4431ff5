"""Pooling: AvgPool2d (a linear layer, every linear rule) and MaxPool2d (no rule, a mode)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..audit import Ledger, dropped_relevance
from ..engine import kernels
from ..engine.patches import Window, as_pair
from ..rules import Rule
from .base import Layer
from .calls import Kept
from .linear import LinearLayer

Array = np.ndarray


class PoolingWindow:
    """Mixin of the pooling layers: a window per channel, stride = kernel by default."""

    where: str

    def __init__(self, kernel_size: Any, stride: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        self.window = Window.make(kernel_size, kernel_size if stride is None else stride, 0, name)

    def hyperparameters(self) -> dict[str, Any]:
        return {"kernel_size": list(self.window.kernel), "stride": list(self.window.stride)}

    def expected_input_shape(self) -> tuple[int | None, ...]:
        return (None, None, None, None)

    def _windows(self, a: Array) -> Array:
        """``(B, C, kh*kw, Ho, Wo)``: the windows of ``a`` (checks that one fits)."""
        self.window.output_size(a.shape[2:], self.where)
        return self.window.columns(a)

    def _offsets(self, a: Array) -> list[Array]:
        """``_windows(a)[:, :, k]`` for each window element ``k``, as views of ``a``."""
        self.window.output_size(a.shape[2:], self.where)
        return self.window.offsets(a)


class AvgPool2d(PoolingWindow, LinearLayer):
    """Average pooling, a depthwise linear layer like ``torch.nn.AvgPool2d`` (no padding)::

        z[b, c, p, q] = sum_{u, v} a[b, c, p*sh + u, q*sw + v] * w[u, v],   w = 1 / (kh kw)

    Output ``j = (c, p, q)`` is connected to the inputs ``i`` of its window in
    its own channel with ``w_ij = 1 / (kh kw)``; there is no bias (``b_j = 0``,
    so the bias ledger term is 0). Every linear rule applies, through the same
    engine as Dense and Conv2d, with the rule's modifiers acting on ``w`` (e.g.
    Flat and WSquare see ``kh kw`` equal weights; AlphaBeta splits ``z_ij`` by
    the sign of ``a_i``). Note that Zennit's parameter-based rules leave
    AvgPool unmodified, and its composites give it the z-rule (docs/peers.md).

    The explicit path counts the channel into the output position: ``P =
    C Ho Wo`` windows of ``K = kh kw`` elements, each with one output (``J = 1``).

    Parameters
    ----------
    kernel_size : int or pair of ints
    stride : int or pair of ints, optional
        The kernel size when None (as in PyTorch).
    """

    @property
    def weight(self) -> Array:
        """The constant kernel ``w[u, v] = 1 / (kh kw)``, in the dtype of the last input."""
        kh, kw = self.window.kernel
        dtype = np.float64 if self._input is None else self._input.dtype
        return np.full((kh, kw), 1 / (kh * kw), dtype=dtype)

    @property
    def bias(self) -> Array:
        """``b_j = 0`` (a scalar zero, in the dtype of the last input)."""
        return np.zeros((), dtype=np.float64 if self._input is None else self._input.dtype)

    def _forward(self, a: Array) -> Array:
        return self._windows(a).mean(axis=2)

    def _compute_parameter_gradients(self, a: Array, grad_z: Array) -> dict[str, Array]:
        return {}                                   # AvgPool2d has no parameters

    # -- the maps of the linear-rule engine --------------------------------------------

    def linear(self, a: Array, w: Array) -> Array:
        return np.einsum("bckpq,k->bcpq", self._windows(a), w.ravel())

    def linear_T(self, s: Array, w: Array) -> Array:
        # every window element k = (u, v) of output (c, p, q) receives w[u, v] s[b, c, p, q]
        cols = w.reshape(1, 1, -1, 1, 1) * s[:, :, None]
        return self.window.fold(cols, self._input.shape[2:])

    def expand_bias(self, b: Array) -> Array:
        return b

    # explicit path: P = C*Ho*Wo (channel, position), K = kh*kw, J = 1

    def patches(self, x: Array) -> Array:
        windows = self._windows(x)
        return windows.transpose(0, 1, 3, 4, 2).reshape(x.shape[0], -1, windows.shape[2])

    def fold(self, cols: Array) -> Array:
        _, C, Ho, Wo = self._output_shape
        windows = cols.reshape(-1, C, Ho, Wo, cols.shape[2]).transpose(0, 1, 4, 2, 3)
        return self.window.fold(windows, self._input.shape[2:])

    def weight_pkj(self, w: Array) -> Array:
        return w.reshape(1, -1, 1)

    def output_pj(self, z: Array) -> Array:
        return z.reshape(z.shape[0], -1, 1)

    def output_from_pj(self, z_pj: Array) -> Array:
        return z_pj.reshape(z_pj.shape[0], *self._output_shape[1:])


class AdaptiveAvgPool2d(AvgPool2d):
    """Average pooling to a fixed output size, like ``torch.nn.AdaptiveAvgPool2d``.

    For an input of spatial size ``(H, W)`` and ``output_size = (Ho, Wo)``
    that divide it, the windows are ``kernel = stride = (H / Ho, W / Wo)``:
    this is :class:`AvgPool2d` with that kernel, chosen at each forward from
    the input's size, and every linear rule applies as there. ``output_size
    = 1`` is global average pooling (ResNet's and DenseNet's head, and
    ``x.mean((2, 3))`` before its flattening). Sizes that do not divide the
    input (torch then uses windows of unequal size) are refused.

    Parameters
    ----------
    output_size : int or pair of ints
    """

    #: The window, chosen by each forward from its input's size: per call.
    window = Kept()

    def __init__(self, output_size: Any) -> None:
        self.output_size = as_pair(output_size, "output_size", "AdaptiveAvgPool2d", 1)
        super().__init__(1)

    def hyperparameters(self) -> dict[str, Any]:
        return {"output_size": list(self.output_size)}

    def _forward(self, a: Array) -> Array:
        size = a.shape[2:]
        if any(n % m for n, m in zip(size, self.output_size)):
            raise ValueError(f"{self.where}: output size {self.output_size} does not divide the "
                             f"input's spatial size {tuple(size)}; lrp_ref computes adaptive "
                             "pooling with equal windows only")
        kernel = tuple(n // m for n, m in zip(size, self.output_size))
        self.window = Window.make(kernel, kernel, 0, self.where)
        return super()._forward(a)


class MaxPool2d(PoolingWindow, Layer):
    """Max pooling, ``z[b, c, p, q] = max_{u, v} a_pad[b, c, p*sh + u, q*sw + v]``.

    Why max-pooling is a hard case (docs/theory.md, section 6): the forward pass keeps
    only the maximum of each window and discards the other inputs, so there are
    no contributions ``z_ij`` whose sum is ``z_j`` and no linear rule applies.
    Sending all relevance to the maximum is the usual choice, but it is a
    heuristic, not the only correct one. The layer therefore takes no rule;
    its ``mode`` decides (``R_j`` arrives at window ``j``, ``i`` runs over its
    inputs; where windows overlap an input collects from each of them)::

        winner:        R_i = sum_j  [a_i = z_j] / n_j * R_j,   n_j = #{i in j : a_i = z_j}
        proportional:  R_i = sum_j  a_i / (sum_{i' in j} a_i') * R_j

    ``winner`` (the default; the LRP Toolbox's winner-take-all) assumes the
    output's evidence is its maximal input alone, which is what the pool
    computes locally (``z_j = a_i*``, the map the gradient sees): so LRP-0
    through it equals Gradient x Input where there are no ties. A tie splits
    ``R_j`` equally between the maxima. It is discontinuous in the input: a
    small change can move all of ``R_j`` to another element.

    ``proportional`` treats the window as a sum for redistribution (LRP-0 of a
    sum-pool, no bias): every input gets a share in proportion to its value. It
    assumes non-negative inputs (after a ReLU), where the shares lie in
    ``[0, 1]``; a window whose inputs sum to exactly 0 passes nothing down and
    its ``R_j`` is booked as ``dropped``.

    ``backward`` is the ordinary gradient with PyTorch's tie convention: the
    whole gradient of a window goes to its first maximum in row-major window
    order, as ``torch.nn.functional.max_pool2d`` does. (Relevance in ``winner``
    mode splits ties instead, so LRP-0 and Gradient x Input may distribute a
    tied window's relevance differently; they agree on its sum.)

    Parameters
    ----------
    kernel_size : int or pair of ints
    stride : int or pair of ints, optional
        The kernel size when None (as in PyTorch).
    mode : {"winner", "proportional"}
    padding : int or pair of ints
        Rows and columns added on each side, at most half the kernel (as in
        PyTorch; ResNet's stem pads by 1). Padding is not an input: it holds
        ``-inf`` for the maximum, so it never wins, and takes no relevance in
        either mode.
    """

    MODES = ("winner", "proportional")
    #: The forward's output ``z_j = max_i a_i``, per call.
    _z = Kept()

    def __init__(self, kernel_size: Any, stride: Any = None, mode: str = "winner",
                 padding: Any = 0) -> None:
        super().__init__(kernel_size, stride)
        if mode not in self.MODES:
            raise ValueError(f"MaxPool2d: mode must be 'winner' or 'proportional', got {mode!r}")
        self.mode = mode
        self.padding = as_pair(padding, "padding", "MaxPool2d", 0)
        if any(2 * p > k for p, k in zip(self.padding, self.window.kernel)):
            raise ValueError(f"MaxPool2d: padding {self.padding} must be at most half the kernel "
                             f"{self.window.kernel} (as in PyTorch), so that every window holds "
                             "an input")

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "mode": self.mode, "padding": list(self.padding)}

    def _padded(self, a: Array, value: float) -> Array:
        """``a`` surrounded by ``padding`` rows and columns of ``value`` (``a`` itself without)."""
        if self.padding == (0, 0):
            return a
        (ph, pw) = self.padding
        return np.pad(a, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)

    def _crop(self, x: Array) -> Array:
        """The input positions of a :meth:`_padded` array."""
        (ph, pw), (H, W) = self.padding, x.shape[2:]
        return x[:, :, ph:H - ph, pw:W - pw]

    def _forward(self, a: Array) -> Array:
        # padding is -inf: it never wins. z is kept for the winners [a_i = z_j] of
        # relevance, as ReLU keeps its output (the next layer keeps it as its input
        # anyway): not recomputed there
        self._z = kernels.window_max(self._offsets(self._padded(a, -np.inf)))
        return self._z

    def _backward(self, grad_z: Array) -> Array:
        a_pad = self._padded(self._input, -np.inf)
        windows = self._windows(a_pad)
        # the first maximum of each window in row-major (u, v) order, as in PyTorch
        first = windows.argmax(axis=2)
        is_first = np.arange(windows.shape[2])[:, None, None] == first[:, :, None]
        cols = np.where(is_first, grad_z[:, :, None], 0)
        return self._crop(self.window.fold(cols, a_pad.shape[2:]))

    def _relevance(self, R: Array, rule: Rule | None, method: str) -> tuple[Array, Ledger]:
        """Both ``method`` values compute the shares literally, for all windows at once.

        ``weight_ij`` is ``[a_i = z_j]`` (winner) or ``a_i`` (proportional);
        ``s_j = R_j / sum_i weight_ij``; ``R_i = sum_j weight_ij s_j``
        (``kernels.window_shares``; no copy of the windows is made).
        """
        self.check_rule(rule)
        a = self._input
        winner = self.mode == "winner"
        # padding holds -inf (never a winner) or 0 (no share in proportion to a_i): it
        # takes no relevance, and is cut off again
        a_pad = self._padded(a, -np.inf if winner else 0.0)
        R_in, zero = kernels.window_shares(a_pad, self._z, R, self.window, winner)
        R_in = self._crop(R_in)
        no_absorption = np.zeros(a.shape[0], dtype=a.dtype)
        return R_in, Ledger(no_absorption, no_absorption, dropped_relevance(zero, R))
