"""BatchNorm1d/2d: forward, gradients, every linear rule, Pass, and the three treatments."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.audit import per_sample_sum

from naive import finite_difference

# every rule a BatchNorm accepts; Epsilon(0.5) and bias=False variants exercise
# the stabilizer and the rule-side removal of the shift c
RULES = [
    lrp.Zero(), lrp.Zero(bias=False), lrp.Epsilon(1e-6), lrp.Epsilon(0.5),
    lrp.Epsilon(0.25, bias=False), lrp.AlphaBeta(1, 0), lrp.AlphaBeta(2, 1),
    lrp.AlphaBeta(1.5, 0.5, bias=False), lrp.ZPlus(), lrp.Gamma(0.25), lrp.Gamma(1.0, bias=False),
    lrp.Flat(), lrp.WSquare(), lrp.ZBox(-1.0, 2.0), lrp.Pass(),
]


def random_bn(rng: np.random.Generator, kind: type, channels: int, zeros: float = 0.0):
    """A BatchNorm with random statistics; ``zeros`` of gamma and beta set to exactly 0."""
    gamma, beta = (np.where(rng.random(channels) < zeros, 0.0, rng.standard_normal(channels))
                   for _ in range(2))
    return kind(gamma, beta, rng.standard_normal(channels), rng.random(channels) + 0.1,
                eps=float(rng.choice([1e-5, 0.1])))


@st.composite
def bn_cases(draw):
    """A BatchNorm1d or BatchNorm2d, an input batch and an output relevance."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from([lrp.BatchNorm1d, lrp.BatchNorm2d]))
    batch, channels = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    zeros = draw(st.sampled_from([0.0, 0.0, 0.4]))
    shape = (batch, channels) if kind is lrp.BatchNorm1d else (
        batch, channels, draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    x = np.where(rng.random(shape) < zeros, 0.0, rng.standard_normal(shape))
    return random_bn(rng, kind, channels, zeros), x, rng.standard_normal(shape)


def torch_formula(bn, x: np.ndarray) -> np.ndarray:
    """PyTorch's eval-mode formula, written out independently of the layer's a and c."""
    shape = (-1,) + (1,) * (x.ndim - 2)
    return ((x - bn.running_mean.reshape(shape)) / np.sqrt(bn.running_var.reshape(shape) + bn.eps)
            * bn.gamma.reshape(shape) + bn.beta.reshape(shape))


# -- forward and backward ------------------------------------------------------------------


@given(bn_cases())
def test_forward_matches_the_formula(case):
    bn, x, _ = case
    # y = a x + c and PyTorch's (x - mean)/sqrt(var + eps)*gamma + beta differ only
    # in rounding order: a few ulps of the largest term
    np.testing.assert_allclose(bn.forward(x), torch_formula(bn, x), rtol=1e-12, atol=1e-12)


def test_forward_by_hand():
    # gamma = 2, var + eps = 4 -> a = 1; c = beta - a mean = 1 - 3 = -2
    bn = lrp.BatchNorm1d([2.0], [1.0], [3.0], [3.0], eps=1.0)
    np.testing.assert_array_equal(bn.weight, [1.0])
    np.testing.assert_array_equal(bn.bias, [-2.0])
    np.testing.assert_array_equal(bn.forward(np.array([[0.0], [5.0]])), [[-2.0], [3.0]])


@pytest.mark.parametrize("kind,shape", [(lrp.BatchNorm1d, (3, 4)), (lrp.BatchNorm2d, (2, 3, 2, 3))])
def test_gradients_match_finite_differences(kind, shape):
    rng = np.random.default_rng(1)
    bn = random_bn(rng, kind, shape[1])
    x, G = rng.standard_normal(shape), rng.standard_normal(shape)
    bn.forward(x)
    grad_x = bn.backward(G)

    def loss(x=x, gamma=bn.gamma, beta=bn.beta):
        other = type(bn)(gamma, beta, bn.running_mean, bn.running_var, bn.eps)
        return float(np.sum(G * other.forward(x)))

    # the loss is linear in x, gamma and beta, so central differences are exact
    # up to rounding: |loss| * 1e-16 / h ~ 1e-11
    for mine, numeric in [
        (grad_x, finite_difference(lambda v: loss(x=v), x, h=1e-4)),
        (bn.grad_gamma, finite_difference(lambda v: loss(gamma=v), bn.gamma, h=1e-4)),
        (bn.grad_beta, finite_difference(lambda v: loss(beta=v), bn.beta, h=1e-4)),
    ]:
        np.testing.assert_allclose(mine, numeric, atol=1e-8)


# -- relevance -----------------------------------------------------------------------------


@given(bn_cases(), st.sampled_from(RULES))
def test_explicit_equals_fast(case, rule):
    bn, x, R = case
    bn.forward(x)
    fast = bn.relevance(R, rule)
    explicit = bn.relevance(R, rule, method="explicit")
    # both paths divide by the same denominator a x + c (+ eps sign): they differ
    # by the order of two multiplications, a few ulps relative
    np.testing.assert_allclose(explicit, fast, rtol=1e-12, atol=1e-300)


@given(bn_cases(), st.sampled_from(RULES), st.sampled_from(["fast", "explicit"]))
def test_ledger_balances_for_every_rule(case, rule, method):
    bn, x, R = case
    e = lrp.Sequential([bn]).explain(x, rule=rule, output_relevance=R, method=method)
    record = e.layer("0")
    scale = 1 + per_sample_sum(np.abs(R)) + np.abs(record.ledger.total())
    # conservation to float rounding, relative to the relevance that moved
    assert np.all(np.abs(record.imbalance()) <= 1e-10 * scale)


def test_zero_rule_by_hand_absorbs_and_injects():
    # var + eps = (4, 1) -> a = gamma / sqrt(.) = (2/2, -1/1) = (1, -1)
    # c = beta - a mean = (0.5 - 1*1, 1 - (-1)*2) = (-0.5, 3)
    bn = lrp.BatchNorm1d([2.0, -1.0], [0.5, 1.0], [1.0, 2.0], [3.0, 0.0], eps=1.0)
    x = np.array([[2.0, 1.0]])
    # y = a x + c = (2 - 0.5, -1 + 3) = (1.5, 2)
    np.testing.assert_allclose(bn.forward(x), [[1.5, 2.0]], rtol=1e-15)
    R = np.array([[3.0, 4.0]])
    e = lrp.Sequential([bn]).explain(x, rule=lrp.Zero(), output_relevance=R)
    # R_in = a x / y * R = (2/1.5 * 3, -1/2 * 4) = (4, -2):
    #   channel 0: the shift -0.5 opposes a x = 2, so the input gets more than arrived
    #   (the shift injects 1); channel 1: the shift +3 flips the sign of y, so the input
    #   gets negative relevance and the shift takes 3/2 * 4 = 6
    np.testing.assert_allclose(e.relevance, [[4.0, -2.0]], rtol=1e-14)
    np.testing.assert_allclose(e.layer("0").absorbed_bias, [-1.0 + 6.0], rtol=1e-14)
    # with bias=False the shift is ignored by the rule: a x / a x = 1, R passes through
    e0 = lrp.Sequential([bn]).explain(x, rule=lrp.Zero(bias=False), output_relevance=R)
    np.testing.assert_allclose(e0.relevance, R, rtol=1e-15)


def test_rule_zoo_by_hand():
    # the BatchNorm of the previous test: a = (1, -1), c = (-0.5, 3), x = (2, 1),
    # so z_ij = a x = (2, -1); R = (3, 4) arrives at the output
    bn = lrp.BatchNorm1d([2.0, -1.0], [0.5, 1.0], [1.0, 2.0], [3.0, 0.0], eps=1.0)
    x, R = np.array([[2.0, 1.0]]), np.array([[3.0, 4.0]])
    net = lrp.Sequential([bn])

    def explain(rule):
        e = net.explain(x, rule=rule, output_relevance=R)
        return e.relevance, e.layer("0")

    # z+: channel 0 (a x = 2 > 0) passes 3; channel 1 has no positive contribution: drops 4
    R_in, record = explain(lrp.ZPlus())
    np.testing.assert_array_equal(R_in, [[3.0, 0.0]])
    assert record.dropped[0] == 4.0
    # flat and w^2: one input per output, so the share is 1 (a^2 = 1 != 0)
    for rule in (lrp.Flat(), lrp.WSquare()):
        np.testing.assert_array_equal(explain(rule)[0], R)
    # gamma = 1: w + g w+ = (2, -1), b + g b+ = (-0.5, 6);
    # channel 0: 2*2 / (4 - 0.5) * 3 = 24/7, bias -0.5/3.5 * 3 = -3/7
    # channel 1: 1*(-1) / (-1 + 6) * 4 = -4/5, bias 6/5 * 4 = 24/5
    R_in, record = explain(lrp.Gamma(1.0))
    np.testing.assert_allclose(R_in, [[24 / 7, -4 / 5]], rtol=1e-15)
    np.testing.assert_allclose(record.absorbed_bias, [-3 / 7 + 24 / 5], rtol=1e-15)
    # z^B with l = 0, h = 1: numerator a x - l w+ - h w-: channel 0: 2 - 0 - 0 = 2 (share 1,
    # x = 2 lies outside the box but is not refused); channel 1: -1 - 0 - 1*(-1) = 0: dropped
    R_in, record = explain(lrp.ZBox(0.0, 1.0))
    np.testing.assert_array_equal(R_in, [[3.0, 0.0]])
    assert record.dropped[0] == 4.0


@given(bn_cases())
def test_pass_hands_relevance_through(case):
    bn, x, R = case
    e = lrp.Sequential([bn]).explain(x, rule=lrp.Pass(), output_relevance=R)
    np.testing.assert_array_equal(e.relevance, R)
    assert np.all(e.layer("0").ledger.total() == 0)


@given(bn_cases())
def test_zero_rule_is_gradient_x_input(case):
    bn, x, R = case
    y = bn.forward(x)
    # LRP-0 on y = a x + c: R_in = a x / y * R; with R = y g this is x * (a g),
    # the gradient times the input (where y != 0)
    g = R
    got = bn.relevance(y * g, lrp.Zero())
    expected = np.where(y != 0, x * bn.backward(g), 0.0)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * (1 + np.abs(y * g).max()))


# -- the three treatments on a fixed network ------------------------------------------------

# x = (1, 2);  Dense1: W = [[1, 0], [1, 1]], b = 0   -> z = (1 + 2, 0 + 2) = (3, 2)
# BN: gamma = (1, 2), var = (1, 1), eps = 0 -> a = (1, 2); mean = (0, 1), beta = (1, 0)
#     -> c = beta - a mean = (1, -2);  y = a z + c = (4, 2)
#     channel 0: shift +1 agrees with a z = 3 (absorbs), channel 1: -2 opposes a z = 4 (injects)
# ReLU: (4, 2);  Dense2: W = [[1], [1]], b = 0 -> f = 6 = R at the output (target 0)
X = np.array([[1.0, 2.0]])


def dense1() -> lrp.Dense:
    return lrp.Dense([[1.0, 0.0], [1.0, 1.0]], [0.0, 0.0])


def bn() -> lrp.BatchNorm1d:
    return lrp.BatchNorm1d([1.0, 2.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], eps=0.0)


def head() -> list:
    return [lrp.ReLU(), lrp.Dense([[1.0], [1.0]], [0.0])]


def test_three_treatments_under_lrp0():
    net = lrp.Sequential([dense1(), bn(), *head()])
    # folded by hand: W' = W a per column = [[1, 0], [1, 2]], b' = a b + c = (1, -2)
    folded = lrp.Sequential([lrp.Dense([[1.0, 0.0], [1.0, 2.0]], [1.0, -2.0]), *head()])
    np.testing.assert_array_equal(net.forward(X), [[6.0]])
    np.testing.assert_array_equal(folded.forward(X), [[6.0]])
    # Dense2 (LRP-0, no bias): R at the BN output = y = (4, 2)
    affine = net.explain(X, rule=lrp.Zero())
    # BN: R = a z / y * R = (3/4 * 4, 4/2 * 2) = (3, 4); shift books (1/4 * 4, -2/2 * 2) = (1, -2)
    np.testing.assert_allclose(affine.layer("1").relevance_in, [[3.0, 4.0]], rtol=1e-15)
    np.testing.assert_allclose(affine.layer("1").absorbed_bias, [-1.0], rtol=1e-15)
    # Dense1: j=0: (1, 2)/3 * 3 = (1, 2); j=1: (0, 2)/2 * 4 = (0, 4) -> R = (1, 6), sum 7 = 6 - (-1)
    np.testing.assert_allclose(affine.relevance, [[1.0, 6.0]], rtol=1e-15)
    # Pass: Dense1 shares (4, 2): j=0: (1, 2)/3 * 4, j=1: (0, 2)/2 * 2 -> (4/3, 8/3 + 2); sum 6
    passed = net.explain(X, rule=[lrp.Zero(), lrp.Pass(), None, lrp.Zero()])
    np.testing.assert_allclose(passed.relevance, [[4 / 3, 14 / 3]], rtol=1e-15)
    assert passed.layer("1").absorbed_bias[0] == 0
    # folded: z' = (4, 2): j=0: (1, 2)/4 * 4 = (1, 2); j=1: (0, 4)/2 * 2 = (0, 4) -> (1, 6):
    # under LRP-0 folding gives the affine heatmap (a cancels); the bias booking moves from
    # the BN record to the folded Dense (b' absorbs 1 - 2 = -1, the same total)
    merged = folded.explain(X, rule=lrp.Zero())
    np.testing.assert_allclose(merged.relevance, [[1.0, 6.0]], rtol=1e-15)
    np.testing.assert_allclose(merged.layer("0").absorbed_bias, [-1.0], rtol=1e-15)
    np.testing.assert_allclose(affine.layer("0").absorbed_bias, [0.0], atol=0)


def test_three_treatments_under_epsilon_differ():
    net = lrp.Sequential([dense1(), bn(), *head()])
    folded = lrp.Sequential([lrp.Dense([[1.0, 0.0], [1.0, 2.0]], [1.0, -2.0]), *head()])
    one, zero = lrp.Epsilon(1.0), lrp.Zero()
    # LRP-0 at Dense2, so R = (4, 2) reaches the BN output in all three treatments
    affine = net.explain(X, rule=[one, one, None, zero])
    passed = net.explain(X, rule=[one, lrp.Pass(), None, zero])
    merged = folded.explain(X, rule=[one, None, zero])
    # affine: BN: y = (4, 2), s = y + 1 = (5, 3):
    #   R = (3/5 * 4, 4/3 * 2) = (12/5, 8/3); bias (1/5 * 4, -2/3 * 2); stabilizer (4/5, 2/3)
    # Dense1: z = (3, 2), s = (4, 3): j=0: (1, 2)/4 * 12/5 = (3/5, 6/5), stabilizer 3/5;
    #   j=1: (0, 2)/3 * 8/3 = (0, 16/9), stabilizer 8/9  ->  R = (3/5, 6/5 + 16/9)
    np.testing.assert_allclose(affine.relevance, [[3 / 5, 6 / 5 + 16 / 9]], rtol=1e-14)
    np.testing.assert_allclose(affine.layer("1").absorbed_bias, [4 / 5 - 4 / 3], rtol=1e-14)
    np.testing.assert_allclose(affine.layer("1").absorbed_stabilizer, [4 / 5 + 2 / 3], rtol=1e-14)
    np.testing.assert_allclose(affine.layer("0").absorbed_stabilizer, [3 / 5 + 8 / 9], rtol=1e-14)
    # pass: Dense1 shares (4, 2) with s = (4, 3): j=0: (1, 2)/4 * 4 = (1, 2), stabilizer 1;
    #   j=1: (0, 2)/3 * 2 = (0, 4/3), stabilizer 2/3  ->  R = (1, 10/3); no bias booked
    np.testing.assert_allclose(passed.relevance, [[1.0, 10 / 3]], rtol=1e-14)
    np.testing.assert_allclose(passed.layer("0").absorbed_stabilizer, [1 + 2 / 3], rtol=1e-14)
    # folded: z' = (4, 2), s = (5, 3): j=0: (1, 2)/5 * 4 = (4/5, 8/5), bias 4/5, stabilizer 4/5;
    #   j=1: (0, 4)/3 * 2 = (0, 8/3), bias -4/3, stabilizer 2/3  ->  R = (4/5, 8/5 + 8/3):
    #   one stabilizer instead of the affine treatment's two
    np.testing.assert_allclose(merged.relevance, [[4 / 5, 8 / 5 + 8 / 3]], rtol=1e-14)
    np.testing.assert_allclose(merged.layer("0").absorbed_bias, [4 / 5 - 4 / 3], rtol=1e-14)
    np.testing.assert_allclose(merged.layer("0").absorbed_stabilizer, [4 / 5 + 2 / 3], rtol=1e-14)
    for e in (affine, passed, merged):
        # each treatment's ledger accounts for all of f = 6
        total = sum(r.ledger.total()[0] for r in e.layers)
        np.testing.assert_allclose(e.relevance.sum() + total, 6.0, rtol=1e-14)


# -- errors, dtype and files ----------------------------------------------------------------


def test_constructor_errors():
    with pytest.raises(ValueError, match=r"gamma must have shape \(C,\)"):
        lrp.BatchNorm1d(np.ones((2, 2)), np.zeros(2), np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match="running_mean must have shape"):
        lrp.BatchNorm2d(np.ones(3), np.zeros(3), np.zeros(2), np.ones(3))
    with pytest.raises(ValueError, match="running_var \\+ eps must be > 0"):
        lrp.BatchNorm1d(np.ones(2), np.zeros(2), np.zeros(2), [1.0, 0.0], eps=0.0)
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        lrp.BatchNorm1d(np.ones(2), np.zeros(2), np.zeros(2), np.ones(2), eps=-1e-5)
    with pytest.raises(ValueError, match="beta contains 1 NaN"):
        lrp.BatchNorm1d(np.ones(2), [0.0, np.nan], np.zeros(2), np.ones(2))


def test_input_and_rule_errors_name_the_layer():
    net = lrp.Sequential([lrp.Dense(np.ones((3, 2))), lrp.BatchNorm2d(np.ones(2), np.zeros(2),
                                                                      np.zeros(2), np.ones(2))])
    with pytest.raises(ValueError, match=r"layer '1' \(BatchNorm2d\): expected input of shape "
                                         r"\(B, 2, \*, \*\), got \(1, 2\)"):
        net.forward(np.ones((1, 3)))
    bn = lrp.BatchNorm1d(np.ones(2), np.zeros(2), np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match="needs a forward pass first"):
        bn.relevance(np.ones((1, 2)), lrp.Zero())
    bn.forward(np.ones((1, 2)))
    with pytest.raises(ValueError, match="needs a rule, got None"):
        bn.relevance(np.ones((1, 2)), None)


def test_save_load_and_astype_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    net = lrp.Sequential([random_bn(rng, lrp.BatchNorm2d, 3), lrp.Flatten(),
                          lrp.Dense(rng.standard_normal((12, 2))),
                          random_bn(rng, lrp.BatchNorm1d, 2)])
    x = rng.standard_normal((2, 3, 2, 2))
    lrp.save(net, tmp_path / "bn.npz")
    loaded = lrp.load(tmp_path / "bn.npz")
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in net.layers]
    assert loaded[0].eps == net[0].eps
    for name in ("gamma", "beta", "running_mean", "running_var"):
        np.testing.assert_array_equal(getattr(loaded[3], name), getattr(net[3], name))
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))
    rule = lrp.Epsilon(0.1)
    np.testing.assert_array_equal(loaded.explain(x, rule=rule).relevance,
                                  net.explain(x, rule=rule).relevance)
    single = net.astype(np.float32)
    assert single[0].gamma.dtype == np.float32 and single[0].weight.dtype == np.float32
    y32 = single.forward(x)
    assert y32.dtype == np.float32
    # float32 rounding (~6e-8 relative) through four layers
    np.testing.assert_allclose(y32, net.forward(x), rtol=1e-5, atol=1e-5)
