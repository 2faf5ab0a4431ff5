"""The engine's tuning: how the four steps are computed fast, kept apart from what they compute.

:mod:`lrp_ref.engine.linear` states the four steps ``z, s, c, R``; everything
here computes one of them faster or in less memory and returns the same
numbers (the tests compare each against its plain definition). Each
optimisation is explained once, where it is made:

* :func:`divide` (step 2) works through the output in blocks of at most
  :data:`BLOCK_BYTES`, writes ``s`` in place, skips the zero mask where a
  stabilizer makes a zero denominator impossible, takes the stabilizer's signs
  from the sign bits (:func:`sign_stabilizer`), tells the usual case (no
  overflow) by two dot products (:func:`usual`) and sums the ledger by dot
  products;
* :func:`contributing` drops a term whose modified input is 0 everywhere
  (alpha-beta's ``a-`` terms after a ReLU) before its weight or any product is
  formed, and :func:`modified_input` knows ``a+ = a`` and ``a- = 0`` for an
  ``a >= 0`` without a copy;
* :func:`input_times_c` (step 4) multiplies into ``c``'s own memory;
* :func:`convolve` and :func:`transposed_convolution` (steps 1 and 3 of a
  convolution; swapped for a transposed convolution) build the im2col matrix
  in bands and choose between a convolution with the flipped kernel and a
  fold; groups are one batched GEMM, a depthwise convolution shifted slices
  (:func:`depthwise_convolve`, :func:`depthwise_transposed`); a
  :func:`pointwise` convolution (1x1, no padding: ResNet's) is one GEMM on the
  input itself each way;
* :func:`window_shares` (max-pooling's relevance) works on a reshape of the
  input where the windows tile it;
* :func:`surely_finite` tells that an array holds no inf or NaN in one BLAS
  pass (the layers' overflow checks).

The benchmarks in ``benchmarks/vgg16.py`` and ``benchmarks/resnet50.py``
measure what these buy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..audit import Ledger, dropped_relevance, per_sample_sum
from ..rules.parts import Term, negative, positive
from .patches import Window

Array = np.ndarray

#: :func:`divide` works through the output in blocks of at most this many bytes.
BLOCK_BYTES = 2**20


def sign_stabilizer(d: Array, epsilon: float) -> Array:
    """:func:`stabilizer` of a ``d`` that holds no ``-0.0`` (:func:`divide` makes sure),
    from the sign bits: ``epsilon`` with each ``d_j``'s sign bit, two passes where the
    comparison, the product and the difference take three. (On ``-0.0`` it would give
    ``-epsilon``, against ``sign(0) := +1``; ``+0.0`` gives ``+epsilon``.)"""
    if d.itemsize not in (2, 4, 8):
        return stabilizer(d, epsilon)
    bits = np.dtype(f"u{d.itemsize}")
    eps = np.bitwise_and(d.view(bits), bits.type(1 << (8 * d.itemsize - 1)))
    eps |= np.asarray(epsilon, d.dtype).view(bits)
    return eps.view(d.dtype)


def stabilizer(z: Array, epsilon: float) -> Array:
    """``epsilon * sign(z)`` with ``sign(0) := +1`` (eq. (6) of docs/theory.md), in the dtype
    of ``z``."""
    # computed as 2 eps [z >= 0] - eps (exact): np.where with two scalars is ~5x slower
    e = z.dtype.type(epsilon)
    eps = np.multiply(z >= 0, 2 * e, dtype=z.dtype)
    eps -= e
    return eps


def safe_divide(numerator: Array, d: Array, in_place: bool = False) -> tuple[Array, Array]:
    """``numerator / d`` where ``d != 0``, else 0; also returns the mask ``d == 0``.

    ``in_place`` writes the quotient into ``d`` (which must have the result's
    shape and dtype) instead of a new array.
    """
    zero = d == 0
    # where d = 0 the output must hold 0: d itself already does
    out = d if in_place else None
    if not zero.any():                  # the usual case: a plain division
        return np.divide(numerator, d, out=out), zero
    if out is None:
        out = np.zeros(np.broadcast_shapes(numerator.shape, d.shape), np.result_type(numerator, d))
    # divide only where d != 0 (no inf or NaN is ever formed); the rest keeps its 0
    return np.divide(numerator, d, out=out, where=~zero), zero


def signed_sum(terms: Iterable[tuple[float, Array]]) -> Array:
    """``sum_t sign_t x_t``; a single term with sign +1 is ``x_t`` itself, not a copy."""
    (sign, total), *rest = terms
    if sign != 1 or rest:
        total = sign * total
    for sign, x in rest:
        total += sign * x
    return total


def per_sample_dot(s: Array, b: Array) -> Array:
    """``sum_j s[n, j] b[n, j]`` per sample ``n``, for ``b`` broadcastable to ``s``.

    ``s`` is first summed over the axes along which ``b`` is constant (a
    convolution's bias is one number per channel), so no array of the size of
    ``s`` is formed.
    """
    b = b.reshape((1,) * (s.ndim - b.ndim) + b.shape)
    constant = tuple(k for k in range(1, s.ndim) if b.shape[k] == 1)
    varying = s.ndim - len(constant)
    if constant and constant == tuple(range(varying, s.ndim)):
        # the trailing axes (a convolution's positions): summed by a product with ones, one
        # BLAS pass over s (twice as fast as np.sum over them)
        s = s.reshape(s.shape[:varying] + (-1,))
        sums = np.matmul(s, np.ones(s.shape[-1], s.dtype))
        return per_sample_sum(sums * b.reshape(b.shape[:varying]))
    return per_sample_sum(s.sum(axis=constant, keepdims=True) * b)


def step_ledger(s: Array, b: Array | None, eps: Array | None, zero: Array | None,
                R_share: Array) -> Ledger:
    """The ledger of ``s_j = R_j / (z_j + b_j + eps_j)``: bias and stabilizer take
    ``b_j s_j`` and ``eps_j s_j``; zero denominators drop.

    ``b`` (broadcastable to ``s``) or ``eps`` is None where the step has none,
    ``zero`` (the mask ``d_j = 0``) where no denominator can be 0.
    """
    none = np.zeros(s.shape[0], s.dtype)
    bias = none if b is None else per_sample_dot(s, b)
    stabilized = none if eps is None else row_dots(eps, s)
    dropped = none if zero is None else dropped_relevance(zero, R_share)
    return Ledger(bias, stabilized, dropped)


def output_blocks(shape: tuple[int, ...], itemsize: int) -> list[tuple[slice, slice]]:
    """Index blocks ``[:, k0:k1]`` along axis 1 covering an array, each at most
    :data:`BLOCK_BYTES` (but at least one entry of axis 1)."""
    per_entry = itemsize * int(np.prod(shape)) // max(shape[1], 1)
    step = max(1, BLOCK_BYTES // max(per_entry, 1))
    return [(slice(None), slice(k, k + step)) for k in range(0, shape[1], step)]


@dataclass(frozen=True)
class Overflow:
    """The outputs whose ``s_j = R_j / d_j`` is too large for the dtype, scaled down.

    ``s`` holds ``s_j 2^-exponent`` at those outputs and 0 elsewhere; steps 3
    and 4 are linear in ``s``, so they run on it as on any ``s`` and
    :meth:`scale_back` multiplies their result by ``2^exponent``. Where
    ``z_ij / d_j`` is a fine ratio but ``R_j / d_j`` is not (a tiny ``d_j``:
    alpha-beta's ``z-_j = -1e-320``, ``Epsilon(1e-310)`` at ``z_j = 0``, float16)
    the input relevance is then what the explicit path computes.
    """

    s: Array
    exponent: int

    def scale_back(self, R: Array) -> Array:
        """``R 2^exponent``, in place."""
        return np.ldexp(R, self.exponent, out=R)


def through(steps: Callable[[Array], Array], s: Array, overflow: Overflow | None) -> Array:
    """``steps(s)`` for a map ``steps`` linear in ``s`` (the rest of a relevance step), with
    the outputs whose ``s_j`` :func:`divide` held scaled: ``steps(2^-k s) 2^k`` added."""
    R = steps(s)
    if overflow is not None:
        R += overflow.scale_back(steps(overflow.s))
    return R


def large(dtype: np.dtype) -> float:
    """``2^(maxexp / 2)``: an ``s_j`` up to this leaves room for steps 3 and 4 (sums of
    products with weights and inputs) before the dtype overflows."""
    return float(2.0 ** (np.finfo(dtype).maxexp // 2))


def divide(R: Array, z: Array, b: Array | None, epsilon: float, coefficient: float = 1.0,
           out: Array | None = None) -> tuple[Array, Ledger, Overflow | None]:
    """Step 2 of a rule: ``s_j = coefficient R_j / d_j``, 0 where ``d_j = 0``, and its ledger.

    ``d_j = z_j + b_j + eps_j`` with ``eps_j = epsilon sign(z_j + b_j)``
    (:func:`stabilizer`; none when ``epsilon`` is 0) and ``b`` broadcastable
    to ``z`` or None. ``s`` is written into ``out`` (which may be ``z`` itself),
    a new array when None.

    It runs block by block over axis 1 (output channels or units), blocks of
    at most :data:`BLOCK_BYTES`: the stabilizer, the masks and ``d`` itself are
    then block-sized temporaries that stay in cache and that the allocator serves
    again, where output-sized ones would be fresh pages from the OS every time
    (arrays above 32 MB, e.g. at batch 8 on VGG-16), whose first touch costs
    more than the arithmetic on them.

    Where ``|s_j|`` exceeds :func:`large` (or overflows), ``s_j`` is 0 and the
    third value, an :class:`Overflow`, holds it scaled down (None when no
    ``s_j`` is that large, the usual case): ``R_j / d_j`` is formed from the
    mantissas and exponents of ``R_j`` and ``d_j`` apart, so it never
    overflows. Its bias and stabilizer shares enter the ledger the same way.
    """
    s = np.empty(z.shape, np.result_type(R, z)) if out is None else out
    # b with the axes of z, + 0: a bias of -0.0 becomes +0.0, so that d_j = z_j + b_j is
    # never -0.0 (see sign_stabilizer); kept small, sliced block by block
    b = None if b is None else np.reshape(b, (1,) * (z.ndim - np.ndim(b)) + np.shape(b)) + 0
    # |d_j| >= eps > 0 where eps is not 0 in the dtype (d_j + eps >= eps where
    # d_j >= 0, as rounding is monotone; likewise below 0): no d_j is 0, nothing to mask
    never_zero = s.dtype.type(epsilon) > 0
    limit = large(s.dtype)
    ledger = Ledger.zeros(s.shape[0], s.dtype)
    big: list[tuple[tuple[Array, ...], Array, Array]] = []   # (index, m_R / m_d, e_R - e_d)
    blocks = output_blocks(z.shape, s.itemsize)
    d = np.empty(s[blocks[0]].shape, s.dtype) if blocks else None
    for block in blocks:
        d_b = d[:, :s[block].shape[1]]           # the last block may be narrower
        b_b = None if b is None else b[block] if b.shape[1] > 1 else b
        # d_j = z_j + b_j, or z_j + 0: never -0.0 (-0.0 + 0 = +0.0), whose sign is + anyway
        np.add(z[block], 0 if b is None else b_b, out=d_b)
        eps = None
        if epsilon:                             # d_j += eps sign(d_j)
            eps = sign_stabilizer(d_b, epsilon)
            d_b += eps
        with np.errstate(over="ignore"):
            R_share = R[block] if coefficient == 1 else coefficient * R[block]
        s_b = s[block]
        with np.errstate(over="ignore"):        # an overflowing s_j is rescued below
            if never_zero:
                np.divide(R_share, d_b, out=s_b)
                zero = None
            else:
                zero = d_b == 0                 # there s_j = 0: no inf or NaN is ever formed
                np.divide(R_share, d_b, out=s_b, where=~zero)
                s_b[zero] = 0
        if not usual(d_b, s_b):
            with np.errstate(over="ignore", invalid="ignore"):
                overflowed = not np.all(np.isfinite(d_b))
            if overflowed:      # the rule's modified forward overflowed: no share is known;
                # NaN survives steps 3 and 4 (0 * NaN is NaN), and the layer reports it by name
                s_b[~np.isfinite(d_b)] = np.nan
            elif not (s_b.max(initial=0) <= limit and s_b.min(initial=0) >= -limit):  # NaN too
                *entries, rescued_ledger = rescued(
                    s_b, R[block], d_b, eps, None if b is None else np.broadcast_to(b_b, s_b.shape),
                    block, coefficient, limit)
                big.append(tuple(entries))
                ledger = ledger + rescued_ledger
        ledger = ledger + step_ledger(s_b, b_b, eps, zero, R_share)
    if not big:
        return s, ledger, None
    return s, ledger, overflow(s, big)


def usual(d: Array, s: Array) -> bool:
    """Whether every ``d_j`` is finite and every ``|s_j|`` at most :func:`large`, the usual
    case, told by two dot products (one pass each, no temporary array).

    ``sum_j d_j s_j`` is finite only if every ``d_j`` is (an infinite ``d_j`` gives
    ``s_j = 0`` and ``inf * 0 = NaN``; NaN stays NaN); ``sum_j s_j^2`` is finite only
    if every ``s_j^2 < 2^maxexp``, i.e. ``|s_j| < 2^(maxexp / 2)``. When either is not
    finite (also when a sum overflows with every entry in range) :func:`divide` looks
    at the entries themselves.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(row_dots(d, s)).all() and np.isfinite(row_dots(s, s)).all())


def surely_finite(x: Array) -> bool:
    """True only if every entry of ``x`` is finite, told by one pass without a temporary
    array; False also where a sum overflows with every entry finite (then look at them).

    A contiguous float32 or float64 array by its sum of squares, a BLAS dot product
    (finite only if every ``x_j^2`` is; NaN stays NaN): twice as fast as ``np.sum`` in
    float32. Any other array by its sum.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if x.dtype in (np.float32, np.float64) and x.flags.c_contiguous:
            flat = x.reshape(-1)
            return bool(np.isfinite(np.dot(flat, flat)))
        return bool(np.isfinite(np.sum(x)))


def row_dots(x: Array, y: Array) -> Array:
    """``sum_j x[n, j] y[n, j]`` per sample ``n``: a BLAS dot product per sample, no
    temporary array (for the contiguous rows of a block)."""
    return np.array([np.dot(x[n].ravel(), y[n].ravel()) for n in range(x.shape[0])],
                    dtype=np.result_type(x, y))


def rescued(s_b: Array, R: Array, d: Array, eps: Array | None, b: Array | None,
            block: tuple[slice, slice], coefficient: float,
            limit: float) -> tuple[tuple[Array, ...], Array, Array, Ledger]:
    """The entries of a block whose ``|s_j| > limit``, set to 0 in ``s_b``.

    Returns their index in the whole output, ``coefficient m_R / m_d`` and
    ``e_R - e_d`` with ``R_j = m_R 2^e_R``, ``d_j = m_d 2^e_d`` (so
    ``s_j = coefficient m_R / m_d 2^(e_R - e_d)``, formed without overflow), and
    the ledger of their bias and stabilizer shares ``b_j s_j``, ``eps_j s_j``
    (``b``: the block's bias, broadcast to the block).
    """
    mask = ~(np.abs(s_b) <= limit)
    where = np.nonzero(mask)
    index = (where[0], where[1] + (block[1].start or 0), *where[2:])
    m_R, e_R = np.frexp(R[mask])
    m_d, e_d = np.frexp(d[mask])
    ratio = coefficient * m_R / m_d
    exponent = e_R.astype(np.int64) - e_d
    s_b[mask] = 0
    ledger = Ledger.zeros(s_b.shape[0], s_b.dtype)
    for term, share in ((ledger.absorbed_bias, None if b is None else b[mask]),
                        (ledger.absorbed_stabilizer, None if eps is None else eps[mask])):
        if share is not None:   # b_j s_j = (b_j m_R / m_d) 2^e, the explicit path's ratio
            np.add.at(term, where[0], np.ldexp(share * ratio, exponent))
    return index, ratio, exponent, ledger


def overflow(s: Array, big: list[tuple[tuple[Array, ...], Array, Array]]) -> Overflow:
    """The :class:`Overflow` of the rescued entries of all blocks: one exponent ``k`` for
    all, the largest ``s_j 2^-k`` near :func:`large`."""
    k = max(int(e.max()) for _, _, e in big) - np.finfo(s.dtype).maxexp // 2
    scaled = np.zeros_like(s)
    for index, ratio, exponent in big:
        scaled[index] = np.ldexp(ratio, exponent - k)
    return Overflow(scaled, k)


def overflow_error(where: str, name: str, what: str, dtype: np.dtype,
                   advice: str | None = None) -> ValueError:
    """The one error of a computed value beyond its dtype's range, naming the layer ``where``:
    ``"<where>: the <name> overflowed: <what> beyond the range of <dtype> (<advice>)"``; the
    default advice is to scale down (and, below float64, to compute in float64)."""
    if advice is None:
        wider = "" if np.dtype(dtype).itemsize >= 8 else ", or compute in float64"
        advice = ("scale the input, the parameters, the rule's parameters or the output "
                  f"relevance down{wider}")
    return ValueError(f"{where}: the {name} overflowed: {what} beyond the range of {dtype} "
                      f"({advice})")


def quotient(R: Array, z: Array, b: Array | None, epsilon: float,
             where: str) -> tuple[Array, Ledger]:
    """:func:`divide` for a layer that uses ``s`` beyond the four steps (LayerNorm, MatMul):
    ``s`` and the ledger; an ``s`` too large for the dtype is refused, naming the layer
    ``where``, instead of being held scaled (it never becomes inf)."""
    s, ledger, overflow = divide(R, z, b, epsilon)
    if overflow is not None:
        raise overflow_error(where, "relevance", "R_j / d_j is", s.dtype,
                             "a denominator near 0; scale the output relevance down or use a "
                             "larger epsilon")
    return s, ledger


# -- steps 1, 3 and 4 of the fast path ----------------------------------------------------


def contributing(terms: Iterable[Term], a: Array, w: Array) -> list[tuple[float, Array, Array]]:
    """The terms ``(sign, input_t(a), weight_t(w))`` of a part that can contribute.

    Of two or more terms, one whose modified input is 0 everywhere adds nothing
    to ``z_j`` nor to ``R_i``: it is dropped before its modified weight and its
    two products are formed (after a ReLU, alpha-beta's ``a-`` terms; this
    halves their cost). A single term is kept, and at least one term always is.
    Inputs are modified by :func:`modified_input`.
    """
    terms = list(terms)
    signs = [t.input for t in terms if t.input in (positive, negative)]
    a_min = a.min(initial=0) if signs and a.size else None
    inputs = [modified_input(t.input, a, a_min) for t in terms]
    kept = [(t, x) for t, x in zip(terms, inputs) if len(terms) < 2 or (x is not ZERO and x.any())]
    if not kept:
        kept = [(terms[0], inputs[0])]
    return [(t.sign, t.input(a) if x is ZERO else x, t.weight(w)) for t, x in kept]


#: :func:`modified_input`'s answer for an input that is 0 everywhere, without forming it.
ZERO = None


def modified_input(modifier: Callable[[Array], Array], a: Array,
                   a_min: float | None) -> Array | None:
    """``modifier(a)``, where the smallest entry ``a_min`` of ``a`` tells it without a copy.

    For ``a >= 0`` (an input after a ReLU: one pass of ``a.min()`` decides it)
    ``a+ = max(0, a)`` is ``a`` itself (the same numbers, no copy; a product
    with the layer's own weight is then the forward's, reused) and
    ``a- = min(0, a)`` is 0 everywhere: :data:`ZERO`, not formed. Any other
    modifier or input is applied as it is.
    """
    if a_min is not None and a_min >= 0:
        if modifier is positive:
            return a
        if modifier is negative:
            return ZERO
    return modifier(a)


def input_times_c(x: Array, c: Array) -> Array:
    """Step 4, ``x_i c_i``, written into ``c``'s memory (``c`` is a new array of step 3).

    A ``c`` that is not contiguous (a view into a padded buffer) gives a new
    contiguous array instead: relevance is handed on and returned contiguous.
    """
    if not c.flags.c_contiguous:
        return x * c
    c *= x
    return c


# -- convolution: steps 1 and 3 of Conv2d --------------------------------------------------

#: The largest im2col block built at once, in bytes. Small blocks are served again from
#: the allocator's heap (arrays above 32 MB are fresh pages from the OS on every call,
#: whose first touch costs as much as the GEMM at batch 8) and stay in cache while the
#: GEMM reads them.
BAND_BYTES = 16 * 2**20


def convolve(x: Array, w: Array, window: Window, band_bytes: int = BAND_BYTES,
             groups: int = 1) -> Array:
    """``z[b, o, p, q] = sum_{c, u, v} x_pad[b, c, p*sh + u*dh, q*sw + v*dw] w[o, c, u, v]``.

    A GEMM ``(C_out, K) @ (K, P)`` per sample on the im2col matrix, built and
    multiplied in bands of output rows whose block stays below ``band_bytes``
    (a loop over bands, never over single positions). With ``groups = G`` the
    channels fall into ``G`` groups, output group ``g`` seeing only input group
    ``g`` (``w`` is ``(C_out, C_in / G, kh, kw)``, as in torch): one GEMM
    ``(C_out/G, K/G) @ (K/G, P)`` per group, all in one batched ``matmul``; a depthwise
    convolution (:func:`depthwise`) at stride 1 is :func:`depthwise_convolve` instead (at
    stride 2 the GEMM was as fast or faster in the per-layer timings of
    benchmarks/README.md, "depthwise.py")
    """
    if depthwise(w.shape, groups) and window.stride == (1, 1):
        return depthwise_convolve(x, w, window, groups)
    Ho, Wo = window.output_size(x.shape[2:], "Conv2d")
    B, n_out = x.shape[0], w.shape[0]
    # (C_out, K), or (G, C_out/G, K/G) with groups; z and the columns get the same
    # leading axes: (B, [G,] C_out/G, P) and (B, [G,] K/G, P)
    w_mat = w.reshape(n_out, -1) if groups == 1 else w.reshape(groups, n_out // groups, -1)
    if pointwise(w, window):
        # the im2col matrix of a 1x1 kernel is the input itself (every stride-th position):
        # the GEMM reads it in place, no column copy (a copy of the strided positions only)
        cols = x[:, :, ::window.stride[0], ::window.stride[1]].reshape(
            B, *w_mat.shape[:-2], w_mat.shape[-1], Ho * Wo)
        return np.matmul(w_mat, cols).reshape(B, n_out, Ho, Wo)
    K = groups * w_mat.shape[-1]
    z = np.empty((B, *w_mat.shape[:-1], Ho * Wo), dtype=np.result_type(x, w))
    rows = max(1, band_bytes // (B * K * Wo * z.itemsize))
    for p0 in range(0, Ho, rows):
        band = range(p0, min(p0 + rows, Ho))
        cols = window.columns(x, band).reshape(B, *w_mat.shape[:-2], w_mat.shape[-1], -1)
        # matmul broadcasts the weight over the batch; the rows land in NCHW order
        np.matmul(w_mat, cols, out=z[..., band.start * Wo:band.stop * Wo])
    return z.reshape(B, n_out, Ho, Wo)


def transposed_convolution(s: Array, w: Array, window: Window, size: tuple[int, int],
                           band_bytes: int = BAND_BYTES, groups: int = 1) -> Array:
    """``c_i = sum_j w_ij s_j`` of a convolution: ``c`` of spatial ``size``, without np.add.at.

    With stride 1 the transposed convolution is itself a convolution: of ``s``
    zero-padded by ``(dh(kh-1)-ph, dw(kw-1)-pw)``, with the kernel flipped in
    space and its channel axes swapped within each group (substitute
    ``u' = kh-1-u`` in ``c[c, y, x] = sum w[o, c, u, v] s[o, y + ph - u dh, x + pw - v dw]``)::

        c[b, c, y, x] = sum_{o, u', v'} w[o, c, kh-1-u', kw-1-v'] s_pad[b, o, y + u' dh, x + v' dw]

    One im2col GEMM with ``K = C_out kh kw`` and no fold. Its column matrix
    has ``C_out kh kw`` rows where the fold's has ``C_in kh kw``: taken when
    ``C_out <= C_in`` (per group; VGG-16's first layer, 3 -> 64 channels,
    folds 6x faster). It also needs a copy of the flipped kernel, ``C_in C_out kh kw``
    entries in a slow strided order, where the fold adds ``C_in kh kw``
    entries per position: taken when there are at least ``2 C_in`` positions
    (VGG-16's 512-channel layers at 28x28 and 14x14 fold faster). Otherwise
    (and for any stride) :func:`fold_transposed`. A depthwise convolution
    (:func:`depthwise`): :func:`depthwise_transposed`.
    """
    if depthwise(w.shape, groups):
        return depthwise_transposed(s, w, window, size, groups)
    if pointwise(w, window):
        return pointwise_transposed(s, w, window, size, groups)
    (kh, kw), (ph, pw), (dh, dw) = window.kernel, window.padding, window.dilation
    n_out, n_in = w.shape[0] // groups, w.shape[1]              # per group
    positions = s.shape[2] * s.shape[3]
    # the flipped convolution's output, s.shape + d (k - 1) - 2 p, must be the size asked for
    # (it is at stride 1, but for a transposed convolution's output padding)
    fits = all(n + d * (k - 1) - 2 * p == m for n, k, d, p, m in zip(
        s.shape[2:], (kh, kw), (dh, dw), (ph, pw), size))
    if (window.stride == (1, 1) and ph <= dh * (kh - 1) and pw <= dw * (kw - 1) and fits
            and n_out <= n_in and positions >= 2 * n_in):
        flipped = (w[:, :, ::-1, ::-1].reshape(groups, n_out, n_in, kh, kw)
                   .transpose(0, 2, 1, 3, 4).reshape(groups * n_in, n_out, kh, kw))
        flipped_window = Window((kh, kw), (1, 1), (dh * (kh - 1) - ph, dw * (kw - 1) - pw),
                                window.dilation)
        return convolve(s, flipped, flipped_window, band_bytes, groups)
    if groups > 1:
        return fold_transposed_groups(s, w, window, size, band_bytes, groups)
    return fold_transposed(s, w, window, size, band_bytes)


def pointwise(w: Array, window: Window) -> bool:
    """Whether a convolution is pointwise: a 1x1 kernel and no padding (ResNet's 1x1
    convolutions), each output position sees one input position (the stride-th)."""
    return w.shape[2:] == (1, 1) and window.padding == (0, 0)


def pointwise_transposed(s: Array, w: Array, window: Window, size: tuple[int, int],
                         groups: int = 1) -> Array:
    """The transposed convolution of a :func:`pointwise` one: one GEMM, no fold.

    ``c[b, c, p sh, q sw] = sum_o w[o, c] s[b, o, p, q]`` (``W^T s`` at each position,
    per group), 0 at the input positions that no output sees (between the strides).
    """
    B, n_out, Ho, Wo = s.shape
    n_in = w.shape[1]                                           # per group
    if groups == 1:
        w_t, s_p = w.reshape(n_out, n_in).T, s.reshape(B, n_out, Ho * Wo)
    else:                                                       # (G, C/G, O/G), (B, G, O/G, P)
        w_t = w.reshape(groups, n_out // groups, n_in).transpose(0, 2, 1)
        s_p = s.reshape(B, groups, n_out // groups, Ho * Wo)
    c = np.matmul(w_t, s_p).reshape(B, groups * n_in, Ho, Wo)
    if (Ho, Wo) == tuple(size):                                 # stride 1: every position
        return c
    (sh, sw) = window.stride
    out = np.zeros((B, groups * n_in, *size), dtype=c.dtype)
    out[:, :, :sh * (Ho - 1) + 1:sh, :sw * (Wo - 1) + 1:sw] = c
    return out


def fold_transposed(s: Array, w: Array, window: Window, size: tuple[int, int],
                    band_bytes: int = BAND_BYTES) -> Array:
    """The transposed convolution for any stride: GEMMs, then fold.

    For a group of input channels c, the window entries
    ``cols[b, (c, u, v), p] = sum_o w[o, c, u, v] s[b, o, p]`` are one GEMM
    (rows of ``w^T``: a slice, no copy), and fold adds them onto those
    channels of the padded result. Each GEMM reads all of ``s``, so groups
    are large: as many channels as keep the block below ``band_bytes``
    (the budget of the im2col bands), and at least ``ceil(C_in / (kh kw))``
    (a block the size of the input, so ``s`` is read at most ``kh kw``
    times, also at batch 8). All groups share one block buffer and one
    padded result (fresh memory is slow to touch for the first time).
    """
    B, n_out, Ho, Wo = s.shape
    C, K = w.shape[1], w.shape[2] * w.shape[3]
    w_t = w.reshape(n_out, C * K).T
    s_p = s.reshape(B, n_out, Ho * Wo)
    c_pad = window.zeros_padded(B, C, size, s.dtype)
    group = min(C, max(-(-C // K), band_bytes // (B * K * Ho * Wo * s.itemsize)))
    block = np.empty((B, group * K, Ho * Wo), dtype=s.dtype)
    for c0 in range(0, C, group):
        c1 = min(c0 + group, C)
        cols = np.matmul(w_t[c0 * K:c1 * K], s_p, out=block[:, :(c1 - c0) * K])
        window.add_windows(c_pad[:, c0:c1], cols.reshape(B, c1 - c0, K, Ho, Wo))
    return window.crop(c_pad)


def fold_transposed_groups(s: Array, w: Array, window: Window, size: tuple[int, int],
                           band_bytes: int, groups: int) -> Array:
    """:func:`fold_transposed` of a grouped convolution: group ``g``'s window entries
    ``cols[b, g, (c, u, v), p] = sum_{o in g} w[o, c, u, v] s[b, o, p]``, one batched GEMM
    for a block of whole groups (as many as keep the block below ``band_bytes``), then fold."""
    B, n_out, Ho, Wo = s.shape
    C, K = w.shape[1], w.shape[2] * w.shape[3]                  # C: input channels per group
    w_t = w.reshape(groups, n_out // groups, C * K).transpose(0, 2, 1)   # (G, C K, O/G)
    s_p = s.reshape(B, groups, n_out // groups, Ho * Wo)
    c_pad = window.zeros_padded(B, groups * C, size, s.dtype)
    step = max(1, band_bytes // (B * C * K * Ho * Wo * s.itemsize))
    for g0 in range(0, groups, step):
        g1 = min(g0 + step, groups)
        cols = np.matmul(w_t[g0:g1], s_p[:, g0:g1])            # (B, g1-g0, C K, P)
        window.add_windows(c_pad[:, g0 * C:g1 * C], cols.reshape(B, (g1 - g0) * C, K, Ho, Wo))
    return window.crop(c_pad)


def convolution_weight_gradient(a: Array, g: Array, window: Window, kernel_shape: tuple,
                                groups: int = 1) -> Array:
    """``dL/dw[o, c, u, v] = sum_{b, p, q} g[b, o, p, q] a_pad[b, g(o) C + c, p sh + u dh, ...]``.

    ``a`` is the input of the convolution, ``g = dL/dz`` its output gradient and
    ``kernel_shape = (C_out, C_in / G, kh, kw)``; per group, one contraction of
    ``g`` with the im2col matrix of ``a`` (depthwise: :func:`depthwise_weight_gradient`).
    """
    if depthwise(kernel_shape, groups):
        return depthwise_weight_gradient(a, g, window, kernel_shape, groups)
    B, n_out = g.shape[:2]
    cols = window.columns(a)                                    # (B, C_in, kh kw, Ho, Wo)
    cols = cols.reshape(B, groups, -1, cols.shape[3] * cols.shape[4])
    g_p = g.reshape(B, groups, n_out // groups, -1)
    grad = np.einsum("bgop,bgkp->gok", g_p, cols, optimize=True)
    return grad.reshape(kernel_shape)


# -- depthwise convolution: shifted slices, no im2col ---------------------------------------


def depthwise(shape: tuple[int, ...], groups: int) -> bool:
    """Whether the convolution of a weight of ``shape`` ``(C_out, C_in / G, kh, kw)`` with
    ``groups`` is depthwise (one input channel per group, ``G = C_in``; any channel
    multiplier ``m = C_out / G``) and takes the shifted slices of :func:`depthwise_convolve`.

    With two or more input channels per group the im2col GEMM is faster already (2x at
    64 channels, 56x56; benchmarks/README.md, "depthwise.py")."""
    return groups > 1 and shape[1] == 1


def group_blocks(groups: int, bytes_per_group: int) -> list[slice]:
    """Blocks of whole groups, each at most :data:`BLOCK_BYTES` (but at least one group)."""
    step = max(1, BLOCK_BYTES // max(bytes_per_group, 1))
    return [slice(g, min(g + step, groups)) for g in range(0, groups, step)]


def channels_last(shape: tuple[int, ...], dtype: np.dtype, channel_axes: int) -> Array:
    """Zeros of ``shape`` ``(B, *channels, H, W)`` (``channel_axes`` channel axes) held in
    channels-last memory ``(B, H, W, *reversed(channels))``: a transposed view, so that an
    element-wise step runs along the channels in its innermost loop."""
    order = (0, *range(channel_axes + 1, len(shape)), *range(channel_axes, 0, -1))
    memory = np.zeros([shape[k] for k in order], dtype)
    return memory.transpose(np.argsort(order))


def weights_by_element(w: Array, groups: int) -> Array:
    """``w[g m + j, 0, u, v]`` as ``(G, m, kh kw, 1, 1)``, contiguous along ``g`` (a
    channels-last step reads it along the channels: 3x faster than with a stride,
    benchmarks/README.md, "depthwise.py")."""
    by_element = np.ascontiguousarray(w.reshape(groups, w.shape[0] // groups, -1).T)
    return by_element.T[..., None, None]


def depthwise_convolve(x: Array, w: Array, window: Window, groups: int) -> Array:
    """:func:`convolve` of a depthwise convolution (:func:`depthwise`), by shifted slices.

    Input channel ``g`` feeds the ``m = C_out / G`` output channels ``o = g m + j``::

        z[b, g m + j, p, q] = sum_{u, v} w[g m + j, 0, u, v] x_pad[b, g, p sh + u dh, q sw + v dw]

    For one kernel element ``(u, v)`` the input factor is a strided slice of
    ``x_pad`` over all output positions (``Window.offsets``: a view, no copy)
    and the weight one number per output channel, so ``z`` is ``kh kw``
    products of whole arrays of the output's size, each added onto it
    (broadcast over the batch, the positions and the multiplier). The im2col
    route forms the same products as ``G`` GEMMs ``(m, kh kw) @ (kh kw, Ho Wo)``
    (for a 3x3 kernel ``(1, 9) @ (9, Ho Wo)`` per channel) on a column matrix
    of ``kh kw`` times the input's size; the slices were faster at stride 1 on
    most depthwise layers of MobileNet-V2 and EfficientNet-B0, the transposed
    map at any stride (benchmarks/README.md, "depthwise.py"). The adjoint and
    the weight gradient are :func:`depthwise_transposed` and
    :func:`depthwise_weight_gradient`.

    NumPy's innermost loop runs along one row of ``Wo`` outputs; where there are more
    channels than that (EfficientNet's 1152 channels at 7x7) the padded input
    and ``z`` are held channels-last (:func:`channels_last`, one copy each way) and
    the loop runs along the channels instead (1.6-3.8x faster there,
    benchmarks/README.md, "depthwise.py"). Otherwise the
    groups run in blocks whose output stays below :data:`BLOCK_BYTES`, so the
    block and its product buffer stay in cache over the ``kh kw`` passes.
    """
    n_out = w.shape[0]
    m, B = n_out // groups, x.shape[0]
    Ho, Wo = window.output_size(x.shape[2:], "Conv2d")
    dtype = np.result_type(x, w)
    if groups > Wo:          # x_pad channels-last, and the window without its padding
        padded = tuple(n + 2 * p for n, p in zip(x.shape[2:], window.padding))
        x_pad = channels_last((B, groups, *padded), x.dtype, 1)
        window.crop(x_pad)[...] = x
        x, window = x_pad, Window(window.kernel, window.stride, (0, 0), window.dilation)
        z = channels_last((B, groups, m, Ho, Wo), dtype, 2)
        blocks = [slice(0, groups)]
    else:
        z = np.empty((B, groups, m, Ho, Wo), dtype)
        blocks = group_blocks(groups, z[:, :1].nbytes)
    # x_pad's slice per (u, v), (B, G, Ho, Wo), with a unit axis for the multiplier
    (first, *rest) = [view[:, :, None] for view in window.offsets(x)]
    w_k = weights_by_element(w, groups)
    product = np.empty_like(z[:, blocks[0]])
    for g in blocks:
        z_g, product_g = z[:, g], product[:, :g.stop - g.start]
        np.multiply(first[:, g], w_k[g, :, 0], out=z_g)
        for k, x_k in enumerate(rest, 1):
            np.multiply(x_k[:, g], w_k[g, :, k], out=product_g)
            z_g += product_g
    return np.ascontiguousarray(z).reshape(B, n_out, Ho, Wo)


def depthwise_transposed(s: Array, w: Array, window: Window, size: tuple[int, int],
                         groups: int) -> Array:
    """:func:`transposed_convolution` of a depthwise convolution: the adjoint of
    :func:`depthwise_convolve`, by the same shifted slices::

        c_pad[b, g, p sh + u dh, q sw + v dw] += w[g m + j, 0, u, v] s[b, g m + j, p, q]

    for every ``(j, u, v)``: ``m kh kw`` products of arrays of the size of one
    channel of ``s`` per group, each added onto a strided slice of the padded
    result (``Window.offset_slices``; no fold of columns); channels-last or in
    blocks of groups as :func:`depthwise_convolve`.
    """
    B, n_out, Ho, Wo = s.shape
    m = n_out // groups
    dtype = np.result_type(s, w)
    s_j = s.reshape(B, groups, m, Ho, Wo)
    last = groups > Wo
    if last:
        padded = tuple(n + 2 * p for n, p in zip(size, window.padding))
        c_pad = channels_last((B, groups, *padded), dtype, 1)
        s_last = channels_last(s_j.shape, s.dtype, 2)
        s_last[...] = s_j
        s_j = s_last
        blocks = [slice(0, groups)]
    else:
        c_pad = window.zeros_padded(B, groups, size, dtype)
        blocks = group_blocks(groups, c_pad[:, :1].nbytes)
    w_k = weights_by_element(w, groups)
    product = np.empty_like(s_j[:, blocks[0], 0], dtype=dtype)
    for g in blocks:
        product_g = product[:, :g.stop - g.start]
        for k, where in enumerate(window.offset_slices((Ho, Wo))):
            target = c_pad[:, g][where]
            for j in range(m):
                np.multiply(s_j[:, g, j], w_k[g, j, k], out=product_g)
                target += product_g
    c = window.crop(c_pad)
    return np.ascontiguousarray(c) if last else c


def depthwise_weight_gradient(a: Array, g: Array, window: Window, kernel_shape: tuple,
                              groups: int) -> Array:
    """:func:`convolution_weight_gradient` of a depthwise convolution::

        dL/dw[g m + j, 0, u, v] = sum_{b, p, q} g[b, g m + j, p, q] a_pad[b, g, y, x]

    (``y = p sh + u dh``, ``x = q sw + v dw``):
    one contraction per kernel element ``(u, v)`` with the shifted slice of
    ``a_pad`` (``Window.offsets``), no im2col matrix."""
    B, n_out, Ho, Wo = g.shape
    g_j = g.reshape(B, groups, n_out // groups, Ho, Wo)
    grad = np.empty((groups, n_out // groups, kernel_shape[2] * kernel_shape[3]),
                    np.result_type(a, g))
    for k, view in enumerate(window.offsets(a)):
        grad[..., k] = np.einsum("bgjpq,bgpq->gj", g_j, view)
    return grad.reshape(kernel_shape)


# -- max-pooling's relevance ----------------------------------------------------------------


def window_max(elements: list[Array]) -> Array:
    """``z_j = max_i a_i`` over a window given element by element (``Window.offsets``)."""
    z = elements[0].copy()
    for a_i in elements[1:]:
        np.maximum(z, a_i, out=z)
    return z


def window_shares(a: Array, z: Array, R: Array, window: Window,
                  winner: bool) -> tuple[Array, Array]:
    """``R_i = sum_j weight_ij R_j / sum_i' weight_i'j`` of a max-pool, and the mask of
    windows whose sum is 0.

    ``weight_ij`` is ``[a_i = z_j]`` (``winner``) or ``a_i``. Where the windows
    tile the input (stride = kernel, as in VGG-16) they are a reshape of ``a``
    and each step is one whole-array operation (several times faster);
    otherwise the windows are walked element by element, one strided view of
    ``a`` per (u, v) (see ``Window.offsets``), overlapping windows adding up
    in ``fold_products``. Neither copies the windows.
    """
    if window.tiles:
        a_i = window.tiled(a, R.shape[2:])
        weight = a_i == window.spread(z) if winner else a_i
        total = window.window_sums(weight, a.dtype)     # n_j (>= 1 for winner) or sum a_i
        s, zero = safe_divide(R, total, in_place=True)  # s_j = R_j / total_j
        return window.untile(weight * window.spread(s), a.shape[2:]), zero
    elements = window.offsets(a)
    weights = [a_i == z for a_i in elements] if winner else elements
    total = np.zeros(R.shape, a.dtype)
    for weight in weights:
        total += weight
    s, zero = safe_divide(R, total, in_place=True)
    return window.fold_products(weights, s, a.shape[2:]), zero
