"""Sliding windows over images and their adjoint: the one patch helper of Conv2d and pooling.

A 2-D window operation with kernel ``(kh, kw)``, stride ``(sh, sw)``, zero
padding ``(ph, pw)`` and dilation ``(dh, dw)`` on an input ``x`` of shape
``(B, C, H, W)`` has ``Ho x Wo`` output positions; output position ``(p, q)``
sees the window::

    x_pad[b, c, p*sh + u*dh, q*sw + v*dw],    0 <= u < kh,  0 <= v < kw
    Ho = (H + 2 ph - eh) // sh + 1,           eh = dh (kh - 1) + 1 (the extent)

(likewise ``Wo``), where ``x_pad`` is ``x`` surrounded by ``ph`` rows and
``pw`` columns of zeros. Dilation 1 (the default) is the dense window.
Padding that is not zero or not symmetric (a convolution's ``padding_mode``,
``'same'`` with an even kernel) is :class:`Padding`: an explicit copy of the
input made before the window, whose adjoint folds every copy back onto the
element it copies.

* :meth:`Window.columns` returns every window at once as an array
  ``cols[b, c, k, p, q]`` of shape ``(B, C, kh*kw, Ho, Wo)``, ``k = u*kw + v``
  (im2col): a copy of a strided view of ``x_pad``
  (``numpy.lib.stride_tricks.sliding_window_view``). The output positions are
  the last axes, so ``cols.reshape(B, C*kh*kw, Ho*Wo)`` is the classic im2col
  matrix whose product with a ``(C_out, C*kh*kw)`` weight matrix is already in
  NCHW order, and reductions over a window (max, sum) run over one
  contiguous axis (an order of magnitude faster than over the strided view).
  With ``rows`` it returns only the windows of a band of output rows, so that
  a convolution can build and multiply its column matrix band by band.
* :meth:`Window.fold` is its adjoint (col2im): it adds every window entry
  ``cols[b, c, k, p, q]`` back onto the input position it came from. Where
  windows overlap the entries add up; entries that sit on padding are dropped,
  because padding is not an input (docs/conventions.md, "Padding").
  :meth:`Window.add_windows` does the same into an existing padded array.
* :meth:`Window.offsets` gives the same windows element by element: for each
  kernel element ``k`` the strided view ``x_pad[:, :, p*sh + u, q*sw + v]``
  over all output positions, without copying; :meth:`Window.fold_products`
  folds ``cols[:, :, k] = factors[k] * s`` without forming ``cols``.
  Max-pooling works this way: a window's maximum and its shares are
  element-wise operations across the ``kh*kw`` views.
* When the windows tile the input (:attr:`Window.tiles`: stride = kernel, no
  padding, as in VGG-16's pools) each input lies in at most one window, and
  :meth:`Window.tiled` cuts the windows out by a reshape, a view
  ``(B, C, Ho, kh, Wo*kw)`` whose operations run on contiguous memory;
  :meth:`Window.spread`, :meth:`Window.window_sums` and :meth:`Window.untile`
  go with it. Max-pooling's relevance takes this route where it can.
* Windows that no stride describes (a pool's dilation, torch's unequal
  adaptive windows, interpolation taps) are index tables per axis
  (:class:`AxisWindows`, into an input padded beforehand);
  :class:`IndexWindow` gathers and scatters them with the interface above,
  and :func:`axis_window` returns a plain :class:`Window` where the tables
  are those of one (``ceil_mode`` then only pads after the input).

Padded positions hold 0 in every array passed through :meth:`columns`, including
the modified inputs of the rules (``1`` for Flat, the bounds of ZBox): that is
what makes padding count for no input in any rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..checks import is_int

Array = np.ndarray


def as_pair(value: Any, name: str, where: str, minimum: int) -> tuple[int, int]:
    """``value`` as a pair of ints ``>= minimum``: an int ``n`` means ``(n, n)``.

    Raises
    ------
    TypeError, ValueError
        When ``value`` is not an int or a pair of ints, or is below ``minimum``.
    """
    pair = (value, value) if is_int(value) else value
    if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(map(is_int, pair))):
        raise TypeError(f"{where}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


@dataclass(frozen=True)
class Window:
    """The geometry of a 2-D window operation: kernel, stride, zero padding and dilation
    (pairs)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)

    @classmethod
    def make(cls, kernel: Any, stride: Any, padding: Any, where: str,
             dilation: Any = 1) -> Window:
        """Validate ints or pairs (kernel, stride and dilation ``>= 1``, padding ``>= 0``)."""
        return cls(as_pair(kernel, "kernel_size", where, 1), as_pair(stride, "stride", where, 1),
                   as_pair(padding, "padding", where, 0), as_pair(dilation, "dilation", where, 1))

    @property
    def extent(self) -> tuple[int, int]:
        """The rows and columns a window spans, ``d (k - 1) + 1`` (the kernel if ``d = 1``)."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))

    def output_size(self, size: tuple[int, int], where: str) -> tuple[int, int]:
        """``(Ho, Wo)`` for an input of spatial size ``(H, W)``; ValueError if no window fits."""
        padded = [n + 2 * p for n, p in zip(size, self.padding)]
        if any(n < k for n, k in zip(padded, self.extent)):
            dilated = "" if self.dilation == (1, 1) else f" (dilation {self.dilation})"
            raise ValueError(
                f"{where}: input of spatial size {tuple(size)} (padding {self.padding}) is "
                f"smaller than the kernel {self.kernel}{dilated}"
            )
        return tuple((n - k) // s + 1 for n, k, s in zip(padded, self.extent, self.stride))

    def zeros_padded(self, batch: int, channels: int, size: tuple[int, int],
                     dtype: np.dtype) -> Array:
        """Zeros of the padded shape of a ``(batch, channels, *size)`` input."""
        (ph, pw), (H, W) = self.padding, size
        return np.zeros((batch, channels, H + 2 * ph, W + 2 * pw), dtype=dtype)

    def columns(self, x: Array, rows: range | None = None) -> Array:
        """Every window of ``x`` (B, C, H, W) as a new array ``(B, C, kh*kw, Ho, Wo)``.

        With ``rows`` (a range of output rows ``p``), only those rows' windows:
        ``(B, C, kh*kw, len(rows), Wo)``. Only the input rows they see are
        padded: a copy the size of the band, not a padded copy of all of ``x``.
        """
        B, C, H, W = x.shape
        (kh, _), (sh, sw), (ph, pw) = self.extent, self.stride, self.padding
        if rows is None:
            rows = range((H + 2 * ph - kh) // sh + 1)
        # output rows p0..p1-1 see the rows y0 <= y < y1 of x_pad
        y0, y1 = rows.start * sh, (rows.stop - 1) * sh + kh
        if ph == pw == 0:
            band = x[:, :, y0:y1]
        else:                               # x_pad[:, :, y0:y1]: zeros, then the rows of x
            band = np.zeros((B, C, y1 - y0, W + 2 * pw), dtype=x.dtype)
            top, bottom = max(y0 - ph, 0), min(y1 - ph, H)      # the rows of x among them
            if top < bottom:
                band[:, :, top + ph - y0:bottom + ph - y0, pw:pw + W] = x[:, :, top:bottom]
        # (B, C, rows, Wp-ew+1, eh, ew): windows at every offset; keep every stride-th
        # window and every dilation-th element of it
        (dh, dw) = self.dilation
        windows = sliding_window_view(band, self.extent, axis=(2, 3))
        windows = windows[:, :, ::sh, ::sw, ::dh, ::dw]
        Ho, Wo = windows.shape[2:4]
        # the one copy: rows of Wo entries at a time, in the order (c, u, v, p, q)
        return windows.transpose(0, 1, 4, 5, 2, 3).reshape(B, C, -1, Ho, Wo)

    def fold(self, cols: Array, size: tuple[int, int]) -> Array:
        """The adjoint of :meth:`columns`: ``(B, C, kh*kw, Ho, Wo)`` back onto ``(B, C, H, W)``.

        ``x[b, c, y, x] = sum of cols[b, c, u*kw + v, p, q]`` over the windows
        with ``p*sh + u*dh - ph = y`` and ``q*sw + v*dw - pw = x``.
        """
        B, C = cols.shape[:2]
        x_pad = self.zeros_padded(B, C, size, cols.dtype)
        self.add_windows(x_pad, cols)
        return self.crop(x_pad)

    def add_windows(self, x_pad: Array, cols: Array) -> None:
        """Add every window entry of ``cols`` onto the padded input ``x_pad``, in place.

        The loop runs over the ``kh*kw`` kernel offsets (9 for a 3x3 kernel),
        never over output positions: each step adds one whole strided slice,
        without ``np.add.at``.
        """
        for k, where in enumerate(self.offset_slices(cols.shape[3:])):
            x_pad[where] += cols[:, :, k]

    def offsets(self, x: Array) -> list[Array]:
        """``columns(x)[:, :, k]`` for every kernel element ``k``, as views of ``x_pad``.

        ``offsets(x)[u*kw + v][b, c, p, q] = x_pad[b, c, p*sh + u*dh, q*sw + v*dw]``:
        one strided view per kernel element, no copy of the windows (only a
        padded copy of ``x`` when there is padding). For operations that work
        element by element across a window, such as max-pooling.
        """
        x_pad = x
        if self.padding != (0, 0):
            x_pad = self.zeros_padded(*x.shape[:2], x.shape[2:], x.dtype)
            self.crop(x_pad)[...] = x
        Ho, Wo = self.output_size(x.shape[2:], "Window.offsets")
        return [x_pad[where] for where in self.offset_slices((Ho, Wo))]

    def fold_products(self, factors: list[Array], s: Array, size: tuple[int, int]) -> Array:
        """``fold(cols)`` for ``cols[:, :, k] = factors[k] * s``, without forming ``cols``.

        ``factors`` (one ``(B, C, Ho, Wo)`` array per kernel element, e.g. from
        :meth:`offsets`) and ``s`` ``(B, C, Ho, Wo)``. Where windows do not
        overlap (stride >= kernel) each product is written straight into its
        slice of the result; otherwise the products add up as in :meth:`fold`.
        """
        x_pad = self.zeros_padded(*s.shape[:2], size, s.dtype)
        overlap = any(st < k for st, k in zip(self.stride, self.extent))
        for factor, where in zip(factors, self.offset_slices(s.shape[2:])):
            if overlap:
                x_pad[where] += factor * s
            else:
                np.multiply(factor, s, out=x_pad[where])
        return self.crop(x_pad)

    @property
    def tiles(self) -> bool:
        """Whether the windows tile the input: stride = kernel, no padding, no dilation.

        Each input then lies in at most one window, and the windows can be cut
        out of the input by a reshape (:meth:`tiled`) instead of strided views.
        """
        return (self.stride == self.kernel and self.padding == (0, 0)
                and self.dilation == (1, 1))

    def tiled(self, x: Array, output_size: tuple[int, int]) -> Array:
        """For tiling windows: ``x`` (B, C, H, W) cut into its windows, a view.

        ``tiled(x)[b, c, p, u, q*kw + v] = x[b, c, p*kh + u, q*kw + v]``, shape
        ``(B, C, Ho, kh, Wo*kw)``: window ``(p, q)`` is ``[b, c, p, :, q*kw:(q+1)*kw]``.
        Rows and columns beyond the last whole window are in no window: left out.
        """
        (Ho, Wo), (kh, kw) = output_size, self.kernel
        return x[:, :, :Ho * kh, :Wo * kw].reshape(*x.shape[:2], Ho, kh, Wo * kw)

    def spread(self, y: Array) -> Array:
        """For tiling windows: ``y[b, c, p, q]`` at every entry of window ``(p, q)``.

        Shape ``(B, C, Ho, 1, Wo*kw)``, which broadcasts against :meth:`tiled`.
        """
        return np.repeat(y, self.kernel[1], axis=3)[:, :, :, None, :]

    def window_sums(self, t: Array, dtype: np.dtype) -> Array:
        """For tiling windows: each window's sum of a :meth:`tiled` array, ``(B, C, Ho, Wo)``."""
        kw = self.kernel[1]
        rows = t.sum(axis=3, dtype=dtype)               # over u: (B, C, Ho, Wo*kw)
        total = rows[..., ::kw].copy()
        for v in range(1, kw):                          # over v: every kw-th column
            total += rows[..., v::kw]
        return total

    def untile(self, t: Array, size: tuple[int, int]) -> Array:
        """The adjoint of :meth:`tiled`: ``(B, C, *size)``, 0 at inputs in no window."""
        B, C, Ho, kh, n = t.shape
        x = t.reshape(B, C, Ho * kh, n)
        if x.shape[2:] == tuple(size):
            return x
        out = np.zeros((B, C, *size), dtype=t.dtype)
        out[:, :, :Ho * kh, :n] = x
        return out

    def offset_slices(self, output_size: tuple[int, int]) -> list[tuple[Any, ...]]:
        """For each kernel element ``(u, v)``, the index of
        ``x_pad[:, :, p*sh + u*dh, q*sw + v*dw]``."""
        (Ho, Wo), (kh, kw), (sh, sw), (dh, dw) = (output_size, self.kernel, self.stride,
                                                  self.dilation)
        return [(slice(None), slice(None), slice(u * dh, u * dh + sh * (Ho - 1) + 1, sh),
                 slice(v * dw, v * dw + sw * (Wo - 1) + 1, sw))
                for u in range(kh) for v in range(kw)]

    def crop(self, x_pad: Array) -> Array:
        """The input positions of a padded array (a view), e.g. of :meth:`zeros_padded`."""
        (ph, pw), (Hp, Wp) = self.padding, x_pad.shape[2:]
        return x_pad[:, :, ph:Hp - ph, pw:Wp - pw]


#: torch's padding modes and the ``numpy.pad`` mode that computes each.
PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
                 "circular": "wrap"}


@dataclass(frozen=True)
class Padding:
    """Explicit padding of the two spatial axes, as torch pads before a convolution.

    ``widths = ((top, bottom), (left, right))``; ``mode`` is one of torch's
    ``padding_mode`` values:

    ``zeros``       the padded entries hold 0: they are not inputs (as the
                    padding of :class:`Window`);
    ``reflect``     mirrored at the edge, without repeating it (``x[1], x[0] | x[0], x[1], ...``)
    ``replicate``   the edge repeated (``x[0], x[0] | x[0], x[1], ...``)
    ``circular``    wrapped around (``x[-2], x[-1] | x[0], x[1], ...``)

    In the last three the padded entries are copies of inputs: :meth:`apply`
    is a linear map that copies, and its adjoint :meth:`fold` adds the value
    at every copy back onto the element it copies. So the relevance that a
    convolution gives to a padded entry returns to the input element that
    entry copies (docs/conventions.md, "Padding").
    """

    widths: tuple[tuple[int, int], tuple[int, int]]
    mode: str = "zeros"

    def check(self, size: tuple[int, int], where: str) -> None:
        """torch's limits: ``reflect`` pads less than the size, ``circular`` at most the size."""
        for n, (before, after) in zip(size, self.widths):
            if (self.mode == "reflect" and max(before, after) >= n) or (
                    self.mode == "circular" and max(before, after) > n):
                limit = "smaller than" if self.mode == "reflect" else "at most"
                raise ValueError(f"{where}: padding_mode={self.mode!r} needs a padding {limit} "
                                 f"the input's size; padding {self.widths} on spatial size "
                                 f"{tuple(size)}")

    def apply(self, x: Array) -> Array:
        """``x`` (B, C, H, W) padded: a new array ``(B, C, top + H + bottom, left + W + right)``."""
        return np.pad(x, ((0, 0), (0, 0), *self.widths), mode=PADDING_MODES[self.mode])

    def sources(self, n: int, axis: int) -> Array:
        """For each padded index along spatial ``axis`` (0: rows, 1: columns), the index
        of the input it copies; -1 for a zero."""
        before, after = self.widths[axis]
        if self.mode == "zeros":
            return np.pad(np.arange(n), (before, after), constant_values=-1)
        return np.pad(np.arange(n), (before, after), mode=PADDING_MODES[self.mode])

    def fold(self, x_pad: Array, size: tuple[int, int]) -> Array:
        """The adjoint of :meth:`apply`: every padded entry added onto the input it copies.

        ``x[b, c, y, x] = sum of x_pad[b, c, r, s]`` over the padded entries
        ``(r, s)`` that copy ``(y, x)`` (the entry itself among them); zeros are
        dropped. A new C-contiguous array ``(B, C, *size)``.
        """
        out = x_pad
        for axis, n in enumerate(size):
            out = self._fold_axis(out, self.sources(n, axis), 2 + axis, n)
        return np.ascontiguousarray(out)

    def _fold_axis(self, y: Array, sources: Array, axis: int, n: int) -> Array:
        """Along ``axis``: the entries ``before .. before + n`` (the input itself) plus every
        border entry added onto its source, one slice at a time (the border is narrow)."""
        before = self.widths[axis - 2][0]
        y = np.moveaxis(y, axis, 0)
        out = y[before:before + n].copy()
        for r in [*range(before), *range(before + n, len(sources))]:
            if sources[r] >= 0:
                out[sources[r]] += y[r]
        return np.moveaxis(out, 0, axis)


@dataclass(frozen=True)
class GatherWindows:
    """Windows given by index tables: the explicit patches of a transposed convolution.

    ``rows[p, u]`` is the input row that output row ``p`` reads at kernel row
    ``u``, or -1 where it reads no input (likewise ``cols[q, v]``). Window
    ``(p, q)`` is then ``x[b, c, rows[p, u], cols[q, v]]`` with the entries at
    -1 held at 0: they are not inputs (a transposed convolution's output
    position meets only some kernel elements; the others fall between the
    strided inputs or beyond the edge).
    """

    rows: Array
    cols: Array

    def _index(self) -> tuple[Any, ...]:
        return (slice(None), slice(None), self.rows[:, None, :, None], self.cols[None, :, None, :])

    def columns(self, x: Array) -> Array:
        """``(B, C, kh*kw, Ho, Wo)`` like :meth:`Window.columns`: a gather."""
        # one row and one column of zeros appended: index -1 reads them
        x_ext = np.pad(x, ((0, 0), (0, 0), (0, 1), (0, 1)))
        windows = x_ext[self._index()]                          # (B, C, Ho, Wo, kh, kw)
        B, C, Ho, Wo = windows.shape[:4]
        return windows.reshape(B, C, Ho, Wo, -1).transpose(0, 1, 4, 2, 3)

    def fold(self, cols: Array, size: tuple[int, int]) -> Array:
        """The adjoint of :meth:`columns`: every window entry added onto its input
        (``np.add.at``: the explicit path's teaching speed); entries at -1 dropped."""
        B, C, K, Ho, Wo = cols.shape
        kh, kw = self.rows.shape[1], self.cols.shape[1]
        x_ext = np.zeros((B, C, size[0] + 1, size[1] + 1), dtype=cols.dtype)
        entries = cols.transpose(0, 1, 3, 4, 2).reshape(B, C, Ho, Wo, kh, kw)
        np.add.at(x_ext, self._index(), entries)
        return x_ext[:, :, :size[0], :size[1]]


# -- windows given by index tables: dilation, ceil_mode, adaptive pooling, interpolation ----


@dataclass(frozen=True, eq=False)
class AxisWindows:
    """The windows of a pooling along one axis, as torch computes them, by index table.

    Output ``o`` reads the positions ``index[o, u]`` (``0 <= u < k``) of the
    axis padded by ``pad = (before, after)`` positions; the input itself has
    ``size`` positions, ``before .. before + size - 1`` of the padded axis.
    A slot that lies on the padding (zero padding, the overhang of a
    ``ceil_mode`` window, the unused slots of a shorter adaptive window) is
    no input: :attr:`inputs` is False there, and the layers fill the padding
    with a value that takes no part (``-inf`` for a maximum, 0 for a sum and
    for every modified input of a linear rule), as for Conv2d's padding.
    """

    index: Array
    pad: tuple[int, int]
    size: int

    @classmethod
    def sliding(cls, n: int, kernel: int, stride: int, padding: int = 0, dilation: int = 1,
                ceil_mode: bool = False) -> AxisWindows:
        """torch's pooling windows (``pooling_output_shape``): slot ``u`` of output ``o``
        is position ``o*stride + u*dilation`` of the input padded by ``padding``.

        ``n_out = floor_or_ceil((n + 2 padding - dilation (kernel - 1) - 1) / stride) + 1``;
        with ``ceil_mode`` a last window that would start in the right padding is
        dropped (torch's rule), and the padding after the input grows to hold the
        last window's overhang.
        """
        span = dilation * (kernel - 1) + 1
        n_out = (n + 2 * padding - span + (stride - 1 if ceil_mode else 0)) // stride + 1
        if ceil_mode and n_out > 0 and (n_out - 1) * stride >= n + padding:
            n_out -= 1
        index = np.arange(n_out)[:, None] * stride + np.arange(kernel)[None, :] * dilation
        after = max(padding, (n_out - 1) * stride + span - n - padding)
        return cls(index, (padding, after), n)

    @classmethod
    def adaptive(cls, n: int, n_out: int) -> AxisWindows:
        """torch's adaptive windows: output ``o`` averages (or maximises) positions
        ``floor(o n / n_out) <= y < ceil((o + 1) n / n_out)``.

        The windows may differ in length and overlap; every one has ``k`` slots,
        ``k`` the longest window, and the unused slots of a shorter window read
        one padding position after the input.
        """
        o = np.arange(n_out)
        start, end = (o * n) // n_out, -((-(o + 1) * n) // n_out)
        k = int((end - start).max())
        index = start[:, None] + np.arange(k)[None, :]
        index = np.where(index < end[:, None], index, n)
        return cls(index, (0, int((index == n).any())), n)

    @property
    def inputs(self) -> Array:
        """``(n_out, k)`` bool: whether slot ``u`` of output ``o`` is an input position."""
        y = self.index - self.pad[0]
        return (y >= 0) & (y < self.size)

    def stride(self) -> int | None:
        """The stride of a plain strided window (``index[o, u] = o*stride + u``), else None."""
        n_out, k = self.index.shape
        padded = self.size + sum(self.pad)
        # one window: any stride that leaves room for no second one
        stride = int(self.index[1, 0]) if n_out > 1 else max(1, padded - k + 1)
        plain = np.arange(n_out)[:, None] * stride + np.arange(k)[None, :]
        fits = stride >= 1 and (padded - k) // stride + 1 == n_out
        return stride if fits and np.array_equal(self.index, plain) else None


def axis_window(rows: AxisWindows, cols: AxisWindows) -> Window | IndexWindow:
    """The 2-D windows over the padded input: a strided :class:`Window` where both index
    tables are plain (so max-pooling keeps its tiled path), else an :class:`IndexWindow`."""
    sh, sw = rows.stride(), cols.stride()
    if sh is not None and sw is not None:
        return Window((rows.index.shape[1], cols.index.shape[1]), (sh, sw))
    return IndexWindow(rows.index, cols.index)


@dataclass(frozen=True, eq=False)
class IndexWindow:
    """Separable 2-D windows given by index tables, with the interface of :class:`Window`
    (without padding: it reads an input padded beforehand).

    Output ``(p, q)``, slot ``k = u*kw + v`` reads ``x[:, :, rows[p, u], cols[q, v]]``.
    Positions may repeat across windows (overlap) and across slots of one window.
    """

    rows: Array
    cols: Array
    #: Windows given by index never tile (:meth:`Window.tiled` needs a plain stride).
    tiles = False

    @property
    def kernel(self) -> tuple[int, int]:
        return self.rows.shape[1], self.cols.shape[1]

    def output_size(self, size: tuple[int, int], where: str) -> tuple[int, int]:
        return self.rows.shape[0], self.cols.shape[0]

    def columns(self, x: Array) -> Array:
        """``(B, C, kh*kw, Ho, Wo)``: every window of ``x`` (a gather, a new array)."""
        B, C = x.shape[:2]
        cols = x[:, :, self.rows[:, :, None, None], self.cols[None, None, :, :]]
        return cols.transpose(0, 1, 3, 5, 2, 4).reshape(B, C, -1, *self.output_size((), ""))

    def fold(self, cols: Array, size: tuple[int, int]) -> Array:
        """The adjoint of :meth:`columns`: window entries added back onto ``(B, C, *size)``."""
        return self.fold_products(list(cols.transpose(2, 0, 1, 3, 4)), None, size)

    def offsets(self, x: Array) -> list[Array]:
        """``columns(x)[:, :, k]`` for each slot ``k`` (gathers, one per slot)."""
        kh, kw = self.kernel
        return [x[:, :, self.rows[:, u, None], self.cols[None, :, v]]
                for u in range(kh) for v in range(kw)]

    def fold_products(self, factors: list[Array], s: Array | None,
                      size: tuple[int, int]) -> Array:
        """``fold(cols)`` for ``cols[:, :, k] = factors[k] * s`` (``s`` None: 1).

        ``np.add.at`` adds repeated positions (windows that share an input) correctly.
        """
        B, C = factors[0].shape[:2]
        x = np.zeros((B, C, *size), dtype=factors[0].dtype if s is None else s.dtype)
        kh, kw = self.kernel
        for k, factor in enumerate(factors):
            u, v = divmod(k, kw)
            where = (slice(None), slice(None), self.rows[:, u, None], self.cols[None, :, v])
            np.add.at(x, where, factor if s is None else factor * s)
        return x
