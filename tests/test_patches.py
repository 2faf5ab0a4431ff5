"""The patch helper: Window.columns against the naive window loop, fold as its adjoint.

Tolerances: ``columns`` only copies (exact); the adjoint identity
``<columns(x), c> = <x, fold(c)>`` sums the same products in two orders,
1e-12 relative to the sum of their magnitudes (~1000x the rounding bound).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from lrp_ref.engine.patches import Window

from naive import connections


@st.composite
def geometries(draw):
    """A window geometry and an input it fits (padding may exceed the kernel)."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    size = [draw(st.integers(max(1, k - 2 * p), 6)) for k, p in zip(kernel, padding)]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((draw(st.integers(1, 2)), draw(st.integers(1, 3)), *size))
    return Window(kernel, stride, padding), x, rng


@given(case=geometries())
def test_columns_match_the_naive_windows(case):
    window, x, _ = case
    cols = window.columns(x)
    B, C, K, Ho, Wo = cols.shape
    assert (Ho, Wo) == window.output_size(x.shape[2:], "test") and K == np.prod(window.kernel)
    expected = np.zeros_like(cols)                       # padding holds 0
    for p, q, u, v, y, xx in connections(x.shape[2:], window.kernel, window.stride,
                                         window.padding):
        expected[:, :, u * window.kernel[1] + v, p, q] = x[:, :, y, xx]
    np.testing.assert_array_equal(cols, expected)


@given(case=geometries(), band=st.integers(1, 3))
def test_columns_of_bands_of_rows_are_the_rows_of_all_columns(case, band):
    """Bands pad only the input rows they see; put together they are ``columns(x)`` (exact)."""
    window, x, _ = case
    Ho = window.output_size(x.shape[2:], "test")[0]
    bands = [window.columns(x, range(p0, min(p0 + band, Ho))) for p0 in range(0, Ho, band)]
    np.testing.assert_array_equal(np.concatenate(bands, axis=3), window.columns(x))


@given(case=geometries())
def test_fold_is_the_adjoint_of_columns(case):
    window, x, rng = case
    cols = window.columns(x)
    c = rng.standard_normal(cols.shape)
    folded = window.fold(c, x.shape[2:])
    assert folded.shape == x.shape
    magnitude = np.abs(cols * c).sum() + 1e-300
    np.testing.assert_allclose(np.vdot(cols, c), np.vdot(x, folded), rtol=0,
                               atol=1e-12 * magnitude)
    channels = window.fold(c[:, :1], x.shape[2:])          # channels fold independently
    np.testing.assert_array_equal(channels, folded[:, :1])


@given(case=geometries())
def test_offsets_are_the_columns_of_one_kernel_element_each(case):
    """``offsets(x)[k]`` is ``columns(x)[:, :, k]`` (exact: both only read ``x_pad``)."""
    window, x, _ = case
    cols = window.columns(x)
    offsets = window.offsets(x)
    assert len(offsets) == cols.shape[2]
    for k, view in enumerate(offsets):
        np.testing.assert_array_equal(view, cols[:, :, k])


@given(case=geometries(), boolean=st.booleans())
def test_fold_of_products_is_the_fold_of_their_columns(case, boolean):
    """``fold_products(f, s)`` is ``fold(cols)`` with ``cols[:, :, k] = f[k] * s``, exactly:
    the same products added onto each input in the same order (overlapping or not)."""
    window, x, rng = case
    Ho, Wo = window.output_size(x.shape[2:], "test")
    K = window.kernel[0] * window.kernel[1]
    factors = rng.standard_normal((K, *x.shape[:2], Ho, Wo))
    if boolean:                                            # MaxPool2d's masks [a_i = z_j]
        factors = factors > 0
    s = rng.standard_normal((*x.shape[:2], Ho, Wo))
    folded = window.fold_products(list(factors), s, x.shape[2:])
    np.testing.assert_array_equal(folded, window.fold(np.moveaxis(factors * s, 0, 2),
                                                      x.shape[2:]))


@st.composite
def tilings(draw):
    """Windows that tile the input (stride = kernel, no padding), and an input they fit;
    its last rows or columns may lie in no window."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    size = [draw(st.integers(k, 7)) for k in kernel]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((draw(st.integers(1, 2)), draw(st.integers(1, 3)), *size))
    return Window(kernel, kernel), x, rng


def test_tiles_only_when_stride_is_kernel_without_padding():
    assert Window((2, 3), (2, 3)).tiles
    assert not Window((2, 3), (2, 2)).tiles
    assert not Window((2, 2), (2, 2), (1, 0)).tiles


@given(case=tilings())
def test_tiled_windows_are_the_columns(case):
    """``tiled`` is ``columns`` with the window axes rearranged; ``window_sums`` sums each
    window; ``spread`` puts an output value at each of its window's entries (all exact:
    copies, and sums of at most 9 entries in the order of a numpy sum over the window
    compared with the same entries summed by numpy in another order, so 1e-15)."""
    window, x, rng = case
    cols = window.columns(x)                                # (B, C, kh*kw, Ho, Wo)
    B, C, _, Ho, Wo = cols.shape
    (kh, kw) = window.kernel
    t = window.tiled(x, (Ho, Wo))
    assert t.shape == (B, C, Ho, kh, Wo * kw)
    as_columns = t.reshape(B, C, Ho, kh, Wo, kw).transpose(0, 1, 3, 5, 2, 4)
    np.testing.assert_array_equal(as_columns.reshape(cols.shape), cols)
    np.testing.assert_allclose(window.window_sums(t, x.dtype), cols.sum(axis=2),
                               rtol=0, atol=1e-15 * np.abs(cols).sum(axis=2).max())
    y = rng.standard_normal((B, C, Ho, Wo))
    spread = np.broadcast_to(window.spread(y), t.shape).reshape(B, C, Ho, kh, Wo, kw)
    np.testing.assert_array_equal(spread, y[:, :, :, None, :, None] + 0 * spread)


@given(case=tilings())
def test_untile_is_the_fold_of_the_tiled_windows(case):
    """Each input lies in at most one window: ``untile`` places, ``fold`` adds onto 0 (exact)."""
    window, x, rng = case
    (kh, kw), (Ho, Wo) = window.kernel, window.output_size(x.shape[2:], "test")
    t = rng.standard_normal((x.shape[0], x.shape[1], Ho, kh, Wo * kw))
    cols = t.reshape(*t.shape[:3], kh, Wo, kw).transpose(0, 1, 3, 5, 2, 4)
    np.testing.assert_array_equal(window.untile(t, x.shape[2:]),
                                  window.fold(cols.reshape(*t.shape[:2], kh * kw, Ho, Wo),
                                              x.shape[2:]))
