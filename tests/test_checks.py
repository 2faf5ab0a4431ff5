"""lrp_ref.checks: the small argument checks shared across the package."""

import numpy as np
import pytest

from lrp_ref.checks import float_dtype, is_int


@pytest.mark.parametrize("value", [0, 3, -2, np.int64(5), np.uint8(1), np.int32(-1)])
def test_is_int_accepts_python_and_numpy_integers(value):
    assert is_int(value)


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 2.0, np.float64(1), "1", None,
                                   [1], np.array(1), 1 + 0j])
def test_is_int_refuses_bools_floats_and_everything_else(value):
    # bool is a subclass of int in Python; a flag is not a count or an index
    assert not is_int(value)


@pytest.mark.parametrize("x, expected", [
    (np.zeros(2, np.float32), np.float32),
    (np.zeros(2, np.float16), np.float16),
    (np.zeros(2), np.float64),
    (np.zeros(2, np.float32)[0], np.float32),
    ([1, 2], np.float64),              # integers: the library's default float64
    (np.array([True]), np.float64),
    (np.arange(3, dtype=np.int8), np.float64),
    (2.5, np.float64),
])
def test_float_dtype_keeps_floats_and_defaults_to_float64(x, expected):
    dtype = float_dtype(x)
    assert isinstance(dtype, np.dtype) and dtype == np.dtype(expected)
