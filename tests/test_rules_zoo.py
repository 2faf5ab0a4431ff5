"""The rule zoo (ZPlus, Gamma, GeneralizedGamma, ZBox, Flat, WSquare) on Dense, Conv2d,
AvgPool2d and BatchNorm.

The reference here is an independent oracle: every layer is unrolled into its
``(in, out)`` matrix ``W`` plus its connection mask ``M`` (which input feeds
which output; padding is no input; ``naive.unrolled`` for the window layers),
and each rule's equation from docs/conventions.md is applied to that matrix with plain
NumPy, one contribution ``z'_ij`` at a time — never through ``Rule.parts()``.

Tolerances (float64, unit roundoff u = 1.1e-16). Both sides sum the same
products in different orders, so they differ by a few u times the size of the
terms, amplified by the conditioning of each denominator: the tests compare
against ``scale = max_i sum_j |z'_ij / d_j R_j| (1 + cond_j)`` with
``cond_j = (sum_i |z'_ij| + |bias_j|) / |d_j|``.

* explicit vs fast and library vs oracle: ``1e-12 * scale`` — about 1000x the
  bound ``(n + 2) u`` for the n <= 50 terms per output used here.
* conservation and ledger: ``1e-10 * scale`` (plus ``|R|``): sums of up to a
  few hundred such terms.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.audit import per_sample_sum
from lrp_ref.layers.batchnorm import BatchNorm, BatchNorm1d, BatchNorm2d
from lrp_ref.layers.conv import Conv2d
from lrp_ref.layers.pooling import AvgPool2d

import naive
from strategies import sparse_normal

# -- the oracle ------------------------------------------------------------------------------


def unrolled(layer, shape: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``W (I, J)``, ``b (J,)`` and the connection mask ``M (I, J)`` of a linear layer.

    Window layers come from ``naive.unrolled`` (loops over the geometry); a
    BatchNorm is the diagonal map ``y = w x + c`` with its per-channel ``w``, ``c``.
    """
    if isinstance(layer, lrp.Dense):
        return layer.weight, layer.bias, np.ones(layer.weight.shape, bool)
    if isinstance(layer, (Conv2d, AvgPool2d)):
        W, M, b = naive.unrolled(layer, shape[1:])
        return W, b, M.astype(bool)
    if isinstance(layer, BatchNorm):
        per_channel = (-1,) + (1,) * (len(shape) - 2)
        w, c = (np.ones(shape[1:]) * v.reshape(per_channel) for v in (layer.weight, layer.bias))
        return np.diag(w.ravel()), c.ravel(), np.eye(w.size, dtype=bool)
    raise TypeError(layer)


def contributions(rule, a: np.ndarray, W: np.ndarray, b: np.ndarray, M: np.ndarray):
    """``[(coefficient, z'_ij (B, I, J), bias_j (J,))]``: the rule's row of the rule table.

    ``a`` has the layer's input shape; ``i`` runs over its flattened elements.
    """
    pos, neg = np.maximum(W, 0), np.minimum(W, 0)
    A = a.reshape(len(a), -1, 1)
    if isinstance(rule, lrp.ZPlus):
        return [(1.0, np.maximum(A * W, 0), 0 * b)]
    if isinstance(rule, lrp.Gamma):
        g = rule.gamma
        bias = b + g * np.maximum(b, 0) if rule.bias else 0 * b
        return [(1.0, A * (W + g * pos), bias)]
    if isinstance(rule, lrp.GeneralizedGamma):
        # each output takes the contributions of its own sign; the sign of z_j picks the half
        g, z_ij = rule.gamma, A * W
        b_rule = b if rule.bias else 0 * b
        z_j = z_ij.sum(axis=1) + b
        return [(1.0, z_ij + g * np.maximum(z_ij, 0), b_rule + g * np.maximum(b_rule, 0),
                 z_j > 0),
                (1.0, z_ij + g * np.minimum(z_ij, 0), b_rule + g * np.minimum(b_rule, 0),
                 z_j < 0)]
    if isinstance(rule, lrp.ZBox):
        low, high = (np.broadcast_to(v, a.shape).reshape(A.shape) for v in (rule.low, rule.high))
        return [(1.0, A * W - low * pos - high * neg, 0 * b)]
    if isinstance(rule, lrp.Flat):
        return [(1.0, np.broadcast_to(M.astype(float), A.shape[:1] + M.shape), 0 * b)]
    if isinstance(rule, lrp.WSquare):
        return [(1.0, np.broadcast_to(W * W, A.shape[:1] + W.shape), 0 * b)]
    if isinstance(rule, lrp.Zero):
        return [(1.0, A * W, b if rule.bias else 0 * b)]
    if isinstance(rule, lrp.AlphaBeta):
        plus = [(rule.alpha, np.maximum(A * W, 0), np.maximum(b, 0) if rule.bias else 0 * b)]
        minus = [(-rule.beta, np.minimum(A * W, 0), np.minimum(b, 0) if rule.bias else 0 * b)]
        return plus + (minus if rule.beta else [])
    raise TypeError(rule)


def oracle(layer, rule, a: np.ndarray, R: np.ndarray):
    """Input relevance, ledger ``(bias, dropped)`` and rounding scale, from the equations."""
    W, b, M = unrolled(layer, a.shape)
    a_flat, R_flat = a.reshape(len(a), -1), R.reshape(len(R), -1)
    R_in = np.zeros_like(a_flat)
    bias_total, dropped, scale = np.zeros(len(a)), np.zeros(len(a)), np.zeros(a_flat.shape)
    taken = np.zeros(R_flat.shape)
    for coefficient, z_ij, bias, *serves in contributions(rule, a, W, b, M):
        d = z_ij.sum(axis=1) + bias                                    # (B, J)
        safe = np.where(d == 0, 1, d)
        share = np.where(d[:, None, :] == 0, 0, z_ij / safe[:, None, :])
        mask = serves[0] if serves else np.ones(R_flat.shape, bool)    # the outputs it serves
        taken += coefficient * mask
        R_j = coefficient * np.where(mask, R_flat, 0)
        R_in += (share * R_j[:, None, :]).sum(axis=2)
        bias_total += np.where(d == 0, 0, bias / safe * R_j).sum(axis=1)
        dropped += np.where(d == 0, R_j, 0).sum(axis=1)
        cond = np.where(d == 0, 0, (np.abs(z_ij).sum(axis=1) + np.abs(bias)) / np.abs(safe))
        scale += (np.abs(share * R_j[:, None, :]) * (1 + cond[:, None, :])).sum(axis=2)
    dropped += (R_flat * (1 - taken)).sum(axis=1)        # outputs no part serves pass nothing
    return R_in.reshape(a.shape), bias_total, dropped, float(scale.max(initial=0.0))


# -- cases ---------------------------------------------------------------------------------


@st.composite
def zbox_rules(draw, rng: np.random.Generator, shape: tuple):
    """ZBox with scalar bounds or arrays shaped per element, per channel, with a batch axis."""
    spatial = shape[1:]
    kinds = {"scalar": (), "element": spatial, "batch": (1,) + spatial,
             "full batch": shape}
    if len(shape) == 4:
        kinds["channel"] = (shape[1], 1, 1)
    bound_shape = kinds[draw(st.sampled_from(sorted(kinds)))]
    low = -np.abs(rng.standard_normal(bound_shape)) - 0.5
    high = low + np.abs(rng.standard_normal(bound_shape)) * draw(st.sampled_from([0.0, 2.0]))
    return lrp.ZBox(low if bound_shape else float(low), high if bound_shape else float(high))


@st.composite
def layer_cases(draw, kinds=("dense", "conv", "avgpool", "batchnorm"), zeros=(0.0, 0.0, 0.3)):
    """A linear layer of one of ``kinds``, an input batch and an output relevance."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind, p = draw(st.sampled_from(kinds)), draw(st.sampled_from(zeros))
    batch = draw(st.integers(1, 2))
    if kind == "dense":
        n_in, n_out = draw(st.integers(1, 6)), draw(st.integers(1, 5))
        layer = lrp.Dense(sparse_normal(rng, (n_in, n_out), p), sparse_normal(rng, (n_out,), p))
        shape = (batch, n_in)
    elif kind == "conv":
        c_in, c_out = draw(st.integers(1, 2)), draw(st.integers(1, 3))
        kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
        stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        size = [draw(st.integers(max(1, k - 2 * q), 5)) for k, q in zip(kernel, padding)]
        layer = Conv2d(sparse_normal(rng, (c_out, c_in) + kernel, p),
                       sparse_normal(rng, (c_out,), p), stride=stride, padding=padding)
        shape = (batch, c_in, *size)
    elif kind == "avgpool":
        kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        layer = AvgPool2d(kernel, stride)
        shape = (batch, draw(st.integers(1, 2)), *[draw(st.integers(k, 5)) for k in kernel])
    else:
        channels = draw(st.integers(1, 3))
        bn_type = draw(st.sampled_from([BatchNorm1d, BatchNorm2d]))
        layer = bn_type(sparse_normal(rng, (channels,), p), sparse_normal(rng, (channels,), p),
                        rng.standard_normal(channels), rng.random(channels) + 0.1)
        shape = (batch, channels) + ((2, 3) if bn_type is BatchNorm2d else ())
    a = sparse_normal(rng, shape, p)
    R = sparse_normal(rng, layer.forward(a).shape, p)
    return layer, a, R, rng


def rules_for(draw, rng, shape) -> list:
    return [lrp.ZPlus(), lrp.Gamma(), lrp.Gamma(draw(st.sampled_from([0.5, 3.0])), bias=False),
            draw(zbox_rules(rng, shape)), lrp.Flat(), lrp.WSquare(), lrp.GeneralizedGamma(),
            lrp.GeneralizedGamma(draw(st.sampled_from([0.5, 3.0])), bias=False)]


RULE_NAMES = ["ZPlus", "Gamma", "Gamma(bias=False)", "ZBox", "Flat", "WSquare",
              "GeneralizedGamma", "GeneralizedGamma(bias=False)"]


@st.composite
def rule_cases(draw, rule_index: int, **kwargs):
    layer, a, R, rng = draw(layer_cases(**kwargs))
    return layer, a, R, rules_for(draw, rng, a.shape)[rule_index]


def explain_layer(layer, a, R, rule, method="fast") -> lrp.Explanation:
    """Explain one layer for output relevance ``R``."""
    return lrp.Sequential([layer]).explain(np.asarray(a, float), rule=rule,
                                           output_relevance=np.asarray(R, float), method=method)


def relevance(layer, a, R, rule, method="fast"):
    e = explain_layer(layer, a, R, rule, method)
    return e.relevance, e.layer("0")


# -- explicit == fast == oracle -----------------------------------------------------------


@pytest.mark.parametrize("index", range(len(RULE_NAMES)), ids=RULE_NAMES)
@given(data=st.data())
def test_explicit_equals_fast_equals_oracle(index, data):
    layer, a, R, rule = data.draw(rule_cases(index))
    layer.forward(a)
    fast = layer.relevance(R, rule, method="fast")
    explicit = layer.relevance(R, rule, method="explicit")
    expected, _, _, scale = oracle(layer, rule, a, R)
    assert fast.shape == a.shape and np.all(np.isfinite(fast))
    tolerance = 1e-12 * scale + 1e-300
    np.testing.assert_allclose(fast, explicit, rtol=0, atol=tolerance)
    np.testing.assert_allclose(fast, expected, rtol=0, atol=tolerance)


@pytest.mark.parametrize("index", range(len(RULE_NAMES)), ids=RULE_NAMES)
@pytest.mark.parametrize("method", ["fast", "explicit"])
@given(data=st.data())
def test_ledger_balances_and_matches_the_oracle(index, method, data):
    """sum R_out = sum R_in + absorbed_bias + absorbed_stabilizer + dropped, term by term."""
    layer, a, R, rule = data.draw(rule_cases(index))
    record = explain_layer(layer, a, R, rule, method).layer("0")
    _, bias, dropped, scale = oracle(layer, rule, a, R)
    tolerance = 1e-10 * (scale + np.abs(R).sum(axis=tuple(range(1, R.ndim))).max()) + 1e-300
    np.testing.assert_allclose(record.imbalance(), 0, atol=tolerance)
    np.testing.assert_allclose(record.absorbed_bias, bias, rtol=0, atol=tolerance)
    np.testing.assert_allclose(record.dropped, dropped, rtol=0, atol=tolerance)
    np.testing.assert_array_equal(record.absorbed_stabilizer, 0)


@pytest.mark.parametrize("index", [0, 3, 4, 5], ids=["ZPlus", "ZBox", "Flat", "WSquare"])
@given(data=st.data())
def test_bias_free_rules_conserve_exactly(index, data):
    """z+, z^B, flat and w^2 absorb nothing: sum_i R_i = sum_j R_j where no d_j is 0."""
    layer, a, R, rule = data.draw(rule_cases(index))
    _, bias, dropped, scale = oracle(layer, rule, a, R)
    layer.forward(a)
    R_in = layer.relevance(R, rule)
    np.testing.assert_array_equal(bias, 0)
    assume(np.all(dropped == 0))
    np.testing.assert_allclose(per_sample_sum(R_in), per_sample_sum(R), rtol=0,
                               atol=1e-10 * (scale + np.abs(R).max()))


# -- identities ------------------------------------------------------------------------------


@given(case=layer_cases())
def test_gamma_zero_is_lrp0(case):
    """w + 0 w+ = w and b + 0 b+ = b exactly: Gamma(0) is Zero()."""
    layer, a, R, _ = case
    layer.forward(a)
    for method in ("fast", "explicit"):
        np.testing.assert_array_equal(layer.relevance(R, lrp.Gamma(0.0), method=method),
                                      layer.relevance(R, lrp.Zero(), method=method))
        np.testing.assert_array_equal(
            layer.relevance(R, lrp.Gamma(0.0, bias=False), method=method),
            layer.relevance(R, lrp.Zero(bias=False), method=method))


@given(case=layer_cases())
def test_generalized_gamma_zero_is_lrp0(case):
    """g = 0: both halves are z_ij / (sum_i z_ij + b_j), and z_j = 0 (dropped) is LRP-0's zero
    denominator too. The fast path sums a+ w and a- w apart (rounding: 1e-12 of the scale)."""
    layer, a, R, _ = case
    layer.forward(a)
    scale = oracle(layer, lrp.Zero(), a, R)[3]
    for method in ("fast", "explicit"):
        np.testing.assert_allclose(layer.relevance(R, lrp.GeneralizedGamma(0.0), method=method),
                                   layer.relevance(R, lrp.Zero(), method=method),
                                   rtol=0, atol=1e-12 * scale + 1e-300)


@given(case=layer_cases(), gamma=st.sampled_from([0.25, 1.0]), bias=st.booleans())
def test_generalized_gamma_is_montavons_gamma_on_positive_outputs_of_nonnegative_inputs(
        case, gamma, bias):
    """For a >= 0 the positive half is a (w + g w+) with bias b + g b+: Montavon's Gamma.
    With relevance only at outputs z_j > 0 the two rules are equal (same sums, same order
    up to the a- term, which is 0: 1e-12 of the rounding scale, as above); with relevance at
    a negative output they differ (test_equations.py shows by how much)."""
    layer, a, R, _ = case
    a = np.abs(a)
    z = layer.forward(a)
    R = np.where(z > 0, R, 0)
    for method in ("fast", "explicit"):
        mine = layer.relevance(R, lrp.GeneralizedGamma(gamma, bias), method=method)
        montavon = layer.relevance(R, lrp.Gamma(gamma, bias), method=method)
        scale = oracle(layer, lrp.Gamma(gamma, bias), a, R)[3]
        np.testing.assert_allclose(mine, montavon, rtol=0, atol=1e-12 * scale + 1e-300)


@given(case=layer_cases())
def test_zbox_at_zero_is_lrp0_without_bias(case):
    """l = h = 0 removes the two bound terms exactly: ZBox(0, 0) is Zero(bias=False)."""
    layer, a, R, _ = case
    layer.forward(a)
    for method in ("fast", "explicit"):
        np.testing.assert_array_equal(layer.relevance(R, lrp.ZBox(0, 0), method=method),
                                      layer.relevance(R, lrp.Zero(bias=False), method=method))


@given(case=layer_cases())
def test_zplus_is_alpha1_beta0_without_bias(case):
    layer, a, R, _ = case
    layer.forward(a)
    np.testing.assert_array_equal(layer.relevance(R, lrp.ZPlus()),
                                  layer.relevance(R, lrp.AlphaBeta(1, 0, bias=False)))


@given(case=layer_cases(), seed=st.integers(0, 2**32 - 1))
def test_flat_ignores_the_input_values(case, seed):
    layer, a, R, _ = case
    other = np.random.default_rng(seed).standard_normal(a.shape)
    layer.forward(a)
    R_a = layer.relevance(R, lrp.Flat())
    layer.forward(other)
    np.testing.assert_array_equal(layer.relevance(R, lrp.Flat()), R_a)


@given(case=layer_cases(kinds=("dense", "conv")), seed=st.integers(0, 2**32 - 1))
def test_wsquare_ignores_input_and_bias(case, seed):
    layer, a, R, _ = case
    rng = np.random.default_rng(seed)
    layer.forward(a)
    R_a = layer.relevance(R, lrp.WSquare())
    layer.bias[:] = rng.standard_normal(layer.bias.shape)
    layer.forward(rng.standard_normal(a.shape))
    np.testing.assert_array_equal(layer.relevance(R, lrp.WSquare()), R_a)


@given(case=layer_cases(kinds=("dense", "conv"), zeros=(0.0,)))
def test_gamma_tends_to_alpha1_beta0_like_one_over_gamma(case):
    """For a >= 0, Gamma(g) -> AlphaBeta(1, 0) with an error of exactly O(1/g).

    Derivation (ours; the constant's source). Per connection write
    ``n_ij = a_i w_ij``, ``N_ij = a_i w+_ij``, ``d_j = sum_i n_ij + b_j`` and
    ``D_j = sum_i N_ij + b+_j``. For ``a >= 0``, ``z+_ij = N_ij`` and
    ``z+_j = D_j``, so AlphaBeta(1, 0) has shares ``N/D`` and Gamma(g)
    ``(n + g N) / (d + g D)``. Their difference is exactly::

        (n + g N)/(d + g D) - N/D = (n D - N d) / (D (d + g D))

    so ``g (R_gamma - R_ab)_i -> C_i = sum_j (n_ij D_j - N_ij d_j) / D_j^2 R_j``
    and ``|g (R_gamma - R_ab) - C| <= 2 K / g`` with
    ``K = sum_j |n_ij D_j - N_ij d_j| |d_j| / D_j^3 |R_j|`` once ``g D_j >= 2 |d_j|``.
    """
    layer, a, R, _ = case
    a = np.abs(a)
    W, b, _ = unrolled(layer, a.shape)
    a_flat, R_flat = a.reshape(len(a), -1, 1), R.reshape(len(R), 1, -1)
    n, N = a_flat * W, a_flat * np.maximum(W, 0)
    d, D = n.sum(axis=1, keepdims=True) + b, N.sum(axis=1, keepdims=True) + np.maximum(b, 0)
    assume(np.all(D > 1e-3))
    C = ((n * D - N * d) / D**2 * R_flat).sum(axis=2)
    K = (np.abs(n * D - N * d) * np.abs(d) / D**3 * np.abs(R_flat)).sum(axis=2)
    layer.forward(a)
    R_ab = layer.relevance(R, lrp.AlphaBeta(1, 0)).reshape(len(a), -1)
    g0 = max(10.0, 2 * float(np.max(np.abs(d) / D)))
    size = (np.abs(N / D * R_flat).sum(axis=2) + np.abs(C)).max()
    for g in (g0, 10 * g0, 100 * g0):
        R_gamma = layer.relevance(R, lrp.Gamma(g)).reshape(len(a), -1)
        exact = ((n * D - N * d) / (D * (d + g * D)) * R_flat).sum(axis=2)
        # the difference of two O(size) results: rounding 1e-13 * size (a few 100 u)
        np.testing.assert_allclose(R_gamma - R_ab, exact, rtol=0, atol=1e-13 * size)
        assert np.all(np.abs(g * (R_gamma - R_ab) - C) <= 2 * K / g + 1e-13 * g * size)


# -- hand-computed examples ----------------------------------------------------------------




@pytest.mark.parametrize("method", ["fast", "explicit"])
def test_zplus_by_hand(method):
    # z_ij = a_i w_ij: i=0 -> (1, 2), i=1 -> (-6, 2); z+ keeps (1, 2), (0, 2); sums (1, 4)
    # R_0 = 1/1 * 1 + 2/4 * 2 = 2,  R_1 = 0 + 2/4 * 2 = 1;  the bias plays no part
    R_in, record = relevance(lrp.Dense([[1, 2], [3, -1]], [5, -5]), [[1, -2]], [[1, 2]],
                             lrp.ZPlus(), method)
    np.testing.assert_allclose(R_in, [[2, 1]], rtol=1e-15)
    np.testing.assert_array_equal(record.absorbed_bias, [0])


@pytest.mark.parametrize("method", ["fast", "explicit"])
def test_gamma_by_hand(method):
    # w + g w+ = (2 + 1, -1) = (3, -1), b + g b+ = 1.5; d = 3 - 1 + 1.5 = 3.5, R_j = 7:
    # R = (3, -1) / 3.5 * 7 = (6, -2); the bias takes 1.5 / 3.5 * 7 = 3
    R_in, record = relevance(lrp.Dense([[2], [-1]], [1]), [[1, 1]], [[7]], lrp.Gamma(0.5), method)
    np.testing.assert_allclose(R_in, [[6, -2]], rtol=1e-15)
    np.testing.assert_allclose(record.absorbed_bias, [3], rtol=1e-15)


def test_gamma_zero_denominator_is_dropped():
    # w + g w+ = (1.5, -1.5) and no bias: d = 0, R_j = 2 is dropped, never NaN
    R_in, record = relevance(lrp.Dense([[1], [-1.5]], [0]), [[1, 1]], [[2]], lrp.Gamma(0.5))
    np.testing.assert_array_equal(R_in, [[0, 0]])
    np.testing.assert_array_equal(record.dropped, [2])


@pytest.mark.parametrize("method", ["fast", "explicit"])
def test_zbox_by_hand(method):
    # a w - l w+ - h w-: i=0: 0.5 - 0 - 0 = 0.5;  i=1: -0.5 - 0 - 1 * (-1) = 0.5;  d = 1
    R_in, record = relevance(lrp.Dense([[1], [-1]], [3]), [[0.5, 0.5]], [[2]],
                             lrp.ZBox(0, 1), method)
    np.testing.assert_allclose(R_in, [[1, 1]], rtol=1e-15)
    np.testing.assert_array_equal(record.absorbed_bias, [0])


@pytest.mark.parametrize("method", ["fast", "explicit"])
def test_wsquare_by_hand(method):
    # w^2 = (1, 4): shares 1/5 and 4/5 of R_j = 10, whatever a and b
    R_in, _ = relevance(lrp.Dense([[1], [-2]], [7]), [[-3, 0]], [[10]], lrp.WSquare(), method)
    np.testing.assert_allclose(R_in, [[2, 8]], rtol=1e-15)


@pytest.mark.parametrize("method", ["fast", "explicit"])
def test_flat_counts_no_padding_by_hand(method):
    """2x2 input, 2x2 kernel, padding 1: the 3x3 outputs see 1 (corners), 2 (edges), 4 inputs.

    Each input lies in one corner, two edge and the centre window:
    R_i = 1/1 + 1/2 + 1/2 + 1/4 = 2.25 for R_j = 1 everywhere (sum 9 = sum R_j).
    """
    conv = Conv2d(np.full((1, 1, 2, 2), -3.0), [4.0], padding=1)
    R_in, record = relevance(conv, np.arange(4.0).reshape(1, 1, 2, 2), np.ones((1, 1, 3, 3)),
                             lrp.Flat(), method)
    np.testing.assert_allclose(R_in, np.full((1, 1, 2, 2), 2.25), rtol=1e-15)
    np.testing.assert_array_equal(record.dropped, [0])


def test_flat_window_entirely_in_padding_is_dropped():
    # 1x1 input, 1x1 kernel, padding 1: 8 of the 9 outputs see only padding (n_j = 0)
    conv = Conv2d(np.ones((1, 1, 1, 1)), padding=1)
    R = np.arange(9.0).reshape(1, 1, 3, 3)
    R_in, record = relevance(conv, [[[[2.0]]]], R, lrp.Flat())
    np.testing.assert_array_equal(R_in, [[[[4.0]]]])          # the centre output, R_j = 4
    np.testing.assert_array_equal(record.dropped, [36 - 4])


@pytest.mark.parametrize("method", ["fast", "explicit"])
def test_zbox_padding_holds_zero_bounds(method):
    """Padded positions hold 0 for a, l and h: a 1x1 input in a 3x3 window with padding 1.

    Only the centre tap w = 2 > 0 touches the input: numerator 2 (a - l) = 2 (1 - (-1)) = 4.
    Without the zero padding of l and h, the other 8 taps (w = -1) would add -h w- = 8.
    """
    w = -np.ones((1, 1, 3, 3))
    w[0, 0, 1, 1] = 2.0
    R_in, record = relevance(Conv2d(w, padding=1), [[[[1.0]]]], [[[[5.0]]]],
                             lrp.ZBox(-1.0, 1.0), method)
    np.testing.assert_allclose(R_in, [[[[5.0]]]], rtol=1e-15)
    np.testing.assert_array_equal(record.dropped, [0])


def test_avgpool_flat_and_wsquare_are_uniform_in_each_window():
    pool = AvgPool2d(2)
    a = np.random.default_rng(0).standard_normal((1, 1, 2, 4))
    for rule in (lrp.Flat(), lrp.WSquare()):
        R_in, _ = relevance(pool, a, [[[[4.0, 8.0]]]], rule)
        np.testing.assert_allclose(R_in, [[[[1, 1, 2, 2], [1, 1, 2, 2]]]], rtol=1e-15)


# -- bounds of ZBox ----------------------------------------------------------------------------


@pytest.mark.parametrize("bound_shape", [(), (2, 1, 1), (2, 3, 4), (1, 2, 3, 4), (5, 2, 3, 4)])
def test_zbox_bounds_with_or_without_batch_axis(bound_shape):
    """Scalar, per-channel, per-pixel, with a batch axis of 1 or of B: all the same rule."""
    rng = np.random.default_rng(1)
    conv = Conv2d(rng.standard_normal((3, 2, 2, 2)), rng.standard_normal(3), padding=1)
    a = rng.random((5, 2, 3, 4))
    low_full = np.broadcast_to(np.full(bound_shape, -0.5), a.shape)
    conv.forward(a)
    R = rng.standard_normal(conv.forward(a).shape)
    expected = conv.relevance(R, lrp.ZBox(low_full, low_full + 2))
    low = np.full(bound_shape, -0.5) if bound_shape else -0.5
    np.testing.assert_array_equal(conv.relevance(R, lrp.ZBox(low, low + 2)), expected)


def test_zbox_bounds_that_do_not_broadcast_name_the_layer():
    net = lrp.Sequential([lrp.Dense(np.ones((4, 2))), lrp.ReLU(), lrp.Dense(np.ones((2, 1)))])
    with pytest.raises(ValueError, match=r"layer '0' \(Dense\).*\(3,\).*\(2, 4\)"):
        net.explain(np.ones((2, 4)), rule=[lrp.ZBox(np.zeros(3), 1.0), None, lrp.Epsilon()])
    with pytest.raises(ValueError, match=r"layer '0' \(Conv2d\).*high of shape \(3, 1, 1\)"):
        explain_layer(Conv2d(np.ones((1, 2, 1, 1))), np.ones((1, 2, 2, 2)),
                      np.ones((1, 1, 2, 2)), lrp.ZBox(0.0, np.ones((3, 1, 1))))


@pytest.mark.parametrize("low, high, error, message", [
    (1.0, 0.0, ValueError, "low must be <= high"),
    (np.zeros(3), np.array([1, -1, 1]), ValueError, "1 position"),
    (np.nan, 1.0, ValueError, "finite"),
    (0.0, np.inf, ValueError, "finite"),
    (np.zeros(3), np.ones(2), ValueError, "do not broadcast"),
    ("0", 1.0, TypeError, "real number"),
    (True, 1.0, TypeError, "real number"),
])
def test_zbox_rejects_bad_bounds(low, high, error, message):
    with pytest.raises(error, match=message):
        lrp.ZBox(low, high)


def test_zbox_compares_and_hashes_by_value():
    assert lrp.ZBox(np.zeros(3), 1) == lrp.ZBox(np.zeros(3), 1.0)
    assert hash(lrp.ZBox(np.zeros(3), 1)) == hash(lrp.ZBox(np.zeros(3), 1.0))
    assert lrp.ZBox(np.zeros(3), 1) != lrp.ZBox(np.zeros((1, 3)), 1)
    assert lrp.ZBox(0, 1) != lrp.ZBox(0, 2)
    assert repr(lrp.ZBox(np.zeros((3, 1, 1)), 1)) == "ZBox(low=array(3, 1, 1), high=1.0)"
    bound = np.zeros(2)
    rule = lrp.ZBox(bound, 1)
    bound[0] = 5.0                     # the rule keeps its own read-only copy
    np.testing.assert_array_equal(rule.low, [0, 0])
    with pytest.raises(ValueError):
        rule.low[0] = 1.0


@pytest.mark.parametrize("args, error", [
    ((-0.25,), ValueError), ((float("nan"),), ValueError), ((float("inf"),), ValueError),
    (("0.25",), ValueError), ((0.25, 1), TypeError),
])
@pytest.mark.parametrize("rule", [lrp.Gamma, lrp.GeneralizedGamma])
def test_gamma_rejects_bad_parameters(args, error, rule):
    with pytest.raises(error):
        rule(*args)


# -- BatchNorm: a one-to-one affine map ----------------------------------------------------------


def test_rules_on_batchnorm_are_documented_pass_throughs():
    """On y = w x + c (one input per output): Flat passes R; WSquare passes R where w != 0;
    ZBox passes R except where x sits on the bound its weight's sign selects; ZPlus passes R
    where w x > 0; all else is dropped, never NaN."""
    bn = BatchNorm1d([2.0, 0.0, -1.0, 1.0], [1.0, 1.0, 1.0, -1.0], np.zeros(4), np.ones(4), eps=0.0)
    x = np.array([[0.5, 0.5, 1.0, -2.0]])
    R = np.array([[1.0, 2.0, 3.0, 4.0]])
    cases = [
        (lrp.Flat(), [1, 2, 3, 4]),
        (lrp.WSquare(), [1, 0, 3, 4]),            # w = 0 in feature 1: dropped
        # feature 2: w < 0 and x = h;  feature 3: w > 0 and x = l
        (lrp.ZBox(-2.0, 1.0), [1, 0, 0, 0]),
        (lrp.ZPlus(), [1, 0, 0, 0]),              # w x = (1, 0, -1, -2)
    ]
    for rule, expected in cases:
        R_in, record = relevance(bn, x, R, rule)
        np.testing.assert_array_equal(R_in, [expected])
        np.testing.assert_array_equal(record.dropped, [R.sum() - sum(expected)])
