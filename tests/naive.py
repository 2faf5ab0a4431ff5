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

import numpy as np
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


def windows_of(x, kernel, stride):
    """``{(n, c, p, q): [(y, x), ...]}``: the input positions of every pooling window."""
    out: dict = {}
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for p, q, _, _, y, xx in connections(x.shape[2:], kernel, stride, 0):
            out.setdefault((n, c, p, q), []).append((y, xx))
    return out


def pool_shape(x, kernel, stride):
    (kh, kw), (sh, sw) = pair(kernel), pair(stride)
    return x.shape[:2] + (out_size(x.shape[2], kh, sh, 0), out_size(x.shape[3], kw, sw, 0))


def avgpool_forward(x, kernel, stride):
    z = np.zeros(pool_shape(x, kernel, stride))
    for (n, c, p, q), positions in windows_of(x, kernel, stride).items():
        z[n, c, p, q] = np.mean([x[n, c, y, xx] for y, xx in positions])
    return z


def maxpool_forward(x, kernel, stride):
    z = np.zeros(pool_shape(x, kernel, stride))
    for (n, c, p, q), positions in windows_of(x, kernel, stride).items():
        z[n, c, p, q] = max(x[n, c, y, xx] for y, xx in positions)
    return z


def maxpool_backward(x, kernel, stride, g):
    """The gradient with PyTorch's ties: the first maximum in row-major window order."""
    grad = np.zeros_like(x)
    for (n, c, p, q), positions in windows_of(x, kernel, stride).items():
        values = [x[n, c, y, xx] for y, xx in positions]
        y, xx = positions[values.index(max(values))]
        grad[n, c, y, xx] += g[n, c, p, q]
    return grad


def maxpool_relevance(x, kernel, stride, R, mode):
    """``winner``: R_j split equally over the window's maxima; ``proportional``: a_i / sum a."""
    R_in, dropped = np.zeros_like(x), np.zeros(x.shape[0])
    for (n, c, p, q), positions in windows_of(x, kernel, stride).items():
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
    kh, kw = layer.window.kernel                            # AvgPool2d: depthwise 1/(kh kw)
    w = np.zeros((C, C, kh, kw))
    w[np.arange(C), np.arange(C)] = 1 / (kh * kw)
    stride, padding, bias = layer.window.stride, (0, 0), np.zeros(C)
    O = w.shape[0]
    Ho, Wo = (out_size(n, k, s, p) for n, k, s, p in zip((H, W), w.shape[2:], stride, padding))
    Wm, M = np.zeros((C * H * W, O * Ho * Wo)), np.zeros((C * H * W, O * Ho * Wo))
    pairs = np.array(list(connections((H, W), w.shape[2:], stride, padding)), dtype=int)
    p, q, u, v, y, x = pairs.reshape(-1, 6).T
    for c in range(C):                                      # other channels: not connected
        i, j = (c * H + y) * W + x, (c * Ho + p) * Wo + q  # flat (c, y, x) and (c, p, q)
        Wm[i, j], M[i, j] = w[c, c, u, v], 1
    return Wm, M, np.repeat(bias, Ho * Wo)


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


@st.composite
def pool_inputs(draw, zeros=SOME_ZEROS):
    """``(kernel, stride, a)``: a pooling geometry (stride may overlap windows) and an input."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kernel = int_or_pair(draw, st.integers(1, 3))
    stride = draw(st.one_of(st.none(), st.integers(1, 3), st.tuples(st.integers(1, 3),
                                                                     st.integers(1, 3))))
    size = [draw(st.integers(k, 6)) for k in pair(kernel)]
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *size)
    return kernel, stride, sparse_normal(rng, shape, draw(zeros))


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
