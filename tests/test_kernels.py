"""The small array helpers of the linear-rule engine, checked against their definitions.

They carry the rules' conventions (``sign(0) := +1``, a zero denominator passes
nothing on), so each is checked exactly on hand-made values.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrp_ref.engine import kernels
from lrp_ref.engine.kernels import (
    divide,
    output_blocks,
    per_sample_dot,
    safe_divide,
    signed_sum,
    stabilizer,
)


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


def test_divide_on_hand_computed_values():
    """Step 2 with bias, stabilizer, a coefficient and a zero denominator, by hand.

    z + b = (1.5, -1.5, 0, 0.5); with eps = 0.5 sign (sign(0) = +1) d = (2, -2, 0.5, 1)
    and coefficient * R = (2, 4, 6, 8), so s = (1, -2, 12, 8): every value is a binary
    fraction, the results are exact. Conservation: sum z s = 13, 13 - 4.5 + 11.5 = 20.
    """
    z = np.array([[1.0, -1.0, 0.5, 0.5]])
    b = np.array([0.5, -0.5, -0.5, 0.0])
    R = np.array([[1.0, 2.0, 3.0, 4.0]])
    s, ledger, _ = divide(R, z, b, 0.5, coefficient=2.0)
    np.testing.assert_array_equal(s, [[1.0, -2.0, 12.0, 8.0]])
    np.testing.assert_array_equal(ledger.absorbed_bias, [0.5 + 1.0 - 6.0])
    np.testing.assert_array_equal(ledger.absorbed_stabilizer, [0.5 + 1.0 + 6.0 + 4.0])
    np.testing.assert_array_equal(ledger.dropped, [0.0])
    # without epsilon z_2 + b_2 = 0: its share 2 * 3 = 6 drops and s_2 = 0
    with np.errstate(all="raise"):
        s, ledger, _ = divide(R, z, b, 0.0, coefficient=2.0)
    np.testing.assert_array_equal(s, [[2 / 1.5, 4 / -1.5, 0.0, 16.0]])
    np.testing.assert_array_equal(ledger.dropped, [6.0])
    np.testing.assert_array_equal(ledger.absorbed_stabilizer, [0.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_divide_drops_zero_denominators_only_where_epsilon_cannot_reach(dtype):
    """With eps > 0 no denominator is 0 (|d_j| >= eps); an epsilon that is 0 in the
    dtype (1e-50 in float32) stabilizes nothing, and a zero d_j drops its R_j."""
    z, b, R = (np.array([[0.0, 2.0]], dtype) for _ in range(3))
    R[0] = [3.0, 4.0]
    with np.errstate(all="raise"):
        s, ledger, _ = divide(R, z, None, 1e-50)
    if dtype == np.float32:                       # float32(1e-50) == 0
        np.testing.assert_array_equal(s, [[0.0, 2.0]])
        np.testing.assert_array_equal(ledger.dropped, [3.0])
    else:                                         # d_0 = 1e-50: s_0 = 3e50, nothing drops
        np.testing.assert_array_equal(s, [[dtype(3.0) / dtype(1e-50), 2.0]])
        np.testing.assert_array_equal(ledger.dropped, [0.0])
    assert s.dtype == dtype


def test_divide_writes_into_out_and_never_into_a_read_only_z():
    z = np.array([[1.0, 2.0]])
    z.flags.writeable = False
    s, _, _ = divide(np.ones((1, 2)), z, None, 0.0)
    assert not np.shares_memory(s, z)
    np.testing.assert_array_equal(s, [[1.0, 0.5]])
    w = np.array([[1.0, 2.0]])
    s, _, _ = divide(np.ones((1, 2)), w, None, 0.0, out=w)
    assert s is w
    np.testing.assert_array_equal(w, [[1.0, 0.5]])


@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from([(3, 7), (2, 5, 3, 4)]),
       epsilon=st.sampled_from([0.0, 0.1]), block_bytes=st.sampled_from([1, 40, 10**6]))
def test_divide_in_blocks_is_the_definition(seed, shape, epsilon, block_bytes):
    """Blocks of one entry of axis 1, of a few, or one block give ``s`` exactly as the
    element-wise definition (each ``s_j`` is the same two roundings) and the ledger
    sums to 1e-13 of ``sum |terms|`` (at most 60 float64 terms, added in another
    order: about 60 u = 7e-15).
    """
    rng = np.random.default_rng(seed)
    z, R = rng.normal(size=shape), rng.normal(size=shape)
    b = rng.normal(size=shape[1:2] + (1,) * (len(shape) - 2))
    z[0, 0] = -b[0]                     # a zero denominator (dropped without epsilon)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kernels, "BLOCK_BYTES", block_bytes)
        s, ledger, _ = divide(R, z, b, epsilon, coefficient=0.5)
    d = z + b + stabilizer(z + b, epsilon)
    expected = np.zeros(shape)
    np.divide(0.5 * R, d, out=expected, where=d != 0)
    np.testing.assert_array_equal(s, expected)
    terms = {"absorbed_bias": np.broadcast_to(b, shape) * expected,
             "absorbed_stabilizer": (d - (z + b)) * expected,
             "dropped": np.where(d == 0, 0.5 * R, 0.0)}
    for name, term in terms.items():
        term = term.reshape(shape[0], -1)
        np.testing.assert_allclose(getattr(ledger, name), term.sum(axis=1), rtol=0,
                                   atol=1e-13 * np.abs(term).sum())


@given(shape=st.lists(st.integers(1, 6), min_size=2, max_size=4),
       itemsize=st.sampled_from([4, 8]), block_bytes=st.integers(1, 2000))
def test_output_blocks_cover_axis_one_once_within_the_size(shape, itemsize, block_bytes):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kernels, "BLOCK_BYTES", block_bytes)
        blocks = output_blocks(tuple(shape), itemsize)
    covered = np.concatenate([np.arange(shape[1])[k] for _, k in blocks])
    np.testing.assert_array_equal(covered, np.arange(shape[1]))
    per_entry = itemsize * int(np.prod(shape)) // shape[1]
    for _, k in blocks:
        width = len(range(shape[1])[k])
        assert width == 1 or width * per_entry <= block_bytes


def test_divide_with_no_outputs_books_nothing():
    """No outputs (axis 1 of size 0) means no blocks: nothing moves, nothing is booked."""
    s, ledger, _ = divide(np.zeros((2, 0)), np.zeros((2, 0)), np.zeros(0), 0.1)
    assert s.shape == (2, 0)
    for term in (ledger.absorbed_bias, ledger.absorbed_stabilizer, ledger.dropped):
        np.testing.assert_array_equal(term, [0.0, 0.0])


def test_quotient_refuses_an_s_beyond_the_dtype_naming_the_layer():
    """R_j / d_j = 1e300 / 1e-300 overflows float64: quotient (for layers that use s beyond
    the four steps) raises naming the layer instead of returning inf or a scaled s (divide
    holds any |s| above 2^512 scaled, so that products with s stay finite: refused too)."""
    R, z = np.array([[1e300, 1.0]]), np.array([[1e-300, 2.0]])
    with pytest.raises(ValueError, match=r"layer 'ln' \(LayerNorm\): the relevance overflowed"):
        kernels.quotient(R, z, None, 0.0, "layer 'ln' (LayerNorm)")
    s, _ = kernels.quotient(np.array([[1.0, 1.0]]), np.array([[1e-100, 2.0]]), None, 0.0, "x")
    np.testing.assert_allclose(s, [[1e100, 0.5]], rtol=1e-15)
