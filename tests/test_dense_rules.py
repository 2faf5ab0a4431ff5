"""Rules (5)-(7) on Dense layers: the explicit and the fast path, conservation, ledger.

Tolerances (float64, unit roundoff u = 1.1e-16):

* explicit vs fast: both paths sum the same products in a different order, so
  they differ by a few u times the size of the terms, amplified by the
  conditioning of the denominators. The tests compare against that scale
  (``naive.rounding_scale``) with a factor 1e-12, about 1000x above the bound
  (n + 2) u for the n <= 6 inputs used here.
* conservation / ledger: every term is a sum of at most 30 products of
  O(1) numbers over a denominator; 1e-10 relative to the largest term leaves
  room for ill-conditioned denominators that random draws produce.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.audit import per_sample_sum

from naive import assert_explicit_equals_fast, layer_rounding_scale
from strategies import RULES, dense_cases


@pytest.mark.parametrize("rule", RULES, ids=lrp.rules.describe)
@given(case=dense_cases())
def test_explicit_equals_fast(rule, case):
    assert_explicit_equals_fast(*case, rule)


@pytest.mark.parametrize("rule", RULES, ids=lrp.rules.describe)
@pytest.mark.parametrize("method", ["fast", "explicit"])
@given(case=dense_cases())
def test_ledger_balances(rule, method, case):
    """sum R_out = sum R_in + absorbed_bias + absorbed_stabilizer + dropped (the ledger)."""
    layer, a, R = case
    net = lrp.Sequential([layer])
    e = net.explain(a, rule=rule, output_relevance=R, method=method)
    record = e.layer("0")
    assert np.all(np.isfinite(e.relevance))
    scale = layer_rounding_scale(layer, a, R, rule) + np.abs(R).sum(axis=1).max() + 1e-300
    np.testing.assert_allclose(record.imbalance(), 0, atol=1e-10 * scale)


@pytest.mark.parametrize("rule", [lrp.Zero(), lrp.AlphaBeta(1, 0), lrp.AlphaBeta(2, 1)],
                         ids=lrp.rules.describe)
@given(case=dense_cases(zeros=st.just(0.0)))
def test_conservation_without_bias(rule, case):
    """With b = 0 and no zero denominator, LRP-0 and alpha-beta conserve exactly."""
    layer, a, R = case
    layer.bias[:] = 0
    z_ij = a[:, :, None] * layer.weight
    assume(np.all((z_ij > 0).any(axis=1)) and np.all((z_ij < 0).any(axis=1)))
    layer.forward(a)
    R_in = layer.relevance(R, rule)
    np.testing.assert_allclose(per_sample_sum(R_in), per_sample_sum(R), rtol=0,
                               atol=1e-10 * layer_rounding_scale(layer, a, R, rule))


@given(case=dense_cases(zeros=st.just(0.0)))
def test_epsilon_tends_to_lrp0(case):
    """R_eps - R_0 = O(eps): each share z_ij/(z_j + eps s_j) moves by eps/z_j^2 at most."""
    layer, a, R = case
    layer.forward(a)
    R0 = layer.relevance(R, lrp.Zero())
    errors = [np.abs(layer.relevance(R, lrp.Epsilon(eps)) - R0).max() for eps in (1e-4, 1e-6, 1e-8)]
    assert errors[2] <= errors[1] <= errors[0] or errors[0] < 1e-12
    z = np.abs(a @ layer.weight + layer.bias).min()
    bound = 1e-8 * np.abs(a[:, :, None] * layer.weight).sum() * np.abs(R).max() / z**2
    assert errors[2] <= 2 * bound + 1e-12


@given(case=dense_cases())
def test_alpha1_beta0_is_nonnegative(case):
    """For a >= 0 and R >= 0 every share a_i w+_ij / z+_j R_j is >= 0."""
    layer, a, R = case
    layer.forward(np.abs(a))
    assert np.all(layer.relevance(np.abs(R), lrp.AlphaBeta(1, 0)) >= 0)


@given(case=dense_cases(), alpha=st.floats(1.0, 4.0))
def test_eq7_form_maps_to_standard_form(case, alpha):
    """Eq. (7) of docs/theory.md, alpha' + beta' = 1 with beta' <= 0, gives the bits of
    AlphaBeta(alpha', -beta') (same parts, same arithmetic)."""
    layer, a, R = case
    seed_form = lrp.AlphaBeta.from_eq7(alpha, 1 - alpha)
    layer.forward(a)
    np.testing.assert_array_equal(layer.relevance(R, seed_form),
                                  layer.relevance(R, lrp.AlphaBeta(alpha, alpha - 1)))


def test_alpha_beta_zero_denominator_is_dropped():
    """All contributions positive: alpha R_j goes down, -beta R_j is booked as dropped."""
    layer = lrp.Dense([[1.0], [2.0]], [0.0])
    net = lrp.Sequential([layer])
    e = net.explain([[1.0, 1.0]], rule=lrp.AlphaBeta(2, 1))
    # z+_ij = (1, 2), z+_j = 3, R_j = 3: R_i = 2 * 3 * (1/3, 2/3) = (2, 4)
    np.testing.assert_allclose(e.relevance, [[2.0, 4.0]], rtol=1e-15)
    np.testing.assert_allclose(e.layer("0").dropped, [-3.0], rtol=1e-15)


def test_lrp0_zero_denominator_is_dropped_not_nan():
    layer = lrp.Dense([[1.0], [-1.0]], [0.0])
    net = lrp.Sequential([layer])
    e = net.explain([[2.0, 2.0]], rule=lrp.Zero(), output_relevance=[[1.5]])
    np.testing.assert_array_equal(e.relevance, [[0.0, 0.0]])
    np.testing.assert_array_equal(e.layer("0").dropped, [1.5])
