"""Naive loop references for the window layers, written from the equations alone.

Every function loops over batch, channels and output positions and reads each
window entry by index, with no stride tricks: slow and obviously right, the
independent reference for Conv2d, AvgPool2d and MaxPool2d. ``unrolled`` writes
a window layer as the ``(in, out)`` matrix of a Dense layer plus its connection
mask (which input feeds which output; padding is no input).

``example_rules`` lists every linear rule of ``lrp_ref.rules`` with typical
parameters: a rule added to the library gets its examples here (a test fails
until it has some).
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref import rules
from lrp_ref.audit import per_sample_sum

from strategies import RULES, sparse_normal

# -- geometry ----------------------------------------------------------------------------


def pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def out_size(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def connections(in_shape, kernel, stride, padding):
    """Yield ``(p, q, u, v, y, x)``: output (p, q) sees input (y, x) at window offset (u, v)."""
    (H, W), (kh, kw), (sh, sw), (ph, pw) = in_shape, pair(kernel), pair(stride), pair(padding)
    for p, q in itertools.product(range(out_size(H, kh, sh, ph)), range(out_size(W, kw, sw, pw))):
        for u, v in itertools.product(range(kh), range(kw)):
            y, x = p * sh + u - ph, q * sw + v - pw
            if 0 <= y < H and 0 <= x < W:          # padding is no input
                yield p, q, u, v, y, x


# -- conv ----------------------------------------------------------------------------------


def conv_forward(x, w, b, stride, padding):
    """``z[n, o, p, q] = sum_{c, u, v} x[n, c, p*sh+u-ph, q*sw+v-pw] w[o, c, u, v] + b[o]``."""
    B, _, H, W = x.shape
    O, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    z = np.zeros((B, O, out_size(H, kh, sh, ph), out_size(W, kw, sw, pw)))
    z += b[None, :, None, None]
    for n, o in itertools.product(range(B), range(O)):
        for p, q, u, v, y, xx in connections((H, W), (kh, kw), stride, padding):
            z[n, o, p, q] += x[n, :, y, xx] @ w[o, :, u, v]
    return z


def conv_gradients(x, w, stride, padding, g):
    """``dL/dx, dL/dw, dL/db`` for ``L = sum g * conv(x)``, by the same loops."""
    grad_x, grad_w = np.zeros_like(x), np.zeros_like(w)
    for n, o in itertools.product(range(x.shape[0]), range(w.shape[0])):
        for p, q, u, v, y, xx in connections(x.shape[2:], w.shape[2:], stride, padding):
            grad_x[n, :, y, xx] += w[o, :, u, v] * g[n, o, p, q]
            grad_w[o, :, u, v] += x[n, :, y, xx] * g[n, o, p, q]
    return grad_x, grad_w, g.sum(axis=(0, 2, 3))


# -- pooling -------------------------------------------------------------------------------


def pool_size(n: int, k: int, s: int, p: int = 0, d: int = 1, ceil_mode: bool = False) -> int:
    """torch's number of pooling windows along an axis (the formula of nn.MaxPool2d's docs):
    ``floor_or_ceil((n + 2p - d(k - 1) - 1) / s) + 1``, less a last ceil_mode window that
    would start in the right padding."""
    span = n + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def sliding_windows(size, kernel, stride, padding=0, dilation=1, ceil_mode=False):
    """``({(p, q): [(y, x), ...]}, (Ho, Wo))``: the input positions of every pooling window
    in row-major window order (padding and the ceil_mode overhang are no input)."""
    (H, W), (kh, kw), (sh, sw) = size, pair(kernel), pair(stride)
    (ph, pw), (dh, dw) = pair(padding), pair(dilation)
    Ho, Wo = pool_size(H, kh, sh, ph, dh, ceil_mode), pool_size(W, kw, sw, pw, dw, ceil_mode)
    windows = {}
    for p, q in itertools.product(range(Ho), range(Wo)):
        windows[p, q] = [(p * sh - ph + u * dh, q * sw - pw + v * dw)
                         for u in range(kh) for v in range(kw)
                         if 0 <= p * sh - ph + u * dh < H and 0 <= q * sw - pw + v * dw < W]
    return windows, (Ho, Wo)


def adaptive_windows(size, output_size):
    """``({(p, q): [(y, x), ...]}, (Ho, Wo))``: torch's adaptive windows, rows
    ``floor(p H / Ho) <= y < ceil((p + 1) H / Ho)`` (exact, with Fractions), likewise columns."""
    (H, W), (Ho, Wo) = size, pair(output_size)

    def span(o, n, m):
        return range(math.floor(Fraction(o * n, m)), math.ceil(Fraction((o + 1) * n, m)))

    windows = {(p, q): [(y, x) for y in span(p, H, Ho) for x in span(q, W, Wo)]
               for p, q in itertools.product(range(Ho), range(Wo))}
    return windows, (Ho, Wo)


def avgpool_divisor(size, kernel, stride, padding, p, q, count_include_pad=True,
                    divisor_override=None):
    """torch's divisor of window (p, q) of avg_pool2d: the window clipped to the padded
    input (or its true inputs without count_include_pad), or the override."""
    if divisor_override is not None:
        return divisor_override
    count = 1
    for o, n, k, s, pad in zip((p, q), size, pair(kernel), pair(stride), pair(padding)):
        start, end = o * s - pad, min(o * s - pad + k, n + pad)
        count *= (end - start) if count_include_pad else (min(end, n) - max(start, 0))
    return count


def layer_windows(layer, size):
    """The windows of a pooling layer of lrp_ref, from its hyperparameters and the loops above."""
    if isinstance(layer, (lrp.AdaptiveAvgPool2d, lrp.AdaptiveMaxPool2d)):
        return adaptive_windows(size, layer.output_size)
    dilation = getattr(layer, "dilation", 1)
    return sliding_windows(size, layer.kernel_size, layer.stride, layer.padding, dilation,
                           layer.ceil_mode)


def taps(layer, size):
    """``({(p, q): [((y, x), w), ...]}, (Ho, Wo))``: every input of each output of a depthwise
    linear window layer with its weight: an average pool's ``1 / divisor``."""
    if isinstance(layer, lrp.Upsample):
        return upsample_taps(layer, size)
    windows, out = layer_windows(layer, size)
    if isinstance(layer, lrp.AdaptiveAvgPool2d):
        return {j: [(i, 1 / len(pos)) for i in pos] for j, pos in windows.items()}, out
    return {(p, q): [(i, 1 / avgpool_divisor(size, layer.kernel_size, layer.stride,
                                               layer.padding, p, q, layer.count_include_pad,
                                               layer.divisor_override)) for i in pos]
            for (p, q), pos in windows.items()}, out


def interpolation_taps(n, n_out, mode, align_corners, scale_factor):
    """``[[(y, w), ...] per output]``: torch's interpolation along one axis, loop by loop
    (nearest, nearest-exact: the source index computed in float32, as torch does)."""
    if align_corners:
        scale = (n - 1) / (n_out - 1) if n_out > 1 else 0.0
    else:
        scale = 1 / scale_factor if scale_factor else n / n_out
    out = []
    for o in range(n_out):
        if mode == "nearest":
            out.append([(min(int(math.floor(np.float32(o) * np.float32(scale))), n - 1), 1.0)])
            continue
        if mode == "nearest-exact":                 # (o + 0.5) scale rounded to float32
            x = np.float32((o + 0.5) * float(np.float32(scale)))
            out.append([(min(int(math.floor(x)), n - 1), 1.0)])
            continue
        x = o * scale if align_corners else max((o + 0.5) * scale - 0.5, 0.0)
        y0 = min(int(math.floor(x)), n - 1)
        y1 = min(y0 + 1, n - 1)
        out.append([(y0, 1 - (x - y0)), (y1, x - y0)])
    return out


def upsample_taps(layer, size):
    """``taps`` of an Upsample: products of the axes' weights, taps on one input added,
    weight-0 taps left out (no connection)."""
    factors = layer.scale_factor or (None, None)
    out = layer.size or tuple(math.floor(n * s) for n, s in zip(size, factors))
    rows, cols = (interpolation_taps(n, m, layer.mode, layer.align_corners, s)
                  for n, m, s in zip(size, out, factors))
    weights = {}
    for p, q in itertools.product(range(out[0]), range(out[1])):
        merged: dict = {}
        for (y, wy), (x, wx) in itertools.product(rows[p], cols[q]):
            merged[y, x] = merged.get((y, x), 0.0) + wy * wx
        weights[p, q] = [(i, w) for i, w in merged.items() if w != 0]
    return weights, tuple(out)


def depthwise_forward(x, layer_taps):
    """``z[n, c, p, q] = sum over the taps of (p, q) of w * x[n, c, y, x]``."""
    weights, (Ho, Wo) = layer_taps
    z = np.zeros(x.shape[:2] + (Ho, Wo))
    for (p, q), pairs in weights.items():
        for (y, xx), w in pairs:
            z[:, :, p, q] += w * x[:, :, y, xx]
    return z


def maxpool_forward(x, windows):
    windows, out = windows
    z = np.zeros(x.shape[:2] + out)
    for (p, q), positions in windows.items():
        z[:, :, p, q] = np.max([x[:, :, y, xx] for y, xx in positions], axis=0)
    return z


def maxpool_backward(x, windows, g):
    """The gradient with PyTorch's ties: the first maximum in row-major window order."""
    grad = np.zeros_like(x)
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for (p, q), positions in windows[0].items():
            values = [x[n, c, y, xx] for y, xx in positions]
            y, xx = positions[values.index(max(values))]
            grad[n, c, y, xx] += g[n, c, p, q]
    return grad


def maxpool_relevance(x, windows, R, mode):
    """``winner``: R_j split equally over the window's maxima; ``proportional``: a_i / sum a."""
    R_in, dropped = np.zeros_like(x), np.zeros(x.shape[0])
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for (p, q), positions in windows[0].items():
            values = np.array([x[n, c, y, xx] for y, xx in positions])
            if mode == "winner":
                shares = (values == values.max()) / np.sum(values == values.max())
            elif values.sum() != 0:
                shares = values / values.sum()
            else:
                shares = np.zeros_like(values)
                dropped[n] += R[n, c, p, q]
            for (y, xx), share in zip(positions, shares):
                R_in[n, c, y, xx] += share * R[n, c, p, q]
    return R_in, dropped


# -- a window layer as a Dense layer -------------------------------------------------------


def unrolled(layer, in_shape):
    """``(W, M, b)``: ``W[i, j] = w_ij``, ``M[i, j] = 1`` where ``i`` feeds ``j``, bias per output.

    ``i`` and ``j`` index the flattened input ``(C, H, W)`` and output
    ``(C_out, Ho, Wo)``; built from the layer's parameters and geometry by loops.
    A Dense layer is its own matrix, every input connected. A convolution whose
    padding copies inputs (``padding_mode`` other than zeros) adds the weights of
    all copies of ``i`` in the window of ``j``.
    """
    if isinstance(layer, lrp.Dense):
        return layer.weight, np.ones_like(layer.weight), layer.bias
    if isinstance(layer, lrp.layers.BatchNorm):             # one input per output
        per_channel = (in_shape[0],) + (1,) * (len(in_shape) - 1)
        scale = np.broadcast_to(layer.weight.reshape(per_channel), in_shape)
        shift = np.broadcast_to(layer.bias.reshape(per_channel), in_shape)
        return np.diag(scale.ravel()), np.eye(scale.size), shift.ravel()
    if isinstance(layer, lrp.layers.Convolution):
        i, j, k, out_shape = conv_connections(layer, in_shape)
        n_in, n_out = int(np.prod(in_shape)), int(np.prod(out_shape))
        Wm, M = np.zeros((n_in, n_out)), np.zeros((n_in, n_out))
        np.add.at(Wm, (i, j), layer.weight.ravel()[k])
        M[i, j] = 1
        return Wm, M, np.repeat(layer.bias, n_out // len(layer.bias))
    C, H, W = in_shape
    return unrolled_depthwise(taps(layer, (H, W)), C, (H, W))     # pools, Upsample


# -- convolutions with every option, from their definitions --------------------------------


def source(y: int, n: int, mode: str) -> int | None:
    """The input index that padded position ``y`` (``0 <= y < n`` is the input) holds, or
    None for a zero: torch's padding modes written out."""
    if 0 <= y < n:
        return y
    if mode == "zeros":
        return None
    if mode == "reflect":                     # mirrored at the edge, the edge not repeated
        return -y if y < 0 else 2 * (n - 1) - y
    if mode == "replicate":
        return 0 if y < 0 else n - 1
    return y % n                              # circular


def conv_geometry(layer):
    """The 2-D geometry of a Conv1d, Conv2d or ConvTranspose2d from its constructor arguments
    (its config): ``(kernel, stride, widths, dilation, groups, mode, output_padding)``."""
    h = layer.config()
    if isinstance(layer, lrp.Conv1d):
        pad = h["padding"]
        left, right = (pad, pad) if isinstance(pad, int) else pad
        return ((1, layer.weight.shape[2]), (1, h["stride"]), ((0, 0), (left, right)),
                (1, h.get("dilation", 1)), h.get("groups", 1), h.get("padding_mode", "zeros"),
                (0, 0))
    pad = h["padding"]
    widths = tuple(pair(p) if isinstance(p, list) else (p, p) for p in pad)
    return (layer.weight.shape[2:], tuple(h["stride"]), widths,
            pair(h.get("dilation", 1)), h.get("groups", 1), h.get("padding_mode", "zeros"),
            pair(h.get("output_padding", 0)))


def conv_connections(layer, in_shape):
    """``(i, j, k, out_shape)``: input ``i`` feeds output ``j`` through weight entry ``k``
    (flat indices into the input, the output and ``layer.weight``), one entry per
    connection: a copy of an input in a padded window is a connection of its own.

    Built by loops over output channels, positions and kernel elements from the
    equations of ``torch.nn.Conv1d/Conv2d`` (``y = p s + u d - top``, the input
    group of output channel ``o``) and ``ConvTranspose2d`` (input ``(c, p)``
    reaches output ``y = p s + u d - pad``).
    """
    kernel, stride, widths, dilation, groups, mode, out_pad = conv_geometry(layer)
    C = in_shape[0]
    H, W = (1, in_shape[1]) if isinstance(layer, lrp.Conv1d) else in_shape[1:]
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    transposed = isinstance(layer, lrp.ConvTranspose2d)
    if transposed:
        O = layer.weight.shape[1] * groups
        (ph, _), (pw, _) = widths
        Ho, Wo = ((n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, s, p, d, k, op in
                  zip((H, W), stride, (ph, pw), dilation, kernel, out_pad))
    else:
        O = layer.weight.shape[0]
        Ho, Wo = ((n + a + b - d * (k - 1) - 1) // s + 1 for n, (a, b), d, k, s in
                  zip((H, W), widths, dilation, kernel, stride))
    C_g, O_g = C // groups, O // groups
    links = []
    for o, c in itertools.product(range(O), range(C)):
        if o // O_g != c // C_g:
            continue                                         # another group: not connected
        for u, v in itertools.product(range(kh), range(kw)):
            if transposed:                                   # w[c, o', u, v]
                k = ((c * O_g + o % O_g) * kh + u) * kw + v
                for p, q in itertools.product(range(H), range(W)):
                    y, x = p * sh + u * dh - widths[0][0], q * sw + v * dw - widths[1][0]
                    if 0 <= y < Ho and 0 <= x < Wo:
                        links.append(((c * H + p) * W + q, (o * Ho + y) * Wo + x, k))
                continue
            k = ((o * C_g + c % C_g) * kh + u) * kw + v        # w[o, c', u, v]
            for p, q in itertools.product(range(Ho), range(Wo)):
                y = source(p * sh + u * dh - widths[0][0], H, mode)
                x = source(q * sw + v * dw - widths[1][0], W, mode)
                if y is not None and x is not None:
                    links.append(((c * H + y) * W + x, (o * Ho + p) * Wo + q, k))
    i, j, k = np.array(links, dtype=int).reshape(-1, 3).T
    out_shape = (O, Wo) if isinstance(layer, lrp.Conv1d) else (O, Ho, Wo)
    return i, j, k, out_shape


def conv_options_forward(layer, a):
    """``z_j = sum_i a_i w_ij + b_j`` over :func:`conv_connections`, sample by sample."""
    i, j, k, out_shape = conv_connections(layer, a.shape[1:])
    w = layer.weight.ravel()
    z = np.zeros((len(a), int(np.prod(out_shape))))
    for n in range(len(a)):
        np.add.at(z[n], j, a[n].ravel()[i] * w[k])
    bias = np.repeat(layer.bias, z.shape[1] // len(layer.bias))
    return (z + bias).reshape(len(a), *out_shape)


def conv_options_gradients(layer, a, g):
    """``dL/da, dL/dw, dL/db`` for ``L = sum g * layer(a)``, over the same connections."""
    i, j, k, _ = conv_connections(layer, a.shape[1:])
    w = layer.weight.ravel()
    grad_a, grad_w = np.zeros((len(a), a[0].size)), np.zeros(w.size)
    for n in range(len(a)):
        g_n = g[n].ravel()
        np.add.at(grad_a[n], i, w[k] * g_n[j])
        np.add.at(grad_w, k, a[n].ravel()[i] * g_n[j])
    grad_b = g.reshape(len(g), len(layer.bias), -1).sum(axis=(0, 2))
    return grad_a.reshape(a.shape), grad_w.reshape(layer.weight.shape), grad_b


def conv_options_shares(layer, a, R, weight_of):
    """``R_i = sum_j sum_(i, j, k) f(w_k) / sum_(i', j, k') f(w_k') R_j`` over the connections:
    Flat (``f = 1``) and WSquare (``f = w^2``) on every connection, none else."""
    i, j, k, _ = conv_connections(layer, a.shape[1:])
    f = weight_of(layer.weight.ravel()[k])
    R_in = np.zeros((len(a), a[0].size))
    for n in range(len(a)):
        R_j = R[n].ravel()
        total = np.bincount(j, weights=f, minlength=R_j.size)
        share = np.divide(f, total[j], out=np.zeros_like(f), where=total[j] != 0)
        np.add.at(R_in[n], i, share * R_j[j])
    return R_in.reshape(a.shape)
def unrolled_depthwise(layer_taps, C, size):
    """``(W, M, b)`` of a depthwise window layer given by its :func:`taps` (no bias)."""
    weights, (Ho, Wo) = layer_taps
    (H, W) = size
    Wm, M = np.zeros((C * H * W, C * Ho * Wo)), np.zeros((C * H * W, C * Ho * Wo))
    for c in range(C):
        for (p, q), pairs in weights.items():
            for (y, x), w in pairs:
                i, j = (c * H + y) * W + x, (c * Ho + p) * Wo + q
                Wm[i, j] += w
                M[i, j] = 1
    return Wm, M, np.zeros(C * Ho * Wo)


def rounding_scale(W, M, b, a, R, rule) -> float:
    """``max_i sum_j |z'_ij / d_j R_j| (1 + cond_j)``: the size rounding acts on.

    ``z'_ij = sum_t sign_t input_t(a)_i weight_t(w)_ij`` over connected pairs,
    ``cond_j = (sum_i |z'_ij| + |bias_j| + eps) / |d_j|``. Both paths sum the
    same products in different orders; they differ by a few unit roundoffs
    times this scale. A part that serves only some outputs (``part.outputs``
    of the layer's output ``z_j``) counts only those.
    """
    B = a.shape[0]
    R_all = R.reshape(B, -1)
    output = a.reshape(B, -1) @ W + b                   # z_j, for the parts' output masks
    scale = 0.0
    for part in rule.parts():
        R = R_all if part.outputs is None else np.where(part.outputs(output), R_all, 0)
        z_ij = sum(t.sign * t.input(a).reshape(B, -1)[:, :, None] * (t.weight(W) * M)[None]
                   for t in part.terms)
        bias = part.bias(b) if part.bias is not None else 0 * b
        z = z_ij.sum(axis=1) + bias
        d = z + np.where(z >= 0, part.epsilon, -part.epsilon)
        safe = np.where(d == 0, np.inf, d)
        cond = (np.abs(z_ij).sum(axis=1) + np.abs(bias) + part.epsilon) / np.abs(safe)
        terms = np.abs(z_ij / safe[:, None, :] * R[:, None, :]) * (1 + cond[:, None, :])
        scale = max(scale, float(terms.sum(axis=2).max(initial=0.0)))
    return scale


def layer_rounding_scale(layer, a, R, rule) -> float:
    """:func:`rounding_scale` of a Dense, convolution or AvgPool2d layer on input ``a``.

    A convolution whose padding copies inputs is measured per copy, as its
    contributions are formed: on the explicitly padded input (numpy.pad) with the
    same convolution unpadded, times the most copies any input has (their shares add).
    """
    if isinstance(layer, lrp.layers.Convolution) and layer.config().get("padding_mode"):
        kernel, stride, widths, dilation, groups, mode, _ = conv_geometry(layer)
        numpy_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
        one_d = isinstance(layer, lrp.Conv1d)
        pads = widths[1:] if one_d else widths
        a_pad = np.pad(a, ((0, 0), (0, 0), *pads), mode=numpy_mode)
        plain = type(layer)(layer.weight, layer.bias, stride=stride[1] if one_d else stride,
                            dilation=dilation[1] if one_d else dilation, groups=groups)
        copies = 1
        for n, (before, after) in zip(a.shape[2:], pads):
            sources = [source(y, n, mode) for y in range(-before, n + after)]
            copies *= max(sources.count(y) for y in range(n))
        return copies * rounding_scale(*unrolled(plain, a_pad.shape[1:]), a_pad, R, rule)
    return rounding_scale(*unrolled(layer, a.shape[1:]), a, R, rule)


def assert_explicit_equals_fast(layer, a, R, rule) -> None:
    """Both paths of ``rule`` give finite relevance shaped like ``a``, equal to 1e-12 times
    :func:`layer_rounding_scale` (the tolerance the test modules explain)."""
    layer.forward(a)
    fast = layer.relevance(R, rule, method="fast")
    explicit = layer.relevance(R, rule, method="explicit")
    assert fast.shape == a.shape and np.all(np.isfinite(fast))
    np.testing.assert_allclose(fast, explicit, rtol=0,
                               atol=1e-12 * layer_rounding_scale(layer, a, R, rule) + 1e-300)


def assert_equals_unrolled_dense(layer, a, R, rule) -> None:
    """A window layer computes (forward) and explains (``rule``) like the Dense layer of its
    :func:`unrolled` matrix: a Dense layer with shared weights and zeros off the window."""
    W, M, b = unrolled(layer, a.shape[1:])
    dense = lrp.Dense(W, b)
    B = len(a)
    np.testing.assert_allclose(dense.forward(a.reshape(B, -1)), layer.forward(a).reshape(B, -1),
                               rtol=0, atol=1e-12 * (np.abs(a).sum() * np.abs(W).max() + 1))
    expected = dense.relevance(R.reshape(B, -1), rule).reshape(a.shape)
    np.testing.assert_allclose(layer.relevance(R, rule), expected, rtol=0,
                               atol=1e-12 * rounding_scale(W, M, b, a, R, rule) + 1e-300)


def ledger_scale(record) -> np.ndarray:
    """sum |R_out| + sum |R_in| + |each ledger term|, per sample: what the balance rounds on."""
    return (per_sample_sum(np.abs(record.relevance_out)) + per_sample_sum(np.abs(
        record.relevance_in)) + np.abs(record.absorbed_bias) + np.abs(record.absorbed_stabilizer)
        + np.abs(record.dropped) + 1e-300)


def assert_ledger_balances(layer, a, R, rule, method):
    """``layer`` alone, explained from ``R``, balances its ledger to 1e-10 times
    :func:`ledger_scale`; returns its record."""
    e = lrp.Sequential([layer]).explain(a, rule=rule, method=method, output_relevance=R)
    record = e.layer("0")
    np.testing.assert_allclose(record.imbalance(), 0, atol=1e-10 * ledger_scale(record).max())
    return record


# -- rules ---------------------------------------------------------------------------------

#: Constructor arguments of the examples of each linear rule of lrp_ref.rules.
RULE_EXAMPLES = {
    "ZPlus": [{}],
    "Gamma": [{}, {"gamma": 0.5, "bias": False}],
    "GeneralizedGamma": [{}, {"gamma": 0.5, "bias": False}],
    "ZBox": [{"low": -1.0, "high": 2.0}],
    "Flat": [{}],
    "WSquare": [{}],
}


def linear_rule_names() -> set[str]:
    """Every LinearRule subclass that ``lrp_ref.rules`` defines."""
    return {name for name, obj in vars(rules).items()
            if isinstance(obj, type) and issubclass(obj, rules.LinearRule)
            and obj is not rules.LinearRule}


def example_rules() -> list:
    """The core rules of ``strategies.RULES`` and the examples of every other linear rule."""
    core = {type(rule).__name__ for rule in RULES}
    return list(RULES) + [getattr(rules, name)(**kwargs)
                          for name in sorted(linear_rule_names() - core)
                          for kwargs in RULE_EXAMPLES.get(name, [])]


def keeps_absent_weights_absent(rule) -> bool:
    """Whether every weight modifier maps ``w = 0`` to 0 (then a window layer equals its
    unrolled Dense layer under the rule; Flat's ``1`` would also count unconnected pairs)."""
    return all(t.weight(np.zeros(1))[0] == 0 for part in rule.parts() for t in part.terms)


# -- strategies ----------------------------------------------------------------------------

SOME_ZEROS = st.sampled_from([0.0, 0.0, 0.3])


def int_or_pair(draw, values) -> int | tuple[int, int]:
    """An int or a pair of ints from ``values`` (the layers accept both)."""
    if draw(st.booleans()):
        return draw(values)
    return (draw(values), draw(values))


@st.composite
def conv_cases(draw, zeros=SOME_ZEROS):
    """A Conv2d with random kernel, stride and padding, an input batch and an output relevance."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    p = draw(zeros)
    c_in, c_out, batch = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride, padding = int_or_pair(draw, st.integers(1, 3)), int_or_pair(draw, st.integers(0, 2))
    size = [draw(st.integers(max(1, k - 2 * q), 6)) for k, q in zip(kernel, pair(padding))]
    layer = lrp.Conv2d(sparse_normal(rng, (c_out, c_in) + kernel, p),
                       sparse_normal(rng, (c_out,), p), stride=stride, padding=padding)
    a = sparse_normal(rng, (batch, c_in, *size), p)
    R = sparse_normal(rng, layer.forward(a).shape, p)
    return layer, a, R


def pool_geometry(draw, max_size=7, dilation=True):
    """Kernel, stride, padding (at most half the kernel), dilation, ceil_mode and an input
    size per axis for which torch has at least one window."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    ceil_mode = draw(st.booleans())
    size = tuple(draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), max_size))
                 for k, p, d in zip(kernel, padding, dil))
    return kernel, stride, padding, dil, ceil_mode, size


@st.composite
def pool_layers(draw, kind, zeros=SOME_ZEROS):
    """``(layer, a)``: a pooling layer of ``kind`` ("max", "avg", "adaptive_avg",
    "adaptive_max") with options drawn as torch allows them, and an input for it."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind.startswith("adaptive"):
        size = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
        out = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
        layer = (lrp.AdaptiveAvgPool2d(out) if kind == "adaptive_avg"
                 else lrp.AdaptiveMaxPool2d(out, mode=draw(st.sampled_from(MODES))))
    else:
        kernel, stride, padding, dil, ceil_mode, size = pool_geometry(draw,
                                                                      dilation=kind == "max")
        if kind == "max":
            layer = lrp.MaxPool2d(kernel, stride, mode=draw(st.sampled_from(MODES)),
                                  padding=padding, dilation=dil, ceil_mode=ceil_mode)
        else:
            layer = lrp.AvgPool2d(kernel, stride, padding, ceil_mode, draw(st.booleans()),
                                  draw(st.sampled_from([None, None, 1, 3])))
    # a window in the padding only has no input (torch outputs -inf or 0 there): not drawn
    assume(all(layer_windows(layer, size)[0].values()))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *size)
    return layer, sparse_normal(rng, shape, draw(zeros))


MODES = ["winner", "proportional"]


def finite_difference(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar function ``f`` at ``x``.

    Truncation error O(h^2) times the third derivative, rounding error about
    1e-16 |f| / h: ~1e-10 for h = 1e-6 on O(1) functions, and exact up to
    rounding where ``f`` is linear.
    """
    grad = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[k] = h
        grad[k] = (f(x + step) - f(x - step)) / (2 * h)
    return grad


def assert_flat_and_wsquare_count_connections_only(layer, a, R) -> None:
    """Flat gives ``R_j / n_j`` to each input connected to ``j`` (the mask of :func:`unrolled`,
    padding excluded) and WSquare ``w_ij^2 / sum_i w_ij^2`` over them, to 1e-12 of sum |R|."""
    W, M, _ = unrolled(layer, a.shape[1:])
    layer.forward(a)
    Rf = R.reshape(len(R), -1)
    for rule, share in ((lrp.Flat(), M), (lrp.WSquare(), M * W**2)):
        total = share.sum(axis=0)
        expected = (Rf * np.where(total > 0, 1 / np.where(total > 0, total, 1), 0)) @ share.T
        for method in ("fast", "explicit"):
            np.testing.assert_allclose(layer.relevance(R, rule, method).reshape(len(R), -1),
                                       expected, rtol=0, atol=1e-12 * np.abs(R).sum() + 1e-300)
