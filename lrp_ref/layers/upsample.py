"""Upsample: nearest(-exact) and bilinear interpolation, a linear layer (every linear rule)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..checks import is_int
from ..engine.patches import AxisWindows, as_pair
from .calls import Kept
from .pooling import WindowedLinear

Array = np.ndarray


def interpolation_axis(n: int, n_out: int, mode: str, align_corners: bool,
                       scale_factor: float | None) -> tuple[AxisWindows, Array]:
    """The inputs and weights of each output along one axis, as torch's ``F.interpolate``.

    ``scale`` (input positions per output position) is ``(n - 1) / (n_out - 1)``
    with ``align_corners``, else ``1 / scale_factor`` when one is given, else
    ``n / n_out`` (torch's ``area_pixel_compute_scale``).

    * ``nearest``: output ``o`` copies input ``min(floor(o scale), n - 1)``;
      torch computes ``o scale`` in float32, and so does this function (the
      floor of a product that should be an integer can fall one below it).
    * ``nearest-exact``: input ``min(floor((o + 0.5) scale), n - 1)`` (pixel
      centres, as Pillow), the product rounded to float32 as torch does.
    * ``bilinear``: source ``x = o scale`` (``align_corners``) or ``(o + 0.5)
      scale - 0.5`` clipped at 0; output ``o`` reads ``i0 = floor(x)`` with
      weight ``1 - l`` and ``i1 = min(i0 + 1, n - 1)`` with weight ``l = x - i0``.

    A tap of weight 0 (``x`` on an input) is no connection, and two taps on one
    input (the last input) are one connection with the sum of their weights:
    each output's inputs are the ``i`` with ``w_ij != 0``, which is what Flat
    and WSquare count. Returns the windows (unused slots read one padding
    position after the input) and the weights ``(n_out, taps)``, 0 on unused slots.
    """
    o = np.arange(n_out)
    if align_corners:
        scale = (n - 1) / (n_out - 1) if n_out > 1 else 0.0
    else:
        scale = 1.0 / scale_factor if scale_factor else n / n_out
    if mode.startswith("nearest"):
        scale32 = np.float32(scale)
        product = (o.astype(np.float32) * scale32 if mode == "nearest"
                   else ((o + 0.5) * np.float64(scale32)).astype(np.float32))
        index = np.minimum(np.floor(product).astype(int), n - 1)[:, None]
        return AxisWindows(index, (0, 0), n), np.ones((n_out, 1))
    x = o * scale if align_corners else np.maximum((o + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(x).astype(int), n - 1)
    lam = np.clip(x - i0, 0.0, 1.0)
    i1 = np.minimum(i0 + 1, n - 1)
    weights = np.stack([np.where(i1 == i0, 1.0, 1.0 - lam), np.where(i1 == i0, 0.0, lam)], 1)
    index = np.where(weights > 0, np.stack([i0, i1], axis=1), n)
    return AxisWindows(index, (0, int((index == n).any())), n), weights


class Upsample(WindowedLinear):
    """Interpolation like ``torch.nn.Upsample`` and ``F.interpolate`` (nearest,
    nearest-exact, bilinear)::

        z[b, c, p, q] = sum_{y, x} a[b, c, y, x] * w_h[p, y] * w_w[q, x]

    a linear map per channel with the interpolation weights ``w_ij = w_h[p, y]
    w_w[q, x]`` (:func:`interpolation_axis`, torch's conventions) and no bias:
    every linear rule applies, through the same engine as Dense and Conv2d.
    ``nearest`` (and ``nearest-exact``) copies one input to each output (every rule that conserves
    gives it all of ``R_j``); ``bilinear`` mixes up to 4 inputs with positive
    weights summing to 1, so LRP-0 shares ``R_j`` in proportion to
    ``a_i w_ij``, Flat equally between the inputs with ``w_ij != 0``.

    Parameters
    ----------
    size : int or pair of ints, optional
        The output's spatial size.
    scale_factor : float or pair of floats, optional
        The output size is ``floor(H * scale_factor)``; the source position of
        an output uses ``1 / scale_factor`` (torch's default,
        ``recompute_scale_factor=None``). Give ``size`` or ``scale_factor``.
    mode : {"nearest", "nearest-exact", "bilinear"}
    align_corners : bool
        For ``bilinear``: map the corner pixels onto each other (torch's
        ``align_corners=True``).
    """

    MODES = ("nearest", "nearest-exact", "bilinear")

    def __init__(self, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                 align_corners: bool = False) -> None:
        super().__init__()
        name = type(self).__name__
        if (size is None) == (scale_factor is None):
            raise ValueError(f"{name}: give exactly one of size and scale_factor")
        if mode not in self.MODES:
            raise ValueError(f"{name}: mode must be one of {', '.join(self.MODES)}, "
                             f"got {mode!r}")
        if align_corners and mode != "bilinear":
            raise ValueError(f"{name}: align_corners applies to mode='bilinear' only")
        self.size = None if size is None else as_pair(size, "size", name, 1)
        self.scale_factor = None
        if scale_factor is not None:
            pair = (scale_factor, scale_factor) if np.isscalar(scale_factor) else scale_factor
            if (len(pair) != 2 or not all(is_int(s) or isinstance(s, float) for s in pair)
                    or min(pair) <= 0):
                raise ValueError(f"{name}: scale_factor must be a positive number or a pair "
                                 f"of them, got {scale_factor!r}")
            self.scale_factor = (float(pair[0]), float(pair[1]))
        self.mode = mode
        self.align_corners = bool(align_corners)

    #: The interpolation weights per axis of the forward's input: kept per call.
    _taps = Kept()

    def hyperparameters(self) -> dict[str, Any]:
        return {"size": None if self.size is None else list(self.size),
                "scale_factor": None if self.scale_factor is None else list(self.scale_factor),
                "mode": self.mode, "align_corners": self.align_corners}

    def _geometry(self, size: tuple[int, int]) -> tuple[AxisWindows, AxisWindows]:
        factors = self.scale_factor or (None, None)
        out = self.size or tuple(math.floor(n * s) for n, s in zip(size, factors))
        if min(out) < 1:
            raise ValueError(f"{self.where}: scale_factor {self.scale_factor} gives an empty "
                             f"output for input of spatial size {tuple(size)}")
        (rows, w_h), (cols, w_w) = (interpolation_axis(n, m, self.mode, self.align_corners, s)
                                    for n, m, s in zip(size, out, factors))
        self._taps = (w_h, w_w)
        return rows, cols

    def _slot_weights(self) -> Array:
        w_h, w_w = self._taps
        w = np.einsum("pu,qv->uvpq", w_h, w_w)           # w[u, v, p, q] = w_h[p, u] w_w[q, v]
        return w.reshape(-1, *w.shape[2:])
