"""The small array helpers of the linear-rule engine, checked against their definitions.

They carry the rules' conventions (``sign(0) := +1``, a zero denominator passes
nothing on), so each is checked exactly on hand-made values.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrp_ref.layers.linear import per_sample_dot, safe_divide, signed_sum, stabilizer


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stabilizer_takes_the_sign_of_z_with_sign_of_zero_plus_one(dtype):
    z = np.array([[-2.0, -0.0, 0.0, 3.0]], dtype)
    eps = stabilizer(z, 0.25)
    assert eps.dtype == dtype
    np.testing.assert_array_equal(eps, [[-0.25, 0.25, 0.25, 0.25]])   # -0.0 >= 0: sign +1


def test_safe_divide_is_a_plain_division_without_zeros():
    s, zero = safe_divide(np.array([1.0, 6.0]), np.array([4.0, -3.0]))
    np.testing.assert_array_equal(s, [0.25, -2.0])
    assert not zero.any()


def test_safe_divide_gives_zero_and_marks_zero_denominators():
    with np.errstate(all="raise"):                  # no 1/0 is ever evaluated
        s, zero = safe_divide(np.array([1.0, 6.0, -2.0]), np.array([0.0, -3.0, -0.0]))
    np.testing.assert_array_equal(s, [0.0, -2.0, 0.0])
    np.testing.assert_array_equal(zero, [True, False, True])


@pytest.mark.parametrize("d", [[4.0, -3.0, 2.0], [0.0, -3.0, -0.0]])
def test_safe_divide_in_place_writes_the_quotient_into_d(d):
    """In place the quotient is written into ``d``: where ``d == 0`` the 0 already there stays."""
    d = np.array(d)
    expected, expected_zero = safe_divide(np.array([1.0, 6.0, -2.0]), d.copy())
    with np.errstate(all="raise"):
        s, zero = safe_divide(np.array([1.0, 6.0, -2.0]), d, in_place=True)
    assert s is d
    np.testing.assert_array_equal(s, expected)
    np.testing.assert_array_equal(zero, expected_zero)


def test_signed_sum_of_one_plus_term_is_that_array():
    x = np.arange(3.0)
    assert signed_sum([(1.0, x)]) is x


def test_signed_sum_never_writes_to_its_terms():
    x, y = np.arange(3.0), np.ones(3)
    np.testing.assert_array_equal(signed_sum([(1.0, x), (-1.0, y)]), [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(signed_sum([(-1.0, x)]), [0.0, -1.0, -2.0])
    np.testing.assert_array_equal(x, np.arange(3.0))
    np.testing.assert_array_equal(y, np.ones(3))


@given(seed=st.integers(0, 2**32 - 1), conv=st.booleans())
def test_per_sample_dot_is_the_sum_of_products(seed, conv):
    """``sum_j s[n, j] b_j`` for a Dense bias ``(J,)`` and a convolution bias ``(C, 1, 1)``.

    The tolerance 1e-13 of ``sum |s_j b_j|``: both sides add at most 60 products
    of float64 numbers in different orders (about 60 u = 7e-15 each way).
    """
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(2, 3, 4, 5) if conv else (2, 6))
    b = rng.normal(size=(3, 1, 1) if conv else (6,))
    products = (s * b).reshape(2, -1)
    np.testing.assert_allclose(per_sample_dot(s, b), products.sum(axis=1), rtol=0,
                               atol=1e-13 * np.abs(products).sum())
