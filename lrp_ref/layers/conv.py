"""Convolutions: linear layers whose outputs see a sliding window of the input.

:class:`Conv2d` on ``(B, C, H, W)`` and :class:`Conv1d` on ``(B, C, L)`` (the
2-D convolution with ``H = 1`` behind a reshape), with torch's options:
stride, padding (symmetric, asymmetric, ``'same'``, ``'valid'``), dilation,
groups (depthwise included) and ``padding_mode``. The transposed convolution
is :mod:`lrp_ref.layers.conv_transpose`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import float_dtype, is_int
from ..engine import kernels
from ..engine.patches import PADDING_MODES, Padding, Window, as_pair
from .base import ParameterGradient, as_float_array, check_finite
from .linear import LinearLayer

Array = np.ndarray


def check_weight(weight: Any, rank: int, layout: str, where: str) -> Array:
    """``weight`` as a float array of ``rank`` axes, none empty, all finite."""
    w = np.asarray(weight)
    w = as_float_array(w, float_dtype(w), where)
    if w.ndim != rank:
        raise ValueError(f"{where}: weight must have shape {layout}, got {w.shape}")
    if 0 in w.shape:
        raise ValueError(f"{where}: weight must have at least 1 output channel, 1 input "
                         f"channel and a kernel of size 1, got {w.shape}")
    check_finite("weight", w, where)
    return w


def check_bias(bias: Any, n_out: int, dtype: np.dtype, where: str) -> Array:
    """``bias`` (zeros when None) as a finite float array of shape ``(n_out,)``."""
    b = np.zeros(n_out, dtype) if bias is None else as_float_array(bias, dtype, where)
    if b.shape != (n_out,):
        raise ValueError(f"{where}: bias must have shape ({n_out},), got {b.shape}")
    check_finite("bias", b, where)
    return b


def check_groups(groups: Any, channels: dict[str, int], where: str) -> int:
    """``groups``, an int ``>= 1`` that divides every count in ``channels``."""
    if not is_int(groups) or groups < 1:
        raise ValueError(f"{where}: groups must be an int >= 1, got {groups!r}")
    for name, n in channels.items():
        if n % groups:
            raise ValueError(f"{where}: groups={groups} must divide the {name} ({n})")
    return int(groups)


def padding_widths(padding: Any, kernel: tuple[int, int], dilation: tuple[int, int],
                   where: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((top, bottom), (left, right))`` from torch's and lrp_ref's ways to give padding.

    An int or a pair ``(ph, pw)`` pads symmetrically; a pair of pairs
    ``((top, bottom), (left, right))`` asymmetrically; ``'valid'`` is no
    padding; ``'same'`` keeps the size at stride 1 as torch pads it: the
    total ``d (k - 1)`` per axis, ``total // 2`` before and the rest after
    (one more after for an even kernel).
    """
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    if (isinstance(padding, (list, tuple)) and len(padding) == 2
            and all(isinstance(p, (list, tuple)) for p in padding)):
        return tuple(as_pair(p, "padding", where, 0) for p in padding)
    ph, pw = as_pair(padding, "padding", where, 0)
    return (ph, ph), (pw, pw)


class Convolution(LinearLayer):
    """The base of :class:`Conv2d`, :class:`Conv1d` and
    :class:`~lrp_ref.layers.conv_transpose.ConvTranspose2d`: the convolution in 2-D.

    A subclass fixes the number of spatial axes (``spatial_rank``, 2 or 1); a
    1-D input, output or weight is seen in 2-D with a unit axis ``H = 1``
    inserted (:meth:`_to_2d`, a reshape without copy), and everything is
    computed on the 2-D forms ``(B, C, H, W)`` and ``(C_out, C_in / G, kh, kw)``.
    """

    array_names = ("weight", "bias")
    parameter_names = ("weight", "bias")
    #: The largest im2col block built at once, in bytes (``kernels.BAND_BYTES``).
    BAND_BYTES = kernels.BAND_BYTES
    grad_weight = ParameterGradient()
    grad_bias = ParameterGradient()
    #: The weight's layout, for the error messages.
    layout = ""
    #: The number of spatial axes of the input (2: ``(B, C, H, W)``, 1: ``(B, C, L)``).
    spatial_rank = 2

    def _setup(self, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any,
               groups: Any, padding_mode: str) -> None:
        """Check and store the arrays and the geometry (``stride`` etc. already 2-D)."""
        name = type(self).__name__
        self.weight = check_weight(weight, len(self.layout.split(",")), self.layout, name)
        n_out = self.weight.shape[0]
        self.bias = check_bias(bias, n_out, self.weight.dtype, name)
        self.groups = check_groups(groups, {"output channels": n_out}, name)
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {list(PADDING_MODES)}, "
                             f"got {padding_mode!r}")
        self.padding_mode = padding_mode
        kernel = self._kernel_2d(self.weight).shape[2:]
        window = Window.make(kernel, stride, 0, name, dilation)
        if padding == "same" and window.stride != (1, 1):
            raise ValueError(f"{name}: padding='same' needs stride 1 (as in torch), "
                             f"got stride {window.stride}")
        widths = padding_widths(padding, kernel, window.dilation, name)
        (top, bottom), (left, right) = widths
        if padding_mode == "zeros" and top == bottom and left == right:
            # the common case: symmetric zero padding, part of the window (no copy)
            self.window = Window(kernel, window.stride, (top, left), window.dilation)
            self.pad = None
        else:
            self.window = window
            self.pad = Padding(widths, padding_mode)
        self.widths = widths

    # -- the 2-D forms (the arrays themselves for Conv2d) --------------------------------

    def _shape_2d(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """``shape`` with the unit axis ``H = 1`` inserted before the last for a 1-D layer."""
        return tuple(shape) if self.spatial_rank == 2 else (*shape[:2], 1, *shape[2:])

    def _to_2d(self, x: Array) -> Array:
        return x.reshape(self._shape_2d(x.shape))

    def _from_2d(self, y: Array) -> Array:
        return y if self.spatial_rank == 2 else y.reshape(y.shape[:2] + y.shape[3:])

    def _kernel_2d(self, w: Array) -> Array:
        return self._to_2d(w)

    # -- the geometry ---------------------------------------------------------------------

    def _padded(self, x: Array) -> Array:
        """The 2-D input with its explicit padding (the input itself without one)."""
        if self.pad is None:
            return x
        self.pad.check(x.shape[2:], self.where)
        return self.pad.apply(x)

    def _unpadded(self, c: Array, size: tuple[int, int]) -> Array:
        """The adjoint of :meth:`_padded`: the copies folded back onto spatial ``size``."""
        return c if self.pad is None else self.pad.fold(c, size)

    def _padded_size(self, size: tuple[int, int]) -> tuple[int, int]:
        if self.pad is None:
            return tuple(size)
        return tuple(n + a + b for n, (a, b) in zip(size, self.pad.widths))

    def _input_2d_size(self) -> tuple[int, int]:
        return self._to_2d(self._input).shape[2:]

    def _cols(self, x: Array) -> Array:
        """im2col of the 2-D input: ``(B, C_in, kh*kw, Ho, Wo)`` (checks that a window fits)."""
        x = self._padded(x)
        self.window.output_size(x.shape[2:], self.where)
        return self.window.columns(x)

    def _fold_cols(self, windows: Array) -> Array:
        """The adjoint of :meth:`_cols`: ``(B, C_in, kh*kw, Ho, Wo)`` onto the 2-D input."""
        size = self._input_2d_size()
        return self._unpadded(self.window.fold(windows, self._padded_size(size)), size)

    def _weight_kj(self, w: Array) -> Array:
        """The 2-D weight per group as ``(G, K, J)``: from window element ``k = (c, u, v)``
        of the group's inputs to its output channel ``j``."""
        G = self.groups
        return w.reshape(G, w.shape[0] // G, -1).transpose(0, 2, 1)

    def _compute_parameter_gradients(self, a: Array, grad_z: Array) -> dict[str, Array]:
        a2, g2 = self._padded(self._to_2d(a)), self._to_2d(grad_z)
        w2 = self._kernel_2d(self.weight)
        grad_w = kernels.convolution_weight_gradient(a2, g2, self.window, w2.shape, self.groups)
        return {"weight": grad_w.reshape(self.weight.shape),
                "bias": g2.sum(axis=(0, 2, 3))}

    # -- the maps of the linear-rule engine --------------------------------------------

    def linear(self, x: Array, w: Array) -> Array:
        x = self._padded(self._to_2d(x))
        self.window.output_size(x.shape[2:], self.where)
        z = kernels.convolve(x, self._kernel_2d(w), self.window, self.BAND_BYTES, self.groups)
        return self._from_2d(z)

    def linear_T(self, s: Array, w: Array) -> Array:
        size = self._input_2d_size()
        c = kernels.transposed_convolution(self._to_2d(s), self._kernel_2d(w), self.window,
                                           self._padded_size(size), self.BAND_BYTES, self.groups)
        return self._from_2d(self._unpadded(c, size))

    def expand_bias(self, b: Array) -> Array:
        return b.reshape(b.shape + (1,) * (self.weight.ndim - 2))

    # explicit path: the groups are positions. P = G Ho Wo (group, position),
    # K = (C_in / G) kh kw window elements of the group's inputs, J = C_out / G

    def patches(self, x: Array) -> Array:
        cols = self._cols(self._to_2d(x))
        B, G = cols.shape[0], self.groups
        cols = cols.reshape(B, G, -1, cols.shape[3] * cols.shape[4])    # (B, G, K, P)
        return cols.transpose(0, 1, 3, 2).reshape(B, -1, cols.shape[2])

    def fold(self, cols: Array) -> Array:
        B, G, K = cols.shape[0], self.groups, cols.shape[2]
        Ho, Wo = self._shape_2d(self._output_shape)[2:]
        n = self.window.kernel[0] * self.window.kernel[1]               # kh kw
        windows = (cols.reshape(B, G, Ho * Wo, K).transpose(0, 1, 3, 2)
                   .reshape(B, G * K // n, n, Ho, Wo))
        return self._from_2d(self._fold_cols(windows))

    def weight_pkj(self, w: Array) -> Array:
        G = self.groups
        w_kj = self._weight_kj(self._kernel_2d(w))                      # (G, K, J)
        if G == 1:
            return w_kj
        positions = int(np.prod(self._shape_2d(self._output_shape)[2:]))
        return np.repeat(w_kj, positions, axis=0)                       # (G P, K, J)

    def window_kj(self) -> tuple[int, int]:
        # one group's (K, J), without the (G P, K, J) array of weight_pkj, which is as
        # large as the z_ij of one sample
        return self._weight_kj(self._kernel_2d(self.weight)).shape[1:]

    def output_pj(self, z: Array) -> Array:
        z = self._to_2d(z)
        B, G = z.shape[0], self.groups
        z = z.reshape(B, G, z.shape[1] // G, -1)                        # (B, G, J, P)
        return z.transpose(0, 1, 3, 2).reshape(B, -1, z.shape[2])

    def output_from_pj(self, z_pj: Array) -> Array:
        B, G = z_pj.shape[0], self.groups
        shape = self._shape_2d(self._output_shape)
        z = z_pj.reshape(B, G, -1, z_pj.shape[2]).transpose(0, 1, 3, 2)
        return self._from_2d(z.reshape(shape))

    # -- description ------------------------------------------------------------------

    def _options(self, unpair: Any) -> dict[str, Any]:
        """The options beyond stride and padding that are not torch's defaults."""
        options: dict[str, Any] = {}
        if self.window.dilation != (1, 1):
            options["dilation"] = unpair(self.window.dilation)
        if self.groups != 1:
            options["groups"] = self.groups
        if self.padding_mode != "zeros":
            options["padding_mode"] = self.padding_mode
        return options


class Conv2d(Convolution):
    """2-D convolution (cross-correlation, NCHW), like ``torch.nn.functional.conv2d``.

    With input ``a`` of shape ``(B, C_in, H, W)``, weight ``w`` of shape
    ``(C_out, C_in / G, kh, kw)``, stride ``(sh, sw)``, dilation ``(dh, dw)``
    and ``G`` groups::

        z[b, o, p, q] = sum_{c, u, v} a_pad[b, g(o) C_g + c, p*sh + u*dh, q*sw + v*dw]
                                      * w[o, c, u, v] + b[o]

    where output channel ``o`` belongs to group ``g(o) = o // (C_out / G)``
    and sees only the ``C_g = C_in / G`` input channels of its group (``G =
    C_in``: depthwise, as in MobileNet, EfficientNet and ConvNeXt).

    In the symbols of the equations an output ``j = (o, p, q)`` is connected
    to the inputs ``i = (c, y, x)`` of its window in its group, with ``w_ij =
    w[o, c, u, v]`` where ``y = p*sh + u*dh - top`` and ``x = q*sw + v*dw -
    left``; so ``z_ij = a_i w_ij`` and ``z_j = sum_i z_ij + b_j`` as for Dense,
    and every linear rule applies (eqs. (5)-(7) of docs/theory.md; the rule zoo
    of Montavon et al. 2019). Inputs of another group, and the holes of a
    dilated window, are not connected to ``j``: they count for no ``n_j`` in
    Flat and add nothing to ``sum_i w_ij^2`` in WSquare.

    Padding (docs/conventions.md, "Padding"): with ``padding_mode='zeros'``
    padded positions are not inputs: they hold 0 in ``a`` and in every
    modified input, so they add nothing to any ``z_j``, count for no ``n_j``
    in Flat and take no relevance. With ``'reflect'``, ``'replicate'`` or
    ``'circular'`` a padded position is a copy of an input element: the
    layer is the padding (a copy) followed by the convolution without
    padding, every rule sees the copies as the inputs they are (in Flat's
    ``n_j``, in ZBox's bounds), and the relevance of a copy returns to the
    element it copies.

    The explicit path materialises ``z_ij`` per output position and group
    (``P = G Ho Wo``) and receptive-field element ``k = (c, u, v)`` of the
    group (``K = C_g kh kw``); the fast path is the four steps of the engine
    (``lrp_ref.engine.linear``) with ``linear`` an im2col GEMM and
    ``linear_T`` the transposed convolution (``lrp_ref.engine.kernels``: a
    convolution with the flipped kernel or GEMMs and a fold, the same values
    either way); a depthwise layer (one input channel per group) runs both as
    ``kh kw`` multiply-adds of shifted slices of the input instead. Symmetric
    zero padding is part of the window (no copy); other padding is an explicit
    copy of the input made first (``lrp_ref.engine.patches.Padding``), whose
    adjoint folds the copies back.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in / groups, kh, kw)
    bias : array_like, shape (C_out,), optional
        Zeros when None.
    stride : int or pair of ints
        ``>= 1``.
    padding : int, pair, pair of pairs, ``'valid'`` or ``'same'``
        An int or ``(ph, pw)`` pads both sides alike (as torch);
        ``((top, bottom), (left, right))`` pads each side on its own;
        ``'same'`` (stride 1) pads ``d (k - 1)`` per axis, half before and
        the rest after, as torch does (one more after for an even kernel).
    dilation : int or pair of ints
        ``>= 1``: the kernel's elements ``dilation`` apart.
    groups : int
        Divides ``C_out``; the input has ``groups * weight.shape[1]`` channels.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
        As in torch; ``'reflect'`` needs padding smaller than the input,
        ``'circular'`` at most its size.
    """

    layout = "(C_out, C_in / groups, kh, kw)"

    def __init__(self, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, padding_mode: str = "zeros") -> None:
        super().__init__()
        self._setup(weight, bias, stride, padding, dilation, groups, padding_mode)

    def hyperparameters(self) -> dict[str, Any]:
        (top, bottom), (left, right) = self.widths
        padding = ([top, left] if (top, left) == (bottom, right)
                   else [[top, bottom], [left, right]])
        return {"stride": list(self.window.stride), "padding": padding,
                **self._options(list)}

    def expected_input_shape(self) -> tuple[int | None, ...]:
        return (None, self.weight.shape[1] * self.groups, None, None)


class Conv1d(Convolution):
    """1-D convolution on ``(B, C, L)`` (time series, ECG, audio), like ``torch.nn.Conv1d``::

        z[b, o, t] = sum_{c, u} a_pad[b, g(o) C_g + c, t*s + u*d] * w[o, c, u] + b[o]

    It is :class:`Conv2d` on the input seen as ``(B, C, 1, L)`` with the
    weight ``(C_out, C_in / G, 1, k)``, stride ``(1, s)``, dilation ``(1, d)``
    and padding on the length axis only (a reshape, no copy): the same
    engine, the same rules, the same treatment of padding (zero padding is no
    input; a reflected, replicated or circular copy returns its relevance to
    the element it copies) and of groups. See :class:`Conv2d`.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in / groups, k)
    bias : array_like, shape (C_out,), optional
    stride, dilation : int
    padding : int, pair ``(left, right)``, ``'valid'`` or ``'same'``
    groups : int
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
    """

    layout = "(C_out, C_in / groups, k)"
    spatial_rank = 1

    def __init__(self, weight: Any, bias: Any = None, stride: int = 1, padding: Any = 0,
                 dilation: int = 1, groups: int = 1, padding_mode: str = "zeros") -> None:
        super().__init__()
        for name, value in (("stride", stride), ("dilation", dilation)):
            if not is_int(value):
                raise TypeError(f"Conv1d: {name} must be an int, got {value!r}")
        if isinstance(padding, str):
            padding_2d: Any = padding
        elif is_int(padding):
            padding_2d = ((0, 0), (padding, padding))
        elif isinstance(padding, (list, tuple)) and len(padding) == 2:
            padding_2d = ((0, 0), tuple(padding))
        else:
            raise TypeError(f"Conv1d: padding must be an int, a pair (left, right), 'valid' "
                            f"or 'same', got {padding!r}")
        self._setup(weight, bias, (1, stride), padding_2d, (1, dilation), groups, padding_mode)

    def hyperparameters(self) -> dict[str, Any]:
        left, right = self.widths[1]
        options = self._options(lambda pair: pair[1])
        return {"stride": self.window.stride[1],
                "padding": left if left == right else [left, right], **options}

    def expected_input_shape(self) -> tuple[int | None, ...]:
        return (None, self.weight.shape[1] * self.groups, None)
