"""The grader's hints are true: wrong student implementations, each with the hint it must get.

Every student below is written from the equations (docs/theory.md eqs. (5)-(7)),
independently of lrp_ref, with one deliberate bug. A hint may name a ledger term
(absorbed_bias, absorbed_stabilizer, dropped) only when the evidence separates
it: outputs with the property differ and outputs without it pass. Where the
bug is not one of those, the hint must not blame one (the three students of
issue 21 got "only outputs with a bias b_j != 0 differ" in cases where every
output had a bias).
"""

from __future__ import annotations

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref.testing import grade

LEDGER_BLAME = ("absorbed_bias", "absorbed_stabilizer", "dropped")


# -- students written from the equations, with a switch for each bug --------------------------


def dense_eps(a, w, b, R, epsilon=0.1, sign="correct", bias=True, numerator="a w",
              batch="separate"):
    """LRP-epsilon (eq. (6)) for a Dense layer."""
    z = a @ w + (b if bias else 0.0)
    if sign == "correct":
        s = np.where(z >= 0, 1.0, -1.0)
    elif sign == "none":
        s = np.ones_like(z)
    else:                                  # sign(0) := -1
        s = np.where(z > 0, 1.0, -1.0)
    q = R / (z + epsilon * s)
    if batch == "mixed":
        q = np.broadcast_to(q.sum(axis=0, keepdims=True), q.shape)
    c = q @ w.T
    return a * c if numerator == "a w" else c


def dense_alpha_beta(a, w, b, R, alpha=2.0, beta=1.0, combine="subtract"):
    """LRP-alpha-beta (eq. (7), lrp_ref's convention alpha - beta = 1)."""
    z_ij = a[:, :, None] * w[None]
    parts = []
    for z_part, b_part in ((np.maximum(z_ij, 0), np.maximum(b, 0)),
                           (np.minimum(z_ij, 0), np.minimum(b, 0))):
        d = z_part.sum(axis=1) + b_part
        s = np.divide(R, d, out=np.zeros_like(R), where=d != 0)
        parts.append((z_part * s[:, None, :]).sum(axis=2))
    positive, negative = parts
    if combine == "swap":
        return beta * positive - alpha * negative
    if combine == "add":
        return alpha * positive + beta * negative
    return alpha * positive - beta * negative


def dense_lrp0_nan(a, w, b, R):
    """LRP-0 (eq. (5)) without a guard for z_j = 0."""
    return a * ((R / (a @ w + b)) @ w.T)


def conv_eps(a, w, b, R, stride, padding, epsilon=0.1, use_stride=True, crop=None, bias=True):
    """LRP-epsilon for Conv2d: per output position, the transposed convolution of the
    shares into the padded input, then cropped back to the input."""
    B, C, H, W = a.shape
    _, _, kh, kw = w.shape
    step = stride if use_stride else 1
    a_pad = np.pad(a, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    R_pad = np.zeros_like(a_pad)
    for p in range(R.shape[2]):
        for q in range(R.shape[3]):
            rows, cols = slice(p * step, p * step + kh), slice(q * step, q * step + kw)
            z_ij = a_pad[:, None, :, rows, cols] * w[None]       # (B, C_out, C, kh, kw)
            z = z_ij.sum(axis=(2, 3, 4)) + (b if bias else 0.0)
            s = R[:, :, p, q] / (z + epsilon * np.where(z >= 0, 1.0, -1.0))
            R_pad[:, :, rows, cols] += (z_ij * s[:, :, None, None, None]).sum(axis=1)
    top = padding if crop is None else crop
    return R_pad[:, :, top:top + H, top:top + W]


# -- the students and the hints they must get ------------------------------------------------------

STUDENTS = {
    "epsilon without the sign of z_j": (
        lambda a, w, b, R: dense_eps(a, w, b, R, sign="none"), "dense", lrp.Epsilon(0.1),
        ("z_j < 0", "absorbed_stabilizer")),
    "epsilon ignoring the bias": (
        lambda a, w, b, R: dense_eps(a, w, b, R, bias=False), "dense", lrp.Epsilon(0.1),
        ("b_j != 0", "absorbed_bias", "b_j = 0 pass")),
    "epsilon with sign(0) := -1": (
        lambda a, w, b, R: dense_eps(a, w, b, R, sign="zero negative"), "dense",
        lrp.Epsilon(0.1), ("z_j = 0", "sign(0) := +1")),
    "epsilon mixing the samples of a batch": (
        lambda a, w, b, R: dense_eps(a, w, b, R, batch="mixed"), "dense", lrp.Epsilon(0.1),
        ("batch axis",)),
    "epsilon forgetting a_i in the numerator": (
        lambda a, w, b, R: dense_eps(a, w, b, R, numerator="w"), "dense", lrp.Epsilon(0.1),
        ()),
    "alpha and beta swapped": (
        lambda a, w, b, R: dense_alpha_beta(a, w, b, R, combine="swap"), "dense",
        lrp.AlphaBeta(2, 1), ("alpha and beta are swapped",)),
    "alpha-beta adding the beta half (issue 21)": (
        lambda a, w, b, R: dense_alpha_beta(a, w, b, R, combine="add"), "dense",
        lrp.AlphaBeta(2, 1), ("adds the beta half", "alpha - beta = 1", "from_eq7")),
    "LRP-0 dividing by z_j = 0": (
        dense_lrp0_nan, "dense", lrp.Zero(), ("zero denominator", "dropped")),
    "conv: transposed convolution cropped at offset 0 (issue 21)": (
        lambda a, w, b, R, stride, padding: conv_eps(a, w, b, R, stride, padding, crop=0),
        "conv", lrp.Epsilon(0.1), ("cropped", "padding")),
    "conv: stride ignored (issue 21)": (
        lambda a, w, b, R, stride, padding: conv_eps(a, w, b, R, stride, padding,
                                                     use_stride=False),
        "conv", lrp.Epsilon(0.1), ("stride > 1", "stride 1 pass")),
    "conv: bias ignored (every output of the first failing case has one)": (
        lambda a, w, b, R, stride, padding: conv_eps(a, w, b, R, stride, padding, bias=False),
        "conv", lrp.Epsilon(0.1), ("b_j != 0", "absorbed_bias", "b_j = 0 pass")),
    "epsilon with two bugs (no sign, no bias)": (
        lambda a, w, b, R: dense_eps(a, w, b, R, sign="none", bias=False), "dense",
        lrp.Epsilon(0.1), ()),
}

#: What a hint says when it names a property, and what must not then appear.
BLAMES = {
    "absorbed_bias": "b_j != 0",
    "absorbed_stabilizer": "z_j < 0",
}


@pytest.mark.parametrize("name", list(STUDENTS))
def test_each_wrong_student_gets_the_right_hint_or_none(name):
    student, layer, rule, must = STUDENTS[name]
    report = grade(student, layer, rule=rule, n_cases=16)
    assert not report.ok, f"{name}: the bug went unnoticed"
    hint = report.hint
    for part in must:
        assert part in hint, f"{name}: {part!r} missing from the hint {hint!r}"
    if not must:  # no single cause: the hint must blame no ledger term
        assert not any(term in hint for term in LEDGER_BLAME), hint
        assert "only outputs with" not in hint, hint
    # a ledger term is named only together with the property that separates it
    for term, prop in BLAMES.items():
        if term in hint:
            assert prop in hint, hint


@pytest.mark.parametrize("name", [n for n in STUDENTS if "issue 21" in n])
def test_issue_21_students_are_not_told_about_the_bias(name):
    student, layer, rule, _ = STUDENTS[name]
    hint = grade(student, layer, rule=rule, n_cases=16).hint
    assert "absorbed_bias" not in hint and "b_j != 0" not in hint, hint


def test_the_correct_students_pass():
    """The switches off, each student is the rule (so the bugs above are the only ones)."""
    assert grade(dense_eps, "dense", rule=lrp.Epsilon(0.1), n_cases=16).ok
    assert grade(dense_alpha_beta, "dense", rule=lrp.AlphaBeta(2, 1), n_cases=16).ok
    assert grade(conv_eps, "conv", rule=lrp.Epsilon(0.1), n_cases=16).ok


def test_the_crop_hint_names_the_offset_used():
    def student(a, w, b, R, stride, padding):
        return conv_eps(a, w, b, R, stride, padding, crop=0)

    report = grade(student, "conv", rule=lrp.Epsilon(0.1), n_cases=16)
    p = report.counterexample.case.padding
    assert p > 0
    assert f"rows and columns from 0 instead of from {p}" in report.hint, report.hint


def test_nan_not_from_a_zero_denominator_is_not_blamed_on_one():
    """NaN from sqrt of a negative input: the probes with NaN include cases without a zero
    denominator, so the hint must not send the student to 'dropped'."""
    def student(a, w, b, R):
        with np.errstate(invalid="ignore"):
            return dense_eps(a, w, b, R) * np.where(a < 0, np.sqrt(a), 1.0)

    report = grade(student, "dense", rule=lrp.Epsilon(0.1), n_cases=16)
    assert "NaN or inf" in report.counterexample.problem
    assert "dropped" not in report.hint and "NaN or inf" in report.hint, report.hint
