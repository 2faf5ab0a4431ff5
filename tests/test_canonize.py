"""merge_batchnorm: folding BatchNorm into Dense/Conv2d, and LRP-0 on ResNet-like networks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.rules.canonize import UnfoldedBatchNormWarning, merge_batchnorm

RULES = [
    lrp.Zero(), lrp.Epsilon(1e-6), lrp.Epsilon(0.5), lrp.Epsilon(0.25, bias=False),
    lrp.AlphaBeta(1, 0), lrp.AlphaBeta(2, 1), lrp.ZPlus(), lrp.Gamma(0.25), lrp.Flat(),
]


# -- networks built twice: with BatchNorm layers, or folded by hand -------------------------
#
# Every builder draws the same random numbers whether it folds or not, so calling it
# with two generators of the same seed gives the BatchNorm network and its hand-folded
# twin. The folding is written here from Zennit's formula, independently of
# lrp_ref.canonize:
#     W'_.j = W_.j * g_j / sqrt(v_j + e),   b'_j = (b_j - m_j) g_j / sqrt(v_j + e) + beta_j


def statistics(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    """gamma, beta, running_mean, running_var of n channels (some gamma negative)."""
    return (1 + 0.5 * rng.standard_normal(n), 0.3 * rng.standard_normal(n),
            0.3 * rng.standard_normal(n), rng.random(n) + 0.5)


def dense_bn(rng, n_in: int, n_out: int, fold: bool, n_bn: int = 1) -> list:
    """Dense followed by ``n_bn`` BatchNorm1d layers, or the Dense they fold into."""
    w, b = rng.standard_normal((n_in, n_out)) / np.sqrt(n_in), 0.3 * rng.standard_normal(n_out)
    stats = [statistics(rng, n_out) for _ in range(n_bn)]
    if not fold:
        return [lrp.Dense(w, b)] + [lrp.BatchNorm1d(*s) for s in stats]
    for gamma, beta, mean, var in stats:
        scale = gamma / np.sqrt(var + 1e-5)
        w, b = w * scale[None, :], (b - mean) * scale + beta
    return [lrp.Dense(w, b)]


def conv_bn(rng, c_in: int, c_out: int, fold: bool, kernel: int = 3, stride: int = 1,
            padding: int = 1) -> list:
    """Conv2d followed by BatchNorm2d, or the Conv2d it folds into."""
    w = rng.standard_normal((c_out, c_in, kernel, kernel)) / np.sqrt(c_in * kernel**2)
    b = 0.3 * rng.standard_normal(c_out)
    gamma, beta, mean, var = statistics(rng, c_out)
    if not fold:
        return [lrp.Conv2d(w, b, stride=stride, padding=padding),
                lrp.BatchNorm2d(gamma, beta, mean, var)]
    scale = gamma / np.sqrt(var + 1e-5)
    return [lrp.Conv2d(w * scale[:, None, None, None], (b - mean) * scale + beta,
                       stride=stride, padding=padding)]


def dense_resnet(rng, width: int, fold: bool, epsilon: float) -> lrp.Sequential:
    """Dense+BN, an identity block, a projection block, a double BN, a head."""
    wide = width + 1
    return lrp.Sequential([
        *dense_bn(rng, width, width, fold), lrp.ReLU(),
        lrp.Residual(lrp.Sequential([*dense_bn(rng, width, width, fold), lrp.ReLU(),
                                     *dense_bn(rng, width, width, fold)]), epsilon=epsilon),
        lrp.ReLU(),
        lrp.Residual(lrp.Sequential([*dense_bn(rng, width, wide, fold), lrp.ReLU(),
                                     *dense_bn(rng, wide, wide, fold, n_bn=2)]),
                     lrp.Sequential(dense_bn(rng, width, wide, fold)), epsilon=epsilon),
        lrp.ReLU(),
        *dense_bn(rng, wide, 3, fold),
    ])


def conv_resnet(rng, channels: int, fold: bool, epsilon: float) -> lrp.Sequential:
    """A small ResNet on (B, 2, 4, 4) images.

    Conv+BN stem; a block with identity shortcut; a downsampling block (stride 2)
    whose shortcut is a 1x1 projection Conv+BN; a Dense+BN and a Dense head.
    """
    c1, c2 = channels, channels + 1
    return lrp.Sequential([
        *conv_bn(rng, 2, c1, fold), lrp.ReLU(),
        lrp.Residual(lrp.Sequential([*conv_bn(rng, c1, c1, fold), lrp.ReLU(),
                                     *conv_bn(rng, c1, c1, fold)]), epsilon=epsilon),
        lrp.ReLU(),
        lrp.Residual(lrp.Sequential([*conv_bn(rng, c1, c2, fold, stride=2), lrp.ReLU(),
                                     *conv_bn(rng, c2, c2, fold)]),
                     lrp.Sequential(conv_bn(rng, c1, c2, fold, kernel=1, stride=2, padding=0)),
                     epsilon=epsilon),
        lrp.ReLU(), lrp.Flatten(),
        *dense_bn(rng, c2 * 4, 5, fold), lrp.ReLU(),
        lrp.Dense(rng.standard_normal((5, 3)), rng.standard_normal(3)),
    ])


def twins(builder, seed: int, size: int, epsilon: float = 1e-6):
    """The BatchNorm network and its hand-folded twin."""
    return (builder(np.random.default_rng(seed), size, False, epsilon),
            builder(np.random.default_rng(seed), size, True, epsilon))


def input_for(net: lrp.Sequential, rng: np.random.Generator, batch: int) -> np.ndarray:
    first = net[0]
    if isinstance(first, lrp.Conv2d):
        return rng.standard_normal((batch, first.weight.shape[1], 4, 4))
    return rng.standard_normal((batch, first.weight.shape[0]))


@st.composite
def twin_cases(draw):
    builder = draw(st.sampled_from([dense_resnet, conv_resnet]))
    seed = draw(st.integers(0, 2**32 - 1))
    net, folded = twins(builder, seed, draw(st.integers(1, 3)))
    x = input_for(net, np.random.default_rng(seed + 1), draw(st.integers(1, 2)))
    return net, folded, x


# -- the property ----------------------------------------------------------------------------


@given(twin_cases(), st.sampled_from(RULES))
def test_merge_equals_the_hand_folded_network(case, rule):
    net, folded, x = case
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # every BatchNorm here is foldable
        merged = merge_batchnorm(net)
    assert merged.config() == folded.config()   # same layers, BatchNorms removed
    for key, array in folded.state().items():
        # the same formula in another order: a few ulps
        np.testing.assert_allclose(merged.state()[key], array, rtol=1e-13, atol=1e-15)
    y = net.forward(x)
    # forward preserved (1e-12 relative to the output's scale)
    np.testing.assert_allclose(merged.forward(x), y, rtol=0, atol=1e-12 * np.abs(y).max())
    e_merged = merged.explain(x, rule=rule)
    e_folded = folded.explain(x, rule=rule)
    # ulp-level weight differences, amplified by small denominators through ~8 layers:
    # observed <= 3e-14 of this scale over 1800 random cases (AlphaBeta(2, 1) the worst)
    scale = np.abs(e_folded.relevance).max() + np.abs(y).max()
    np.testing.assert_allclose(e_merged.relevance, e_folded.relevance, rtol=0, atol=1e-11 * scale)


@pytest.mark.parametrize("builder,size", [(dense_resnet, 4), (conv_resnet, 3)])
@pytest.mark.parametrize("seed", [0, 2, 3, 4])
def test_lrp0_equals_gradient_x_input_unfolded_and_folded(builder, size, seed):
    net, _ = twins(builder, seed, size, epsilon=0.0)
    x = input_for(net, np.random.default_rng(100 + seed), 3)
    gxi = net.gradient_x_input(x)
    # seeds chosen so that no sample's target is cut off by dead ReLUs (else 0 == 0)
    assert np.all(np.abs(gxi).reshape(len(x), -1).max(axis=1) > 0)
    for network in (net, merge_batchnorm(net)):
        e = network.explain(x, rule=lrp.Zero())
        assert not any(np.any(r.dropped) for r in e.layers)   # no zero denominators here
        # sums of the same products in other orders: relative to the output and the
        # largest |gxi|, rounding (~1e-15) through a dozen layers
        scale = np.abs(e.output).max() + np.abs(gxi).max()
        np.testing.assert_allclose(e.relevance, gxi, rtol=0, atol=1e-11 * scale)
    # with Pass at every BatchNorm the equality breaks: Pass ignores the shifts
    passed = net.explain(x, rule=lambda n: {
        p: lrp.Pass() if isinstance(layer, lrp.layers.BatchNorm) else lrp.Zero()
        for p, layer in n.named_layers() if layer.takes_rule})
    assert np.abs(passed.relevance - gxi).max() > 1e-6 * np.abs(gxi).max()


# -- copies, warnings and edge cases -----------------------------------------------------------


def test_original_is_untouched():
    net, _ = twins(conv_resnet, 0, 2)
    before = {k: v.copy() for k, v in net.state().items()}
    config = net.config()
    merged = merge_batchnorm(net)
    assert net.config() == config
    for key, array in net.state().items():
        np.testing.assert_array_equal(array, before[key])
    for a in net.state().values():
        assert not any(np.shares_memory(a, b) for b in merged.state().values())
    # the merged network has 7 fewer layers (7 BatchNorms) and still runs the original's input
    assert len(list(net.named_layers())) - len(list(merged.named_layers())) == 7


def test_float32_network_stays_float32():
    net, _ = twins(dense_resnet, 1, 2)
    single = net.astype(np.float32)
    merged = merge_batchnorm(single)
    assert all(a.dtype == np.float32 for a in merged.state().values())
    x = np.random.default_rng(0).standard_normal((2, 2))
    # float32 rounding, ~1e-7 relative, through ~10 layers
    np.testing.assert_allclose(merged.forward(x), single.forward(x), rtol=1e-5, atol=1e-5)


def bn1d(n: int = 2) -> lrp.BatchNorm1d:
    return lrp.BatchNorm1d(np.full(n, 2.0), np.ones(n), np.full(n, 0.5), np.full(n, 3.0), eps=1.0)


def test_unfoldable_batchnorms_stay_and_are_reported():
    net = lrp.Sequential([
        bn1d(),                                                   # 0: first layer
        lrp.Dense(np.eye(2), [0.5, -0.5]), bn1d(),                # 1, 2: folded
        lrp.ReLU(), bn1d(),                                       # 4: follows a ReLU
        lrp.Residual(bn1d(), lrp.Sequential([lrp.Dense(np.eye(2)), bn1d()])),  # 5.body alone
        lrp.Sequential([lrp.Dense(np.ones((2, 2))), lrp.Sequential([bn1d()])]),  # 6.1.0 nested
    ])
    with pytest.warns(UnfoldedBatchNormWarning) as caught:
        merged = merge_batchnorm(net)
    assert len(caught) == 1
    warning = caught[0].message
    assert warning.paths == ["0", "4", "5.body", "6.1.0"]
    text = str(warning)
    assert "layer '0' (BatchNorm1d) is the first layer of its Sequential" in text
    assert "layer '4' (BatchNorm1d) follows layer '3' (ReLU), not a Dense or Conv2d" in text
    assert "layer '5.body' (BatchNorm1d) is not inside a Sequential after a Dense" in text
    assert "layer '6.1.0' (BatchNorm1d) is the first layer of its Sequential" in text
    kinds = [type(layer).__name__ for _, layer in merged.named_layers()]
    assert kinds == ["BatchNorm1d", "Dense", "ReLU", "BatchNorm1d", "Residual", "BatchNorm1d",
                     "Sequential", "Dense", "Sequential", "Dense", "Sequential", "BatchNorm1d"]
    x = np.random.default_rng(0).standard_normal((3, 2))
    np.testing.assert_allclose(merged.forward(x), net.forward(x), rtol=1e-13, atol=1e-13)
    # the folded Dense by hand: a = 2 / sqrt(3 + 1) = 1, c = 1 - 1 * 0.5 = 0.5:
    # W' = W = eye(2), b' = a b + c = (0.5 + 0.5, -0.5 + 0.5) = (1, 0)
    np.testing.assert_array_equal(merged[1].weight, np.eye(2))
    np.testing.assert_array_equal(merged[1].bias, [1.0, 0.0])


def test_mismatched_batchnorms_are_not_folded():
    conv = lrp.Conv2d(np.ones((2, 1, 1, 1)))
    with pytest.warns(UnfoldedBatchNormWarning, match=r"layer '1' \(BatchNorm1d\) cannot follow "
                                                      r"layer '0' \(Conv2d\) \(expected a "
                                                      r"BatchNorm2d\)"):
        merge_batchnorm(lrp.Sequential([conv, bn1d()]))
    with pytest.warns(UnfoldedBatchNormWarning, match=r"layer '1' \(BatchNorm1d\) has 3 "
                                                      r"channels but layer '0' \(Dense\) has 2"):
        merge_batchnorm(lrp.Sequential([lrp.Dense(np.eye(2)), bn1d(3)]))


def test_network_without_batchnorm_is_copied_silently():
    net = lrp.Sequential([lrp.Dense(np.eye(2)), lrp.ReLU()])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        merged = merge_batchnorm(net)
    assert merged is not net and merged.config() == net.config()
    assert not np.shares_memory(merged[0].weight, net[0].weight)


def test_canonize_is_reachable_from_the_package():
    assert lrp.canonize.merge_batchnorm is merge_batchnorm
