"""The literal rule functions (lrp_ref.rules.equations): hand-computed values, and every
rule object's declarative parts evaluated literally give its equation function's result."""

from __future__ import annotations

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref.rules import equations

# One layer with two inputs and one output, by hand (docs/theory.md, section 4):
# a = (0.9, -0.5), w = (2.0, 1.0), b = 0.2:  z_1j = 0.9 * 2.0 = 1.8, z_2j = -0.5,
# z_j = 1.8 - 0.5 + 0.2 = 1.5, R_j = 3.
A = np.array([[[0.9, -0.5]]])          # (B, P, K) = (1, 1, 2)
W = np.array([[[2.0], [1.0]]])         # (P, K, J) = (1, 2, 1)
B = np.array([0.2])
R = np.array([[[3.0]]])


def test_zero_by_hand():
    """eq. (5): R_i = z_ij / z_j R_j = (1.8, -0.5) / 1.5 * 3 = (3.6, -1.0); bias 0.2/1.5*3."""
    R_i, terms = equations.zero(A, W, B, R)
    np.testing.assert_allclose(R_i, [[[3.6, -1.0]]], rtol=1e-15)
    np.testing.assert_allclose(terms.bias, [[[0.4]]], rtol=1e-15)
    np.testing.assert_array_equal(terms.dropped, [[[0.0]]])


def test_epsilon_by_hand():
    """eq. (6) with eps = 0.5: d_j = 1.5 + 0.5 = 2: R_i = (1.8, -0.5) / 2 * 3 = (2.7, -0.75);
    bias 0.2/2*3 = 0.3, stabilizer 0.5/2*3 = 0.75; 2.7 - 0.75 + 0.3 + 0.75 = 3."""
    R_i, terms = equations.epsilon(A, W, B, R, 0.5)
    np.testing.assert_allclose(R_i, [[[2.7, -0.75]]], rtol=1e-15)
    np.testing.assert_allclose(terms.bias, [[[0.3]]], rtol=1e-15)
    np.testing.assert_allclose(terms.stabilizer, [[[0.75]]], rtol=1e-15)


def test_epsilon_sign_of_zero_is_plus():
    """z_j = 0 takes +eps: d_j = eps, R_i = z_ij / eps R_j."""
    a, w = np.array([[[1.0, 1.0]]]), np.array([[[1.0], [-1.0]]])
    R_i, terms = equations.epsilon(a, w, np.zeros(1), R, 0.5)
    np.testing.assert_allclose(R_i, [[[6.0, -6.0]]], rtol=1e-15)
    np.testing.assert_allclose(terms.stabilizer, [[[3.0]]], rtol=1e-15)


def test_alpha_beta_by_hand():
    """eq. (7), alpha = 2, beta = 1: z+ = (1.8, 0) + b+ 0.2 -> z+_j = 2.0; z- = (0, -0.5) -> -0.5.
    R_1 = 2 * 1.8/2.0 * 3 = 5.4; R_2 = -1 * (-0.5)/(-0.5) * 3 = -3; bias 2 * 0.2/2 * 3 = 0.6."""
    R_i, terms = equations.alpha_beta(A, W, B, R, 2.0, 1.0)
    np.testing.assert_allclose(R_i, [[[5.4, -3.0]]], rtol=1e-15)
    np.testing.assert_allclose(terms.bias, [[[0.6]]], rtol=1e-15)
    np.testing.assert_array_equal(terms.dropped, [[[0.0]]])


def test_alpha_beta_books_a_missing_half_as_created_relevance():
    """Only positive contributions: alpha R_j goes down, -beta R_j is dropped (created)."""
    a = np.array([[[0.9, 0.5]]])
    R_i, terms = equations.alpha_beta(a, W, np.zeros(1), R, 2.0, 1.0)
    np.testing.assert_allclose(R_i.sum(), 6.0, rtol=1e-15)
    np.testing.assert_allclose(terms.dropped, [[[-3.0]]], rtol=1e-15)


def test_zero_denominator_passes_nothing():
    """z_j = 0 under LRP-0: no NaN, R_i = 0, R_j dropped."""
    a, w = np.array([[[1.0, 1.0]]]), np.array([[[1.0], [-1.0]]])
    R_i, terms = equations.zero(a, w, np.zeros(1), R)
    np.testing.assert_array_equal(R_i, [[[0.0, 0.0]]])
    np.testing.assert_array_equal(terms.dropped, [[[3.0]]])


def test_flat_counts_only_true_inputs():
    """flat: R_i = R_j / n_j with n_j the true inputs; an entry on padding (one = 0) gets none."""
    one = np.array([[[1.0, 1.0, 0.0]]])
    R_i, _ = equations.flat(one, np.ones((1, 3, 1)), R)
    np.testing.assert_allclose(R_i, [[[1.5, 1.5, 0.0]]], rtol=1e-15)


# One Dense layer with three outputs of the three kinds, for the generalised gamma (g = 0.5):
# a = (2, -1); w_.1 = (1, 3), b_1 = -0.5; w_.2 = (1, -1), b_2 = 0.5; w_.3 = (1, 2), b_3 = 0.
A3 = np.array([[[2.0, -1.0]]])
W3 = np.array([[[1.0, 1.0, 1.0], [3.0, -1.0, 2.0]]])
B3 = np.array([-0.5, 0.5, 0.0])
R3 = np.array([[[6.5, 2.1, 1.0]]])


def test_generalized_gamma_by_hand():
    """z_j = (2 - 3 - 0.5, 2 + 1 + 0.5, 2 - 2) = (-1.5, 3.5, 0).

    Output 1 (z_1 < 0) takes z_ij + g z-_ij = (2, -3 - 1.5) = (2, -4.5), bias b + g b- = -0.75:
    d_1 = -3.25, R_i<-1 = (2, -4.5) / -3.25 * 6.5 = (-4, 9), bias -0.75 / -3.25 * 6.5 = 1.5.
    Output 2 (z_2 > 0) takes z_ij + g z+_ij = (3, 1.5) (the negative input times the negative
    weight counts as positive), bias b + g b+ = 0.75: d_2 = 5.25, R_i<-2 = (1.2, 0.6), bias 0.3.
    Output 3 (z_3 = 0) passes nothing: R_3 = 1 is dropped. R_i = (-2.8, 9.6);
    -2.8 + 9.6 + 1.5 + 0.3 + 1 = 9.6 = sum R_j."""
    R_i, terms = equations.generalized_gamma(A3, W3, B3, R3, 0.5)
    np.testing.assert_allclose(R_i, [[[-2.8, 9.6]]], rtol=1e-15)
    np.testing.assert_allclose(terms.bias, [[[1.5, 0.3, 0.0]]], rtol=1e-15)
    np.testing.assert_array_equal(terms.dropped, [[[0.0, 0.0, 1.0]]])


def test_generalized_gamma_without_bias_keeps_the_sign_of_the_output():
    """bias=False: the halves are still chosen by z_j = (-1.5, 3.5, 0) (bias included, as
    Zennit's zero_params='bias'), the denominators lose b: d_1 = 2 - 4.5 = -2.5,
    R_i<-1 = (2, -4.5) / -2.5 * 6.5 = (-5.2, 11.7); d_2 = 4.5, R_i<-2 = (1.4, 0.7)."""
    R_i, terms = equations.generalized_gamma(A3, W3, B3, R3, 0.5, bias=False)
    np.testing.assert_allclose(R_i, [[[-3.8, 12.4]]], rtol=1e-15)
    np.testing.assert_array_equal(terms.bias, [[[0.0, 0.0, 0.0]]])
    np.testing.assert_array_equal(terms.dropped, [[[0.0, 0.0, 1.0]]])


def test_montavon_gamma_differs_at_the_negative_output():
    """Montavon's Gamma on output 1: w + g w+ = (1.5, 4.5), z'_ij = (3, -4.5), b + g b+ = -0.5,
    d = -2: R_i = (3, -4.5) / -2 * 6.5 = (-9.75, 14.625), where the generalised gamma gives
    (-4, 9): at a negative output it favours the contributions against the output's sign."""
    only_1 = R3 * np.array([1.0, 0.0, 0.0])
    R_i, _ = equations.gamma(A3, W3, B3, only_1, 0.5)
    np.testing.assert_allclose(R_i, [[[-9.75, 14.625]]], rtol=1e-15)
    R_i, _ = equations.generalized_gamma(A3, W3, B3, only_1, 0.5)
    np.testing.assert_allclose(R_i, [[[-4.0, 9.0]]], rtol=1e-15)


def test_generalized_gamma_rule_on_a_dense_layer_by_hand():
    """The rule object on the Dense layer of the example, both paths: the same numbers, and
    the ledger books bias 1.8 and dropped 1 (the output with z_j = 0)."""
    layer = lrp.Dense(W3[0], B3)
    for method in ("fast", "explicit"):
        e = lrp.Sequential([layer]).explain(A3[0], rule=lrp.GeneralizedGamma(0.5),
                                            output_relevance=R3[0], method=method)
        np.testing.assert_allclose(e.relevance, [[-2.8, 9.6]], rtol=1e-15)
        np.testing.assert_allclose(e.layer("0").absorbed_bias, [1.8], rtol=1e-15)
        np.testing.assert_allclose(e.layer("0").dropped, [1.0], rtol=1e-15)


# -- every rule object agrees with its equation function --------------------------------------


def parts_literally(rule: lrp.rules.LinearRule, a: np.ndarray, w: np.ndarray, b: np.ndarray,
                    R: np.ndarray) -> np.ndarray:
    """``R_i`` from the rule's declarative parts (lrp_ref.rules.parts), each read literally:
    z'_ij = sum_t sign_t input_t(a)_i weight_t(w)_ij, d_j = sum_i z'_ij + bias(b)_j
    + eps sign(...), R_i = sum_parts sum_j z'_ij / d_j coefficient mask_j R_j (0 where
    d_j = 0), mask_j = outputs(z_j) of the layer's output z_j = sum_i a_i w_ij + b_j."""
    total = np.zeros(a.shape)
    z_j = (a[..., None] * w).sum(axis=2) + b
    for part in rule.parts():
        z_ij = sum(t.sign * t.input(a)[..., None] * t.weight(w) for t in part.terms)
        d = z_ij.sum(axis=2) + (0 if part.bias is None else part.bias(b))
        d = d + part.epsilon * np.where(d >= 0, 1.0, -1.0) if part.epsilon else d
        share = np.divide(z_ij, d[:, :, None, :], out=np.zeros(z_ij.shape),
                          where=d[:, :, None, :] != 0)
        mask = 1.0 if part.outputs is None else part.outputs(z_j)
        total += (share * part.coefficient * (mask * R)[:, :, None, :]).sum(axis=3)
    return total


RULES = [lrp.Zero(), lrp.Zero(bias=False), lrp.Epsilon(0.3), lrp.Epsilon(1e-6, bias=False),
         lrp.AlphaBeta(2, 1), lrp.AlphaBeta(1, 0), lrp.AlphaBeta(3, 2, bias=False), lrp.ZPlus(),
         lrp.AlphaBeta.from_eq7(0.5, 0.5), lrp.AlphaBeta.from_eq7(0, 1, bias=False),
         lrp.Gamma(0.25), lrp.Gamma(1.0, bias=False), lrp.GeneralizedGamma(0.25),
         lrp.GeneralizedGamma(1.0, bias=False), lrp.ZBox(-1.0, 2.0), lrp.Flat(), lrp.WSquare()]


@pytest.mark.parametrize("rule", RULES, ids=lrp.rules.describe)
@pytest.mark.parametrize("seed", range(3))
def test_rule_object_and_equation_agree(rule, seed):
    """Dense-shaped (P = 1) and position-dependent weights (P = 3), inputs of both signs.

    float64, sums of at most 5 terms: the two evaluations differ by rounding only
    (a few ulp of the largest term), so 1e-12 relative to max |R_i| is ample.
    """
    rng = np.random.default_rng(seed)
    Bn, P, K, J = 2, 3, 5, 4
    a = rng.standard_normal((Bn, P, K))
    w = rng.standard_normal((P, K, J))
    b = rng.standard_normal(J)
    R_j = rng.standard_normal((Bn, P, J))
    expected = parts_literally(rule, a, w, b, R_j)
    R_i, _ = rule.equation(a, lambda x: x, w, np.broadcast_to(b, (Bn, P, J)), R_j)
    np.testing.assert_allclose(R_i, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
