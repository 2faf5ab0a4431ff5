"""Pooling, as torch computes it: AvgPool2d and AdaptiveAvgPool2d (linear layers, every
linear rule), MaxPool2d and AdaptiveMaxPool2d (no rule, a mode).

Every pooling reads windows of its input, per channel. Their geometry (kernel,
stride, zero padding, dilation, ``ceil_mode``, or torch's adaptive windows) is
:class:`~lrp_ref.engine.patches.AxisWindows` along each axis: an index table
into the input padded beforehand. Padding is no input: it holds ``-inf`` for a
maximum (never a winner) and 0 for a sum and for every modified input of a
linear rule (so Flat, WSquare and ZBox count only true inputs), the convention
of Conv2d's padding (docs/conventions.md, "Padding"). Where the windows are
those of a plain strided window (the common case) the layers use the strided
:class:`~lrp_ref.engine.patches.Window`, whose tiled path keeps VGG-16's
max-pooling fast; otherwise an :class:`~lrp_ref.engine.patches.IndexWindow`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..audit import Ledger, dropped_relevance
from ..checks import is_int
from ..engine import kernels
from ..engine.patches import AxisWindows, as_pair, axis_window
from ..rules import Rule
from .base import Layer
from .calls import Kept
from .linear import LinearLayer

Array = np.ndarray


class PoolGeometry:
    """Mixin of the window layers: the windows of the last forward's input, per axis.

    A subclass gives :meth:`_geometry` (the two :class:`AxisWindows` for an
    input of spatial size ``(H, W)``); ``forward`` sets :attr:`axes` and
    :attr:`window` (the 2-D windows over the padded input) from it.
    """

    where: str
    #: ``(rows, cols)`` of the forward's input (None before one): chosen by each
    #: forward from its input's size, so kept per call (lrp_ref.layers.calls).
    axes = Kept()
    #: The 2-D windows of that forward over the padded input.
    window = Kept()

    def expected_input_shape(self) -> tuple[int | None, ...]:
        return (None, None, None, None)

    def _geometry(self, size: tuple[int, int]) -> tuple[AxisWindows, AxisWindows]:
        raise NotImplementedError

    def _set_geometry(self, size: tuple[int, int]) -> None:
        rows, cols = self._geometry(tuple(size))
        if rows.index.shape[0] < 1 or cols.index.shape[0] < 1:
            raise ValueError(f"{self.where}: input of spatial size {tuple(size)} is smaller "
                             f"than the kernel {getattr(self, 'kernel_size', '')}")
        if not (rows.inputs.any(axis=1).all() and cols.inputs.any(axis=1).all()):
            raise ValueError(f"{self.where}: on input of spatial size {tuple(size)} a window "
                             "lies in the padding only and holds no input; use less padding "
                             "or dilation")
        self.axes = (rows, cols)
        self.window = axis_window(rows, cols)

    def _padded(self, a: Array, value: float) -> Array:
        """``a`` with the padding of the windows around it, filled with ``value``."""
        (top, bottom), (left, right) = (axis.pad for axis in self.axes)
        if top == bottom == left == right == 0:
            return a
        return np.pad(a, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)

    def _crop(self, x: Array) -> Array:
        """The input positions of a :meth:`_padded` array (a view)."""
        (top, _), (left, _) = (axis.pad for axis in self.axes)
        H, W = (axis.size for axis in self.axes)
        return x[:, :, top:top + H, left:left + W]


def sliding_axes(size: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int], dilation: tuple[int, int],
                 ceil_mode: bool) -> tuple[AxisWindows, AxisWindows]:
    """torch's pooling windows along both axes (:meth:`AxisWindows.sliding`)."""
    return tuple(AxisWindows.sliding(*args, ceil_mode)        # type: ignore[return-value]
                 for args in zip(size, kernel, stride, padding, dilation))


def check_padding(name: str, padding: tuple[int, int], kernel: tuple[int, int]) -> None:
    """Refuse padding above half the kernel, as torch does."""
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"{name}: padding {padding} must be at most half the kernel "
                         f"{kernel} (as in PyTorch), so that every window holds an input")


class WindowedLinear(PoolGeometry, LinearLayer):
    """A depthwise linear layer over windows with per-position weights (no bias)::

        z[b, c, p, q] = sum_k  a_pad[b, c, rows[p, u], cols[q, v]] * w[k, p, q],  k = u*kw + v

    ``w[k, p, q]`` (:attr:`weight`, shape ``(kh*kw, Ho, Wo)``, the same for
    every channel) is ``w_ij`` from slot ``k`` of window ``(p, q)`` to output
    ``j = (c, p, q)``; it may differ from window to window (AvgPool2d's
    divisors, Upsample's interpolation weights). A subclass gives the
    geometry and :meth:`_slot_weights`. The rules' modifiers act on ``w``
    element-wise; padded slots read 0 in every (modified) input, so they count
    for nothing in any rule. The explicit path has ``P = C Ho Wo`` windows of
    ``K = kh kw`` slots, one output each (``J = 1``), and ``weight_pkj`` of
    shape ``(P, K, 1)``.
    """

    #: ``w[k, p, q]``, made by each forward for its input's size: kept per call.
    _weight = Kept()

    @property
    def weight(self) -> Array | None:
        """``w[k, p, q]`` of the last forward (None before one)."""
        return self._weight

    @property
    def bias(self) -> Array:
        """``b_j = 0`` (a scalar zero, in the dtype of the weights: of the last input)."""
        return np.zeros((), dtype=np.float64 if self._weight is None else self._weight.dtype)

    def _slot_weights(self) -> Array:
        """``w[k, p, q]`` for the geometry of :attr:`axes` (float64)."""
        raise NotImplementedError

    def _forward(self, a: Array) -> Array:
        self._set_geometry(a.shape[2:])
        # contiguous, so that every rule's modified weights are summed in the same order
        self._weight = np.ascontiguousarray(self._slot_weights(), dtype=a.dtype)
        return super()._forward(a)

    def _compute_parameter_gradients(self, a: Array, grad_z: Array) -> dict[str, Array]:
        return {}                                   # no trainable parameters

    # -- the maps of the linear-rule engine --------------------------------------------

    def _columns(self, x: Array) -> Array:
        """``(B, C, K, Ho, Wo)``: the windows of ``x`` zero-padded (padding is no input)."""
        return self.window.columns(self._padded(x, 0.0))

    def _padded_size(self) -> tuple[int, int]:
        return tuple(axis.size + sum(axis.pad) for axis in self.axes)

    def linear(self, a: Array, w: Array) -> Array:
        return np.einsum("bckpq,kpq->bcpq", self._columns(a), w)

    def linear_T(self, s: Array, w: Array) -> Array:
        # slot k of window (p, q) receives w[k, p, q] s[b, c, p, q]
        return self._crop(self.window.fold(w * s[:, :, None], self._padded_size()))

    def expand_bias(self, b: Array) -> Array:
        return b

    def patches(self, x: Array) -> Array:
        windows = self._columns(x)
        return windows.transpose(0, 1, 3, 4, 2).reshape(x.shape[0], -1, windows.shape[2])

    def fold(self, cols: Array) -> Array:
        _, C, Ho, Wo = self._output_shape
        windows = cols.reshape(-1, C, Ho, Wo, cols.shape[2]).transpose(0, 1, 4, 2, 3)
        return self._crop(self.window.fold(windows, self._padded_size()))

    def weight_pkj(self, w: Array) -> Array:
        K, Ho, Wo = w.shape
        C = self._output_shape[1]
        return np.broadcast_to(w.transpose(1, 2, 0), (C, Ho, Wo, K)).reshape(-1, K, 1)

    def output_pj(self, z: Array) -> Array:
        return z.reshape(z.shape[0], -1, 1)

    def output_from_pj(self, z_pj: Array) -> Array:
        return z_pj.reshape(z_pj.shape[0], *self._output_shape[1:])


class AvgPool2d(WindowedLinear):
    """Average pooling, a depthwise linear layer like ``torch.nn.AvgPool2d``::

        z[b, c, p, q] = sum_{u, v} a_pad[b, c, p*sh + u, q*sw + v] / d[p, q]

    Output ``j = (c, p, q)`` is connected to the inputs ``i`` of its window in
    its own channel with ``w_ij = 1 / d_j``; there is no bias (``b_j = 0``,
    so the bias ledger term is 0). The divisor ``d_j`` is torch's: ``kh kw``
    (the window including zero padding, but not the overhang of a
    ``ceil_mode`` window beyond it), the number of true inputs with
    ``count_include_pad=False``, or ``divisor_override``. Every linear rule
    applies, through the same engine as Dense and Conv2d, with the rule's
    modifiers acting on ``w`` (Flat and WSquare see the window's true inputs
    only; AlphaBeta splits ``z_ij`` by the sign of ``a_i``). Note that
    Zennit's parameter-based rules leave AvgPool unmodified, and its
    composites give it the z-rule (docs/peers.md).

    Parameters
    ----------
    kernel_size : int or pair of ints
    stride : int or pair of ints, optional
        The kernel size when None (as in PyTorch).
    padding : int or pair of ints
        Zero padding on each side, at most half the kernel (as in PyTorch).
    ceil_mode : bool
        Round the number of windows up (torch's rule: a last window that
        would start in the right padding is left out).
    count_include_pad : bool
        Whether the divisor counts the zero padding in the window.
    divisor_override : int, optional
        A fixed divisor for every window.
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__()
        name = type(self).__name__
        self.kernel_size = as_pair(kernel_size, "kernel_size", name, 1)
        self.stride = as_pair(kernel_size if stride is None else stride, "stride", name, 1)
        self.padding = as_pair(padding, "padding", name, 0)
        check_padding(name, self.padding, self.kernel_size)
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        if divisor_override is not None and not (is_int(divisor_override)
                                                 and divisor_override > 0):
            raise ValueError(f"{name}: divisor_override must be a positive int or None, "
                             f"got {divisor_override!r}")
        self.divisor_override = None if divisor_override is None else int(divisor_override)

    def hyperparameters(self) -> dict[str, Any]:
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": list(self.padding), "ceil_mode": self.ceil_mode,
                "count_include_pad": self.count_include_pad,
                "divisor_override": self.divisor_override}

    def _geometry(self, size: tuple[int, int]) -> tuple[AxisWindows, AxisWindows]:
        return sliding_axes(size, self.kernel_size, self.stride, self.padding, (1, 1),
                            self.ceil_mode)

    def _divisors(self, axis: AxisWindows, padding: int) -> Array:
        """The divisor's factor along one axis, per output (torch's ``avg_pool2d``)."""
        if not self.count_include_pad:
            return axis.inputs.sum(axis=1)
        start = axis.index[:, 0]                   # the window, clipped at the padding's end
        return np.minimum(start + axis.index.shape[1], axis.size + 2 * padding) - start

    def _slot_weights(self) -> Array:
        (rows, cols), K = self.axes, int(np.prod(self.window.kernel))
        if self.divisor_override is not None:
            d = np.full((rows.index.shape[0], cols.index.shape[0]), float(self.divisor_override))
        else:
            d = np.outer(*(self._divisors(axis, p) for axis, p in zip(self.axes, self.padding)))
        return np.broadcast_to(1.0 / d, (K, *d.shape))


class AdaptiveAvgPool2d(AvgPool2d):
    """Average pooling to a fixed output size, like ``torch.nn.AdaptiveAvgPool2d``.

    For an input of spatial size ``(H, W)`` and ``output_size = (Ho, Wo)``,
    output row ``p`` averages the input rows ``floor(p H / Ho) <= y <
    ceil((p + 1) H / Ho)`` (likewise for columns): torch's windows, which
    differ in size and may overlap when ``Ho`` does not divide ``H``. The
    weight of an output is 1 over the number of inputs in its window; every
    linear rule applies as for :class:`AvgPool2d` (a shorter window's unused
    slots are padding: no input in any rule). ``output_size = 1`` is global
    average pooling (ResNet's and DenseNet's head, and ``x.mean((2, 3))``
    before its flattening); VGG's ``AdaptiveAvgPool2d(7)`` on a 2x2 input
    copies each input to a block of the output.

    Parameters
    ----------
    output_size : int or pair of ints
    """

    def __init__(self, output_size: Any) -> None:
        super().__init__(1, count_include_pad=False)
        self.output_size = as_pair(output_size, "output_size", type(self).__name__, 1)

    def hyperparameters(self) -> dict[str, Any]:
        return {"output_size": list(self.output_size)}

    def _geometry(self, size: tuple[int, int]) -> tuple[AxisWindows, AxisWindows]:
        return tuple(AxisWindows.adaptive(n, m)       # type: ignore[return-value]
                     for n, m in zip(size, self.output_size))


class MaxPool2d(PoolGeometry, Layer):
    """Max pooling, ``z[b, c, p, q] = max_{u, v} a_pad[b, c, p*sh + u*dh, q*sw + v*dw]``.

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
        either mode. So does the overhang of a ``ceil_mode`` window.
    dilation : int or pair of ints
        The spacing of the window's elements (torch's ``dilation``).
    ceil_mode : bool
        Round the number of windows up, as torch does (SqueezeNet, GoogLeNet).
    """

    MODES = ("winner", "proportional")
    #: The forward's output ``z_j = max_i a_i``, per call.
    _z = Kept()

    def __init__(self, kernel_size: Any, stride: Any = None, mode: str = "winner",
                 padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False) -> None:
        super().__init__()
        name = type(self).__name__
        if mode not in self.MODES:
            raise ValueError(f"{name}: mode must be 'winner' or 'proportional', got {mode!r}")
        self.mode = mode
        self.kernel_size = as_pair(kernel_size, "kernel_size", name, 1)
        self.stride = as_pair(kernel_size if stride is None else stride, "stride", name, 1)
        self.padding = as_pair(padding, "padding", name, 0)
        self.dilation = as_pair(dilation, "dilation", name, 1)
        self.ceil_mode = bool(ceil_mode)
        check_padding(name, self.padding, self.kernel_size)

    def hyperparameters(self) -> dict[str, Any]:
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "mode": self.mode, "padding": list(self.padding),
                "dilation": list(self.dilation), "ceil_mode": self.ceil_mode}

    def _geometry(self, size: tuple[int, int]) -> tuple[AxisWindows, AxisWindows]:
        return sliding_axes(size, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode)

    def _forward(self, a: Array) -> Array:
        # padding is -inf: it never wins. z is kept for the winners [a_i = z_j] of
        # relevance, as ReLU keeps its output (the next layer keeps it as its input
        # anyway): not recomputed there
        self._set_geometry(a.shape[2:])
        self._z = kernels.window_max(self.window.offsets(self._padded(a, -np.inf)))
        return self._z

    def _backward(self, grad_z: Array) -> Array:
        a_pad = self._padded(self._input, -np.inf)
        windows = self.window.columns(a_pad)
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


class AdaptiveMaxPool2d(MaxPool2d):
    """Max pooling to a fixed output size, like ``torch.nn.AdaptiveMaxPool2d``: the
    windows of :class:`AdaptiveAvgPool2d` (torch's, unequal and overlapping where the
    output size does not divide the input's), the relevance modes of :class:`MaxPool2d`.

    Parameters
    ----------
    output_size : int or pair of ints
    mode : {"winner", "proportional"}
    """

    def __init__(self, output_size: Any, mode: str = "winner") -> None:
        super().__init__(1, mode=mode)
        self.output_size = as_pair(output_size, "output_size", type(self).__name__, 1)

    def hyperparameters(self) -> dict[str, Any]:
        return {"output_size": list(self.output_size), "mode": self.mode}

    def _geometry(self, size: tuple[int, int]) -> tuple[AxisWindows, AxisWindows]:
        return tuple(AxisWindows.adaptive(n, m)       # type: ignore[return-value]
                     for n, m in zip(size, self.output_size))
