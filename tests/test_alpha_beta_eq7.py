"""Eq. (7) of docs/theory.md as written: the whole family alpha' + beta' = 1.

    R_i = sum_j ( alpha' z+_ij / z+_j  +  beta' z-_ij / z-_j ) R_j,   alpha' + beta' = 1

``AlphaBeta.from_eq7(alpha', beta')`` builds it for every alpha' (also alpha' < 1,
which looks at counter-evidence: from_eq7(0, 1) shares R_j among the negative
contributions only). ``AlphaBeta(alpha, beta)`` keeps the convention alpha - beta = 1,
beta >= 0. The reference here is a loop over i and j, written from the equation.
"""

from __future__ import annotations

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref.rules import equations

FAMILY = [0.0, 0.25, 0.5, 1.0, 2.0]          # alpha'; beta' = 1 - alpha'


def eq7_by_loops(a, W, b, R, alpha, beta):
    """Eq. (7) for a Dense layer, one connection at a time.

    z+_ij = max(0, a_i w_ij), z+_j = sum_i z+_ij + max(0, b_j) (likewise z- with min);
    a half whose denominator is 0 passes nothing. Returns R_i and the ledger terms
    (bias share, dropped) summed per sample.
    """
    B, K = a.shape
    J = W.shape[1]
    R_i = np.zeros((B, K))
    bias = np.zeros(B)
    dropped = np.zeros(B)
    for n in range(B):
        for j in range(J):
            z = [a[n, i] * W[i, j] for i in range(K)]
            halves = [(alpha, [max(0.0, v) for v in z], max(0.0, b[j])),
                      (beta, [min(0.0, v) for v in z], min(0.0, b[j]))]
            for weight, z_half, b_half in halves:
                d = sum(z_half) + b_half
                if d == 0:
                    dropped[n] += weight * R[n, j]
                    continue
                for i in range(K):
                    R_i[n, i] += weight * z_half[i] / d * R[n, j]
                bias[n] += weight * b_half / d * R[n, j]
    return R_i, bias, dropped


def layer_case(seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((3, 5))
    W = rng.standard_normal((5, 4))
    b = rng.standard_normal(4)
    a[0, :] = np.abs(a[0, :])              # sample 0, output 0: contributions of one sign
    W[:, 0] = np.abs(W[:, 0])              # (z-_j = min(0, b_0) only: 0 when b_0 >= 0)
    b[0] = 0.5
    R = rng.standard_normal((3, 4))
    return a, W, b, R


@pytest.mark.parametrize("method", ["fast", "explicit"])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("alpha", FAMILY)
def test_family_matches_the_equation_by_loops(alpha, seed, method):
    """float64, sums of <= 5 terms per half: rounding only, 1e-12 of max|R_i| is ample."""
    beta = 1.0 - alpha
    a, W, b, R = layer_case(seed)
    expected, bias, dropped = eq7_by_loops(a, W, b, R, alpha, beta)
    layer = lrp.Dense(W, b)
    layer.forward(a)
    got = layer.relevance(R, lrp.AlphaBeta.from_eq7(alpha, beta), method=method)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    # the ledger: sum R_out = sum R_in + absorbed_bias + dropped, each from the rule
    e = lrp.Sequential([layer]).explain(a, rule=lrp.AlphaBeta.from_eq7(alpha, beta),
                                        output_relevance=R, method=method)
    record = e.layers[0]
    np.testing.assert_allclose(record.absorbed_bias, bias, rtol=0, atol=1e-12)
    np.testing.assert_allclose(record.dropped, dropped, rtol=0, atol=1e-12)
    np.testing.assert_allclose(R.sum(axis=1), got.sum(axis=1) + bias + dropped, rtol=0,
                               atol=1e-12)


def test_the_one_sign_neuron_books_the_missing_half():
    """Sample 0, output 0 of layer_case has no negative contribution and b_0 > 0:
    from_eq7(0.5, 0.5) passes 0.5 R_0 down and books the other 0.5 R_0 as dropped."""
    a, W, b, R = layer_case(0)
    _, _, dropped = eq7_by_loops(a[:1], W[:, :1], b[:1], R[:1, :1], 0.5, 0.5)
    assert dropped[0] == 0.5 * R[0, 0]
    e = lrp.Sequential([lrp.Dense(W[:, :1], b[:1])]).explain(
        a[:1], rule=lrp.AlphaBeta.from_eq7(0.5, 0.5), output_relevance=R[:1, :1])
    np.testing.assert_allclose(e.layers[0].dropped, [0.5 * R[0, 0]], rtol=1e-15)


def test_counter_evidence_only():
    """from_eq7(0, 1) on W = (1, -1), b = 0, x = (1, 2): z = (1, -2), z- = (0, -2),
    z-_j = -2: all of R_j = 3 goes to input 2 (3 * -2 / -2), none to input 1."""
    layer = lrp.Dense([[1.0], [-1.0]], [0.0])
    layer.forward([[1.0, 2.0]])
    got = layer.relevance([[3.0]], lrp.AlphaBeta.from_eq7(0, 1))
    np.testing.assert_array_equal(got, [[0.0, 3.0]])


def test_rule_object_reads_like_eq7():
    rule = lrp.AlphaBeta.from_eq7(0.5, 0.5)
    assert isinstance(rule, lrp.AlphaBetaEq7)
    assert (rule.alpha, rule.beta, rule.bias) == (0.5, 0.5, True)
    assert rule == lrp.AlphaBetaEq7(0.5, 0.5)
    assert [p.coefficient for p in rule.parts()] == [0.5, 0.5]   # alpha' and beta', added
    assert [p.coefficient for p in lrp.AlphaBeta.from_eq7(1, 0).parts()] == [1.0]


def test_equation_function_by_hand():
    """equations.alpha_beta_eq7 on docs/theory.md's layer (a = (0.9, -0.5), w = (2, 1),
    b = 0.2, R_j = 3) with alpha' = beta' = 0.5: z+_j = 1.8 + 0.2 = 2, z-_j = -0.5;
    R = (0.5 * 1.8/2 * 3, 0.5 * -0.5/-0.5 * 3) = (1.35, 1.5); bias 0.5 * 0.2/2 * 3 = 0.15."""
    a, w = np.array([[[0.9, -0.5]]]), np.array([[[2.0], [1.0]]])
    R_i, terms = equations.alpha_beta_eq7(a, w, np.array([0.2]), np.array([[[3.0]]]),
                                          0.5, 0.5)
    np.testing.assert_allclose(R_i, [[[1.35, 1.5]]], rtol=1e-15)
    np.testing.assert_allclose(terms.bias, [[[0.15]]], rtol=1e-15)
    np.testing.assert_array_equal(terms.dropped, [[[0.0]]])


@pytest.mark.parametrize("make, message", [
    (lambda: lrp.AlphaBeta.from_eq7(0.5, 0.4), r"alpha' \+ beta' = 1.*got 0.9"),
    (lambda: lrp.AlphaBetaEq7(2, 1), r"alpha' \+ beta' = 1"),
    (lambda: lrp.AlphaBeta(2, 0), r"does not conserve relevance.*alpha - beta = 1"),
])
def test_non_conserving_parameters_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_negative_beta_message_points_to_eq7_and_says_it_conserves():
    """AlphaBeta(0.5, -0.5) conserves relevance; it is only outside AlphaBeta's convention.
    The message says so and names the eq. (7) call that builds it."""
    with pytest.raises(ValueError) as error:
        lrp.AlphaBeta(0.5, -0.5)
    text = str(error.value)
    assert "does not conserve" not in text
    assert "beta >= 0" in text and "AlphaBeta.from_eq7(0.5, 0.5)" in text
