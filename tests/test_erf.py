"""``lrp_ref.layers.erf.erf``, the vectorised error function, against Python's ``math.erf``.

``math.erf`` is the C library's ``erf``. On glibc (fdlibm's ``s_erf.c`` with the
polynomials summed in pairs, which lrp_ref's copies, and the same ``exp``) the two
must agree bit for bit: GELU networks trained before lrp_ref had its own ``erf`` must
retrain to the same weights. Another C library's ``erf`` (correctly rounded to < 1 ulp)
and ours, each < 1 ulp from the true value, may land on neighbouring doubles: 1 ulp
is asserted there.
"""

from __future__ import annotations

import math
import platform

import numpy as np
import pytest

from lrp_ref import GELU
from lrp_ref.layers.erf import BLOCK, OUTER_BLOCK, _exp, erf

#: The largest difference allowed, in ulps of ``math.erf``'s value (module docstring).
BOUND = 0.0 if platform.libc_ver()[0] == "glibc" else 1.0


def ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """``|got - want|`` in units of the last place of ``want`` (``np.spacing``)."""
    return np.abs(got - want) / np.spacing(np.abs(want))


def reference(x: np.ndarray) -> np.ndarray:
    return np.array([math.erf(v) for v in x.ravel()]).reshape(x.shape)


def test_dense_grid_and_random_points_as_math_erf():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-10, 10, 400_001),               # step 5e-5
                        rng.uniform(-10, 10, 200_000),
                        rng.standard_normal(100_000),                 # where GELU's inputs sit
                        # both sides of every branch boundary of the algorithm
                        np.array([b * s for b in (0.84375, 1.25, 1 / 0.35, 6.0, 2.0 ** -28)
                                  for s in (1, -1)]),
                        np.nextafter(np.array([0.84375, 1.25, 1 / 0.35, 6.0]), 0),
                        -np.nextafter(np.array([0.84375, 1.25, 1 / 0.35, 6.0]), 0)])
    got, want = erf(x), reference(x)
    assert got.dtype == np.float64 and got.shape == x.shape
    assert ulps(got, want).max() <= BOUND


def test_tiny_and_subnormal_arguments_as_math_erf():
    # erf(x) = 2/sqrt(pi) x (1 - x^2/3 + ...): linear below 2^-28, fdlibm scales by 8 to keep
    # the subnormal ones exact
    x = np.array([2.0 ** -30, 1e-10, 1e-300, 5e-324, 2.2e-308, 1e-310, 3e-9])
    x = np.concatenate([x, -x])
    assert ulps(erf(x), reference(x)).max() <= BOUND


def test_special_values():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e300, -1e300, 27.0, -28.5])
    got = erf(x)
    assert got[0] == 0 and not np.signbit(got[0])
    assert got[1] == 0 and np.signbit(got[1])          # erf(-0) = -0, as math.erf
    np.testing.assert_array_equal(got[[2, 3, 5, 6, 7, 8]], [1, -1, 1, -1, 1, -1])
    assert np.isnan(got[4])


def test_odd_and_shapes_kept():
    x = np.random.default_rng(1).uniform(-7, 7, (3, 4, 5))
    got = erf(x)
    assert got.shape == (3, 4, 5)
    np.testing.assert_array_equal(erf(-x), -got)       # every branch is odd by construction


def test_float32_input_computed_in_float64():
    x = np.linspace(-4, 4, 1001, dtype=np.float32)
    got = erf(x)
    assert got.dtype == np.float64
    assert ulps(got, reference(x.astype(np.float64))).max() <= BOUND


@pytest.mark.parametrize("x", [0.5, -1.0, 2.0, -3.5])
def test_scalar(x):
    assert abs(float(erf(x)) - math.erf(x)) <= BOUND * math.ulp(math.erf(x))


def test_blocks_of_a_large_strided_array_keep_their_places():
    # erf runs block by block over the flattened array: a transposed (non-contiguous) input
    # of several blocks comes back in its own shape, each element in its place
    x = np.random.default_rng(2).uniform(-4, 4, (3, 2 * BLOCK + 5)).T
    got = erf(x)
    assert got.shape == x.shape
    assert ulps(got, reference(x)).max() <= BOUND


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_gelu_in_blocks_is_the_whole_float64_product_cast(dtype):
    # GELU's f computes z Phi(z) in float64 one block of OUTER_BLOCK elements at a time and
    # casts each into z's dtype: the same values as forming the float64 product whole and
    # casting it (here with math.erf; z / sqrt 2 is taken in z's dtype, as torch does),
    # across block boundaries and for a strided input
    z = np.random.default_rng(3).normal(0, 2, (2, OUTER_BLOCK + 7)).astype(dtype).T
    phi = 0.5 * (1 + reference((z * GELU.ERF_SCALE).astype(np.float64)))
    want = (z.astype(np.float64) * phi).astype(dtype)
    got = GELU().forward(z)
    assert got.dtype == dtype and got.shape == z.shape
    # 1 ulp of z's dtype where the C library's erf is not glibc's (module docstring)
    assert ulps(got, want).max() <= BOUND


def test_the_tails_exp_is_the_c_librarys():
    # erf's tail takes exp from NumPy's complex exp (the C library's cexp, whose real part
    # at v + 0i is exp(v)); NumPy's real exp is its own SIMD code and differs from
    # math.exp in the last bit on some arguments, which erf's bits would show. The
    # arguments of the tail: -z^2 - 0.5625 down to about -36.6, and the small correction
    v = np.concatenate([np.random.default_rng(4).uniform(-37, 0.5, 200_000),
                        np.linspace(-1, 1, 20_001)])
    want = np.array([math.exp(t) for t in v])
    assert ulps(_exp(v), want).max() <= BOUND
