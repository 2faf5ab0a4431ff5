"""MaxPool2d padding (ResNet's stem) and AdaptiveAvgPool2d: by hand, and against torch."""

import numpy as np
import pytest

import lrp_ref as lrp


def test_maxpool_padding_never_wins():
    """All inputs -1, kernel 3, stride 2, padding 1: a zero padding would win every window;
    padding at -inf makes the maxima -1, and a window's relevance is shared between its
    real inputs only (4 real inputs in the corner window: 1/4 each)."""
    pool = lrp.MaxPool2d(3, 2, padding=1)
    x = -np.ones((1, 1, 4, 4))
    np.testing.assert_array_equal(pool.forward(x), -np.ones((1, 1, 2, 2)))
    R = np.zeros((1, 1, 2, 2))
    R[0, 0, 0, 0] = 1.0
    e = lrp.Sequential([pool]).explain(x, output_relevance=R, rule=lrp.Epsilon())
    expected = np.zeros((1, 1, 4, 4))
    expected[0, 0, :2, :2] = 0.25
    np.testing.assert_allclose(e.relevance, expected, rtol=1e-15)


def test_maxpool_padding_proportional_gives_padding_nothing():
    """Proportional mode, one window over a = [[1, 3]] padded by 1 column each side
    (kernel (1, 3), stride (1, 3)): shares 1/4 and 3/4, conserved."""
    pool = lrp.MaxPool2d((1, 3), (1, 3), mode="proportional", padding=(0, 1))
    x = np.array([[[[1.0, 3.0]]]])
    np.testing.assert_array_equal(pool.forward(x), [[[[3.0]]]])
    e = lrp.Sequential([pool]).explain(x, output_relevance=np.array([[[[2.0]]]]),
                                       rule=lrp.Epsilon())
    np.testing.assert_allclose(e.relevance, [[[[0.5, 1.5]]]], rtol=1e-15)


def test_maxpool_padding_is_limited_to_half_the_kernel():
    with pytest.raises(ValueError, match="at most half the kernel"):
        lrp.MaxPool2d(2, padding=2)


def test_adaptive_avgpool_is_the_mean_of_equal_windows():
    x = np.arange(2 * 4 * 6, dtype=float).reshape(1, 2, 4, 6)
    z = lrp.AdaptiveAvgPool2d((2, 3)).forward(x)
    expected = x.reshape(1, 2, 2, 2, 3, 2).mean(axis=(3, 5))
    np.testing.assert_allclose(z, expected, rtol=1e-15)


@pytest.mark.parametrize("rule", [lrp.Epsilon(0.1), lrp.AlphaBeta(2, 1), lrp.Flat(),
                                  lrp.ZPlus()], ids=lrp.rules.describe)
def test_adaptive_avgpool_explicit_equals_fast(rule):
    """float64 sums of 4 terms: 1e-13 relative covers rounding."""
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
    net = lrp.Sequential([lrp.AdaptiveAvgPool2d(2)])
    R = np.random.default_rng(1).standard_normal((2, 3, 2, 2))
    fast = net.explain(x, output_relevance=R, rule=rule).relevance
    explicit = net.explain(x, output_relevance=R, rule=rule, method="explicit").relevance
    np.testing.assert_allclose(fast, explicit, rtol=0, atol=1e-13 * np.abs(explicit).max())


def test_save_load_keeps_padding_and_output_size(tmp_path):
    net = lrp.Sequential([lrp.MaxPool2d(3, 2, padding=1), lrp.AdaptiveAvgPool2d(1)])
    lrp.save(net, tmp_path / "m.npz")
    back = lrp.load(tmp_path / "m.npz")
    x = np.random.default_rng(0).standard_normal((1, 2, 6, 6))
    np.testing.assert_array_equal(back.forward(x), net.forward(x))
    assert back[0].padding == (1, 1) and back[1].output_size == (1, 1)


try:
    from lrp_ref.interop import peers
    torch = peers.import_torch()
except ImportError:
    torch = None


@pytest.mark.skipif(torch is None, reason="torch (the oracle extra) not installed")
@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 1), (2, 2, 1), (3, 1, 1), (2, 1, 0)])
def test_maxpool_padding_forward_and_gradient_equal_torch(kernel, stride, padding):
    x = np.random.default_rng(kernel + padding).standard_normal((2, 3, 7, 6))
    pool = lrp.MaxPool2d(kernel, stride, padding=padding)
    t = torch.from_numpy(x).requires_grad_(True)
    z = torch.nn.functional.max_pool2d(t, kernel, stride, padding)
    g = np.random.default_rng(5).standard_normal(z.shape)
    z.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(pool.forward(x), z.detach().numpy())
    # overlapping windows add several gradients at one input, in another order than torch
    np.testing.assert_allclose(pool.backward(g), t.grad.numpy(), rtol=1e-15, atol=1e-15)


@pytest.mark.skipif(torch is None, reason="torch (the oracle extra) not installed")
def test_adaptive_avgpool_forward_equals_torch():
    """Averages of 6 terms in another order: 1e-15 relative."""
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 4))
    z = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(x), (3, 2)).numpy()
    np.testing.assert_allclose(lrp.AdaptiveAvgPool2d((3, 2)).forward(x), z, rtol=1e-15)
