"""The engine's shortcuts (lrp_ref/engine/kernels.py) against the plain definitions.

Each shortcut skips work only where the result is known without it; these tests pin
that it is taken where it should be and that the numbers are those of the literal
equations (lrp_ref/rules/equations.py, the explicit path) and of naive loops, in float64:

* a pointwise convolution (1x1 kernel, no padding: ResNet's 1x1 convolutions) is one
  GEMM on the input itself and its transposed convolution one GEMM (no im2col, no fold);
* the sign modifiers of alpha-beta and z+ on an input ``a >= 0`` (after a ReLU): ``a+``
  is ``a`` itself and ``a-`` is dropped before its weight or products are formed;
* step 2's stabilizer from the sign bits of a ``d`` without ``-0.0``, the check of the
  usual case by two dot products, and the bias ledger as a product with ones.

Tolerances (float64, u = 1.1e-16), as in tests/test_conv.py and tests/test_conv_options.py:
forward and gradients against the naive loops 1e-12 relative to the sum of the terms'
magnitudes (sums of at most 6 products in another order); explicit vs fast 1e-12 times
``naive.rounding_scale``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.engine import kernels
from lrp_ref.engine.patches import Window
from lrp_ref.rules import parts

import naive
from naive import assert_explicit_equals_fast, example_rules
from strategies import sparse_normal

RULES = example_rules()
#: the rules whose parts read the input through the sign modifiers a+ and a-
SIGNED = [rule for rule in RULES
          if any(t.input in (parts.positive, parts.negative)
                 for part in rule.parts() for t in part.terms)]


def rule_id(rule) -> str:
    return lrp.rules.describe(rule)


# -- pointwise convolutions ----------------------------------------------------------------


@st.composite
def pointwise_cases(draw):
    """``(layer, a, R)``: a 1x1 Conv2d, Conv1d or ConvTranspose2d without padding, with
    random stride (sizes that the stride does not divide too), groups and batch."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    p = draw(naive.SOME_ZEROS)
    kind = draw(st.sampled_from(["conv2d", "conv1d", "transposed"]))
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    size = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    b = sparse_normal(rng, (c_out,), p)
    if kind == "transposed":
        output_padding = tuple(draw(st.integers(0, s - 1)) for s in stride)
        layer = lrp.ConvTranspose2d(sparse_normal(rng, (c_in, c_out // groups, 1, 1), p), b,
                                    stride=stride, output_padding=output_padding,
                                    groups=groups)
    elif kind == "conv1d":
        layer = lrp.Conv1d(sparse_normal(rng, (c_out, c_in // groups, 1), p), b,
                           stride=stride[1], groups=groups)
        size = size[1:]
    else:
        layer = lrp.Conv2d(sparse_normal(rng, (c_out, c_in // groups, 1, 1), p), b,
                           stride=stride, groups=groups)
    a = sparse_normal(rng, (draw(st.integers(1, 2)), c_in, *size), p)
    R = sparse_normal(rng, layer.forward(a).shape, p)
    return layer, a, R


@pytest.fixture
def no_windows(monkeypatch):
    """Building any im2col matrix or folding any window fails: the pointwise path builds
    neither."""
    def refuse(*args, **kwargs):
        raise AssertionError("a pointwise convolution built or folded windows")
    for name in ("columns", "add_windows", "fold"):
        monkeypatch.setattr(Window, name, refuse)


@given(case=pointwise_cases())
def test_pointwise_forward_and_gradients_match_naive_loops(case):
    layer, a, g = case
    z = layer.forward(a)
    expected = naive.conv_options_forward(layer, a)
    magnitude = np.abs(a).max() * np.abs(layer.weight).sum() + np.abs(layer.bias).max() + 1e-300
    np.testing.assert_allclose(z, expected, rtol=0, atol=1e-12 * magnitude)
    grad_a_naive, _, _ = naive.conv_options_gradients(layer, a, g)
    scale = np.abs(g).sum() * (np.abs(a).max() + np.abs(layer.weight).max()) + 1e-300
    np.testing.assert_allclose(layer.backward(g), grad_a_naive, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("rule", RULES, ids=rule_id)
@given(case=pointwise_cases())
def test_pointwise_explicit_equals_fast(rule, case):
    assert_explicit_equals_fast(*case, rule)


@pytest.mark.parametrize("stride", [1, 2])
def test_pointwise_convolutions_build_no_windows(no_windows, stride):
    """The GEMM reads the input itself (every stride-th position); the transposed one
    writes ``W^T s`` at those positions and 0 between them."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 2, 1, 1))
    a = rng.normal(size=(1, 2, 5, 5))
    layer = lrp.Conv2d(w, stride=stride)
    z = layer.forward(a)
    np.testing.assert_allclose(z, np.einsum("oc,bcyx->boyx", w[:, :, 0, 0],
                                            a[:, :, ::stride, ::stride]), rtol=1e-14)
    s = rng.normal(size=z.shape)
    c = np.zeros_like(a)
    c[:, :, ::stride, ::stride] = np.einsum("oc,boyx->bcyx", w[:, :, 0, 0], s)
    np.testing.assert_allclose(layer.backward(s), c, rtol=1e-14)
    layer.relevance(s, lrp.AlphaBeta(2, 1))


def test_pointwise_transposed_convolution_by_hand():
    """One input channel, weights (2, 3) to two outputs, stride 2 on a 3-wide input:
    ``c = (2 s_0 + 3 s_1)`` at positions 0 and 2, 0 at position 1."""
    s = np.array([[[[1.0, 10.0]], [[2.0, 20.0]]]])                  # (B, C_out, 1, 2)
    w = np.array([2.0, 3.0]).reshape(2, 1, 1, 1)
    c = kernels.transposed_convolution(s, w, Window((1, 1), (1, 2)), (1, 3))
    np.testing.assert_array_equal(c, [[[[8.0, 0.0, 80.0]]]])


# -- the sign modifiers on an input a >= 0 -------------------------------------------------


def test_positive_input_is_the_input_itself_and_its_negative_part_is_never_formed():
    """After a ReLU: a+ = a (no copy) and the a- term is dropped before its weight w- is
    computed; with a negative entry both terms are formed."""
    calls = []

    def counted(modifier):
        def weight(w):
            calls.append(modifier.__name__)
            return modifier(w)
        return weight

    terms = (parts.Term(parts.positive, counted(parts.positive)),
             parts.Term(parts.negative, counted(parts.negative)))
    a, w = np.array([[0.0, 2.0, 3.0]]), np.ones((3, 2))
    kept = kernels.contributing(terms, a, w)
    assert len(kept) == 1 and kept[0][1] is a and calls == ["positive"]
    calls.clear()
    b = np.array([[-1.0, 2.0, 3.0]])
    kept = kernels.contributing(terms, b, w)
    np.testing.assert_array_equal(kept[0][1], [[0.0, 2.0, 3.0]])
    np.testing.assert_array_equal(kept[1][1], [[-1.0, 0.0, 0.0]])
    assert calls == ["positive", "negative"]


def test_a_single_or_the_only_term_is_kept_even_when_its_input_is_zero():
    a, w = np.array([[1.0, 2.0]]), np.ones((2, 2))
    single = kernels.contributing((parts.Term(parts.negative, parts.negative),), a, w)
    np.testing.assert_array_equal(single[0][1], [[0.0, 0.0]])    # formed: it is all there is
    both_zero = kernels.contributing((parts.Term(parts.negative, parts.positive),
                                      parts.Term(parts.negative, parts.negative)), a, w)
    assert len(both_zero) == 1
    np.testing.assert_array_equal(both_zero[0][1], [[0.0, 0.0]])
    np.testing.assert_array_equal(both_zero[0][2], w)            # the first term's w+


@st.composite
def nonnegative_cases(draw):
    """A Dense or Conv2d layer and an input ``a >= 0`` with zeros (a ReLU's output)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        layer = lrp.Dense(rng.normal(size=(4, 3)), rng.normal(size=3))
        a = np.maximum(rng.normal(size=(2, 4)), 0)
    else:
        k = draw(st.integers(1, 3))
        layer = lrp.Conv2d(rng.normal(size=(3, 2, k, k)), rng.normal(size=3),
                           padding=draw(st.integers(0, k // 2)))
        a = np.maximum(rng.normal(size=(2, 2, 4, 4)), 0)
    R = rng.normal(size=layer.forward(a).shape)
    return layer, a, R


@pytest.mark.parametrize("rule", SIGNED, ids=rule_id)
@given(case=nonnegative_cases())
def test_signed_rules_on_nonnegative_inputs_equal_the_literal_equation(rule, case):
    assert_explicit_equals_fast(*case, rule)


# -- step 2 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_sign_stabilizer_is_the_stabilizer_on_arrays_without_negative_zero(dtype):
    d = np.array([[-2.0, 0.0, 3.0, -1e-3, np.inf, -np.inf]], dtype)
    np.testing.assert_array_equal(kernels.sign_stabilizer(d, 0.25), kernels.stabilizer(d, 0.25))
    assert kernels.sign_stabilizer(d, 0.25).dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_divide_gives_negative_zero_the_sign_plus(dtype):
    """z_j = -0.0 (with a bias -0.0 or none): d_j = 0 + eps, sign(0) := +1, as eq. (6)."""
    z = np.array([[-0.0, -0.0, 1.0]], dtype)
    R = np.array([[1.0, 1.0, 1.0]], dtype)
    for b in (None, np.array([-0.0, 0.0, 0.0], dtype)):
        s, ledger, _ = kernels.divide(R, z, b, 0.5)
        np.testing.assert_array_equal(s, np.array([[2.0, 2.0, dtype(1) / dtype(1.5)]], dtype))
        np.testing.assert_allclose(ledger.absorbed_stabilizer, [1.0 + 1.0 + 0.5 / 1.5],
                                   rtol=1e-6)     # float32: three sums of a rounded 1/1.5


def test_usual_is_false_exactly_where_divide_must_look_at_the_entries():
    """Finite d and |s| <= 2^(maxexp/2): usual; an infinite d (its s is 0), an s beyond
    that, or a NaN: not. Many entries just below the bound may also say 'not' (the sum of
    squares overflows); the entries are then checked one by one, which is only slower."""
    d, s = np.array([[1.0, 2.0]]), np.array([[0.5, -3.0]])
    assert kernels.usual(d, s)
    assert not kernels.usual(np.array([[np.inf, 2.0]]), np.array([[0.0, 1.0]]))
    assert not kernels.usual(d, np.array([[2.0**513, 1.0]]))
    assert kernels.usual(d, np.array([[2.0**511, 1.0]]))
    assert not kernels.usual(d, np.array([[np.nan, 1.0]]))
    assert not kernels.usual(np.array([[1.0, 1.0]], np.float32),
                             np.array([[2.0**64, 1.0]], np.float32))


def test_bias_ledger_of_a_convolution_is_summed_by_a_product_with_ones():
    """``sum_j s_j b_j`` with ``b`` constant over the positions, by hand: channel sums
    (1 + 2 + 3 + 4, 10 * 4) times (0.5, -1)."""
    s = np.array([[[[1.0, 2.0], [3.0, 4.0]], [[10.0, 10.0], [10.0, 10.0]]]])
    np.testing.assert_array_equal(kernels.per_sample_dot(s, np.array([0.5, -1.0])[:, None, None]),
                                  [5.0 - 40.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_surely_finite_is_true_only_for_finite_arrays(dtype):
    x = np.arange(12, dtype=dtype).reshape(3, 4)
    assert kernels.surely_finite(x) and kernels.surely_finite(x[:, ::2])   # BLAS; strided
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[1, 2] = bad
        assert not kernels.surely_finite(y) and not kernels.surely_finite(y[:, ::2])


def test_large_finite_float32_values_are_representable():
    """Entries of 1e30 (finite in float32, their squares are not): the one-pass test cannot
    tell, the entries are then looked at, and nothing is refused; an inf still is."""
    from lrp_ref.layers.base import check_representable
    x = np.full((2, 3), 1e30, np.float32)
    assert not kernels.surely_finite(x)
    check_representable("relevance", x, "layer '0' (Dense)")
    x[0, 1] = np.inf
    with pytest.raises(ValueError, match=r"layer '0' \(Dense\): the relevance overflowed"):
        check_representable("relevance", x, "layer '0' (Dense)")
