"""No inf or NaN out of any path (issue 22, point 1).

The fast path's step 2 forms ``s_j = R_j / d_j`` before multiplying by ``z_ij``; with a
tiny (not zero) ``d_j`` that quotient overflows where the explicit path's ratio
``z_ij / d_j`` is fine. Each case is a reproducer from the issue; the expected values
are derived by hand from the equations of docs/theory.md."""

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref import models


def both(net, x, rule, **kwargs):
    """The explanation by the fast and by the explicit path."""
    return (net.explain(x, rule=rule, **kwargs),
            net.explain(x, rule=rule, method="explicit", **kwargs))


def ledger_balances(e):
    for record in e.layers:
        total = record.relevance_out.sum() - record.relevance_in.sum() - record.ledger.total()
        # float rounding of a few sums of numbers of order 1
        assert abs(total.sum()) <= 1e-12 * max(1.0, np.abs(record.relevance_out).sum())


def test_alpha_beta_with_a_subnormal_negative_denominator():
    # z+_ij = (1, 0), z+_j = 1; z-_ij = (0, -1e-320), z-_j = -1e-320 (subnormal):
    # R_i = 2 * z+_ij / z+_j * R_j - 1 * z-_ij / z-_j * R_j = (2, -1) * R_j with R_j = z_j = 1
    # (with 2^-530 for 1e-160 every product is exact: 2^-1060 is a subnormal float64)
    net = lrp.Sequential([lrp.Dense([[1.0], [-2.0**-530]])])
    for e in both(net, [[1.0, 2.0**-530]], lrp.AlphaBeta(2, 1)):
        np.testing.assert_array_equal(e.relevance, [[2.0, -1.0]])
        ledger_balances(e)


def test_alpha_beta_reproducer_of_the_issue():
    # the issue's numbers: 1e-160 * 1e-160 rounds to a subnormal with about 11 significant
    # bits, and the two paths round it differently (explicit: z_ij = z_j, the ratio is 1;
    # fast: the exact product a_i w_ij over the rounded z_j), so they agree to ~2^-11
    net = lrp.Sequential([lrp.Dense([[1.0], [-1e-160]])])
    fast, explicit = both(net, [[1.0, 1e-160]], lrp.AlphaBeta(2, 1))
    np.testing.assert_array_equal(explicit.relevance, [[2.0, -1.0]])
    np.testing.assert_allclose(fast.relevance, [[2.0, -1.0]], rtol=2.0**-11)
    assert all(np.all(np.isfinite(r.ledger.total())) for r in fast.layers)


@pytest.mark.parametrize("dtype, epsilon", [(np.float64, 1e-310), (np.float32, 1e-40)])
def test_a_subnormal_epsilon_at_z_zero(dtype, epsilon):
    # a = 0: z_ij = 0 and z_j = 0, d_j = eps (subnormal); R_i = 0 / eps * R_j = 0 and the
    # stabilizer absorbs eps / eps * R_j = R_j = 1
    net = lrp.Sequential([lrp.Dense([[1.0], [2.0]])]).astype(dtype)
    for e in both(net, np.zeros((1, 2), dtype), lrp.Epsilon(epsilon),
                  output_relevance=np.ones((1, 1), dtype)):
        np.testing.assert_array_equal(e.relevance, [[0.0, 0.0]])
        assert e.layers[0].ledger.absorbed_stabilizer[0] == 1.0


def test_residual_with_a_subnormal_epsilon():
    # x = 0: z_body = z_short = 0, so both branches get 0 / eps * R = 0; the stabilizer keeps R
    net = lrp.Sequential([lrp.Residual(lrp.Dense(np.eye(2)), epsilon=1e-310)])
    for e in both(net, np.zeros((1, 2)), lrp.Epsilon(), output_relevance=np.ones((1, 2))):
        np.testing.assert_array_equal(e.relevance, [[0.0, 0.0]])
        assert e.layer("0").ledger.absorbed_stabilizer[0] == 2.0


def test_zero_rule_with_a_subnormal_denominator_gives_the_explicit_ratios():
    # a = (2^-1060, 2^-1060), w = (1, -0.5): z_ij = (2^-1060, -2^-1061), z_j = 2^-1061
    # (subnormal, exact); R_i = z_ij / z_j * R_j = (2, -1) * 3, while R_j / z_j overflows
    net = lrp.Sequential([lrp.Dense([[1.0], [-0.5]])])
    for e in both(net, np.full((1, 2), 2.0**-1060), lrp.Zero(), output_relevance=[[3.0]]):
        np.testing.assert_array_equal(e.relevance, [[6.0, -3.0]])
        ledger_balances(e)


@pytest.mark.parametrize("rule", [lrp.AlphaBeta(2, 1), lrp.Zero(), lrp.Gamma(), lrp.Epsilon()])
def test_float16_shapes_cnn_stays_finite_and_matches_explicit(rule):
    net = models.load("shapes_cnn").astype(np.float16)
    x, _ = models.data("shapes_cnn", "test")
    fast, explicit = both(net, x[45:46].astype(np.float16), rule)
    assert np.all(np.isfinite(fast.relevance))
    scale = np.abs(explicit.relevance).sum()
    # float16 has a unit roundoff of 2^-11 ~ 5e-4; both paths round differently through
    # several layers, so agreement to a few percent of the total |R| is what float16 allows
    assert np.abs(fast.relevance - explicit.relevance).sum() <= 0.05 * scale


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow under test
def test_forward_overflow_names_the_layer_that_overflowed():
    net = lrp.Sequential([lrp.Dense([[1e308], [1e308]])])
    with pytest.raises(ValueError, match=r"layer '0' \(Dense\): the output overflowed"):
        net.explain([[1.0, 1.0]], target=0, rule=lrp.Epsilon())
    hidden = lrp.Sequential([lrp.Dense([[1e308], [1e308]]), lrp.ReLU(), lrp.Dense([[1.0]])])
    with pytest.raises(ValueError, match=r"layer '0' \(Dense\): the output overflowed"):
        hidden.forward([[1.0, 1.0]])
    f32 = lrp.Sequential([lrp.Dense([[3e38], [3e38]])]).astype(np.float32)
    with pytest.raises(ValueError, match="overflowed.*float32"):
        f32.forward([[1.0, 1.0]])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow under test
def test_relevance_that_is_not_representable_is_an_error_naming_the_layer():
    # z_ij = (1, -(1 - 2^-52)), z_j = 2^-52: R_i = z_ij / z_j * R_j ~ 2^52 * 1e300 overflows
    net = lrp.Sequential([lrp.Identity(), lrp.Dense([[1.0], [-(1 - 2.0**-52)]])])
    for method in ("fast", "explicit"):
        with pytest.raises(ValueError, match=r"layer '1' \(Dense\): the relevance overflowed"):
            net.explain([[1.0, 1.0]], rule=lrp.Zero(), output_relevance=[[1e300]],
                        method=method)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow under test
@pytest.mark.parametrize("rule", [lrp.Gamma(1e308), lrp.ZBox(-1.7e308, 1.7e308)])
@pytest.mark.parametrize("method", ["fast", "explicit"])
def test_rule_parameters_that_overflow_are_an_error_naming_the_layer(rule, method):
    # w + 1e308 w+ and -l w+ - h w- overflow for these weights: no share is representable
    net = lrp.Sequential([lrp.Dense([[2.0, -1.0], [1.0, 3.0]], [0.5, -0.5])])
    with pytest.raises(ValueError, match=r"layer '0' \(Dense\): the relevance overflowed"):
        net.explain([[1.0, 2.0]], target=0, rule=rule, method=method)


@pytest.mark.parametrize("method", ["fast", "explicit"])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow under test
def test_an_output_relevance_of_1e308_under_alpha_beta(method):
    # alpha R_j = 2e308 is beyond float64 and so is R_0 = 2 * 2 / 2 * 1e308 (z+_ij = (2, 0))
    net = lrp.Sequential([lrp.Dense([[2.0], [-1.0]])])
    with pytest.raises(ValueError, match=r"layer '0' \(Dense\): the relevance overflowed"):
        net.explain([[1.0, 1.0]], rule=lrp.AlphaBeta(2, 1), output_relevance=[[1e308]],
                    method=method)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow under test
def test_an_overflowing_skip_share_names_the_residual():
    # z_body = -0.5 x, z_short = x, z = 0.5 x: the skip gets x / z * R = 2 * 1e308 (beyond
    # float64) while the body's -1e308 is fine; only the block's sum at x overflows
    net = lrp.Sequential([lrp.Residual(lrp.Dense([[-0.5]]), epsilon=0.0)])
    with pytest.raises(ValueError, match=r"layer '0' \(Residual\): the relevance overflowed"):
        net.explain([[1.0]], rule=lrp.Zero(), output_relevance=[[1e308]])


@pytest.mark.parametrize("method", ["fast", "explicit"])
def test_a_term_that_overflows_inside_the_literal_equation_is_refused(method):
    """Found by the fuzz test (float16, Gamma without bias): a_i (w_ij + g w+_ij) is beyond
    float16 (39550 * 1.25 * 1.627 > 65504) while the layer's output a w is not. The fast path
    refused it; the explicit path formed z_ij = inf, whose ratio inf / inf is NaN, and lost
    five sixths of the relevance without booking it. Both must refuse, naming the layer."""
    w = np.array([[1.627, 0.5938, 0.2463], [0.1393, -0.06256, 1.216],
                  [0.2864, -1.606, -0.4937]], dtype=np.float16)
    net = lrp.Sequential([lrp.Dense(w, np.zeros(3, np.float16))])
    a = np.array([[-4788.0, 39550.0, -18110.0]], dtype=np.float16)
    R = np.array([[0.0, 439.0, -26130.0]], dtype=np.float16)
    with pytest.raises(ValueError, match=r"layer '0' \(Dense\).*overflowed.*float16"), \
            np.errstate(over="ignore"):                # the overflow is what is under test
        net.explain(a, output_relevance=R, rule=lrp.Gamma(0.25, bias=False), method=method)
