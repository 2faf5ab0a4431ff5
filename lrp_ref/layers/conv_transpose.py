"""The transposed convolution: a linear layer whose forward is a convolution's adjoint."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import kernels
from ..engine.patches import GatherWindows, Window, as_pair
from .conv import Convolution, check_bias, check_groups, check_weight

Array = np.ndarray


class ConvTranspose2d(Convolution):
    """2-D transposed convolution, like ``torch.nn.ConvTranspose2d`` (NCHW).

    With input ``a`` of shape ``(B, C_in, H, W)``, weight ``w`` of shape
    ``(C_in, C_out / G, kh, kw)`` (torch's layout), stride ``(sh, sw)``,
    padding ``(ph, pw)``, dilation ``(dh, dw)`` and ``G`` groups, every input
    ``(c, p, q)`` spreads over a window of the output::

        z[b, o, p*sh + u*dh - ph, q*sw + v*dw - pw] += a[b, c, p, q] * w[c, o', u, v]

    for the output channels ``o`` of the input's group (``o'`` their index in
    it), plus ``b[o]``; outputs falling on the padding are cut off.
    ``Ho = (H - 1) sh - 2 ph + dh (kh - 1) + output_padding + 1`` (likewise
    ``Wo``); ``output_padding`` (smaller than the stride or the dilation, as
    in torch) adds rows and columns at the bottom and right.

    It is the adjoint of the :class:`Conv2d` with the same weight and
    geometry (``C_in`` its outputs, ``C_out`` its inputs), so the engine's
    maps swap: ``linear`` is that convolution's transposed map and
    ``linear_T`` the convolution itself (``lrp_ref.engine.kernels``). In the
    symbols of the equations, output ``j = (o, y, x)`` is connected to the
    inputs ``i = (c, p, q)`` with ``y = p*sh + u*dh - ph`` and ``x = q*sw +
    v*dw - pw`` for some kernel element ``(u, v)``, ``w_ij = w[c, o', u, v]``:
    ``z_ij = a_i w_ij`` and ``z_j = sum_i z_ij + b_j``, and every linear rule
    applies. An output meets only some kernel elements (the others fall
    between the strided inputs or beyond the input's edge): those are no
    inputs of ``j`` and count for no ``n_j`` in Flat.

    The explicit path cuts the input into the windows of the outputs
    (``lrp_ref.engine.patches.GatherWindows``: ``P = G Ho Wo`` group
    positions, ``K = (C_in / G) kh kw`` slots, 0 where no input is met).

    Parameters
    ----------
    weight : array_like, shape (C_in, C_out / groups, kh, kw)
    bias : array_like, shape (C_out,), optional
        Zeros when None.
    stride, padding, output_padding, dilation : int or pair of ints
        As in torch: stride and dilation ``>= 1``, padding ``>= 0``,
        ``0 <= output_padding < max(stride, dilation)`` per axis.
    groups : int
        Divides ``C_in``; the output has ``groups * weight.shape[1]`` channels.
    """

    layout = "(C_in, C_out / groups, kh, kw)"
    padding_mode = "zeros"
    pad = None

    def __init__(self, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                 output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> None:
        super().__init__()
        name = "ConvTranspose2d"
        self.weight = check_weight(weight, 4, self.layout, name)
        self.groups = check_groups(groups, {"input channels": self.weight.shape[0]}, name)
        n_out = self.weight.shape[1] * self.groups
        self.bias = check_bias(bias, n_out, self.weight.dtype, name)
        self.window = Window.make(self.weight.shape[2:], stride, padding, name, dilation)
        self.output_padding = as_pair(output_padding, "output_padding", name, 0)
        if any(op >= max(s, d) for op, s, d in zip(self.output_padding, self.window.stride,
                                                    self.window.dilation)):
            raise ValueError(f"{name}: output_padding {self.output_padding} must be smaller "
                             f"than the stride {self.window.stride} or the dilation "
                             f"{self.window.dilation} (as in torch)")

    def hyperparameters(self) -> dict[str, Any]:
        out = {"stride": list(self.window.stride), "padding": list(self.window.padding)}
        if self.output_padding != (0, 0):
            out["output_padding"] = list(self.output_padding)
        if self.groups != 1:
            out["groups"] = self.groups
        if self.window.dilation != (1, 1):
            out["dilation"] = list(self.window.dilation)
        return out

    def expected_input_shape(self) -> tuple[int | None, ...]:
        return (None, self.weight.shape[0], None, None)

    def _output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """``(Ho, Wo)`` for an input of spatial ``size``; ValueError if it is empty."""
        out = tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, s, p, d, k, op in zip(
            size, self.window.stride, self.window.padding, self.window.dilation,
            self.window.kernel, self.output_padding))
        if min(out) < 1:
            raise ValueError(f"{self.where}: input of spatial size {tuple(size)} gives an "
                             f"empty output {out} (padding {self.window.padding})")
        return out

    def _crop(self, c: Array, size: tuple[int, int]) -> Array:
        """The rows and columns of a convolution's output that are inputs of this layer
        (with ``output_padding >= stride`` the convolution has windows beyond them)."""
        if c.shape[2:] == tuple(size):
            return c
        return np.ascontiguousarray(c[:, :, :size[0], :size[1]])

    def _compute_parameter_gradients(self, a: Array, grad_z: Array) -> dict[str, Array]:
        # the convolution whose adjoint this is runs from grad_z to the input's shape:
        # dL/dw[c, o', u, v] = sum a[b, c, p, q] grad_z_pad[b, o, p sh + u dh, q sw + v dw]
        Hc, Wc = self.window.output_size(grad_z.shape[2:], self.where)
        a_ext = np.zeros(a.shape[:2] + (Hc, Wc), a.dtype)
        a_ext[:, :, :a.shape[2], :a.shape[3]] = a
        grad_w = kernels.convolution_weight_gradient(grad_z, a_ext, self.window,
                                                     self.weight.shape, self.groups)
        return {"weight": grad_w, "bias": grad_z.sum(axis=(0, 2, 3))}

    # -- the maps of the linear-rule engine: the convolution's, swapped ------------------

    def linear(self, x: Array, w: Array) -> Array:
        return kernels.transposed_convolution(x, w, self.window, self._output_size(x.shape[2:]),
                                              self.BAND_BYTES, self.groups)

    def linear_T(self, s: Array, w: Array) -> Array:
        c = kernels.convolve(s, w, self.window, self.BAND_BYTES, self.groups)
        return self._crop(c, self._input.shape[2:])

    # explicit path (the base class's arrangement): the windows of the outputs

    def _gather(self) -> GatherWindows:
        """Which input row (column) output row ``y`` meets at kernel row ``u``: ``p`` with
        ``y = p sh + u dh - ph``, or -1 where no input is met."""
        tables = []
        for n, m, k, s, p, d in zip(self._input.shape[2:], self._output_shape[2:],
                                    self.window.kernel, self.window.stride,
                                    self.window.padding, self.window.dilation):
            offset = np.arange(m)[:, None] + p - d * np.arange(k)[None, :]   # p s, (m, k)
            source = offset // s
            tables.append(np.where((offset % s == 0) & (source >= 0) & (source < n),
                                   source, -1))
        return GatherWindows(*tables)

    def _cols(self, x: Array) -> Array:
        self._output_size(x.shape[2:])
        return self._gather().columns(x)

    def _fold_cols(self, windows: Array) -> Array:
        return self._gather().fold(windows, self._input.shape[2:])

    def _weight_kj(self, w: Array) -> Array:
        G, (n_in, n_out) = self.groups, w.shape[:2]
        # (C_in, C_out/G, kh, kw) -> per group (C_in/G kh kw, C_out/G): k = (c, u, v)
        w = w.reshape(G, n_in // G, n_out, -1).transpose(0, 1, 3, 2)
        return w.reshape(G, -1, n_out)
