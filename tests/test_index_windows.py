"""Windows by index table (engine.patches.AxisWindows, IndexWindow) against the naive
loops of tests/naive.py: torch's sliding and adaptive windows, gather and scatter.

Tolerances: the index tables and ``columns`` are exact; the adjoint identity
``<columns(x), c> = <x, fold(c)>`` sums the same products in two orders: 1e-12
relative to the sum of their magnitudes.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from lrp_ref.engine.patches import AxisWindows, IndexWindow, Window, axis_window

import naive


@st.composite
def axes(draw):
    """Two AxisWindows (sliding with torch's options, or adaptive) and their naive windows."""
    size = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    if draw(st.booleans()):
        out = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
        rows, cols = (AxisWindows.adaptive(n, m) for n, m in zip(size, out))
        return rows, cols, naive.adaptive_windows(size, out)[0]
    k, s = (draw(st.integers(1, 3)), draw(st.integers(1, 3))), (draw(st.integers(1, 3)),) * 2
    p = tuple(draw(st.integers(0, kk // 2)) for kk in k)
    d, ceil = (draw(st.integers(1, 2)), draw(st.integers(1, 2))), draw(st.booleans())
    size = tuple(max(n, dd * (kk - 1) + 1 - 2 * pp) for n, kk, pp, dd in zip(size, k, p, d))
    rows, cols = (AxisWindows.sliding(*args, ceil) for args in zip(size, k, s, p, d))
    return rows, cols, naive.sliding_windows(size, k, s, p, d, ceil)[0]


@given(case=axes())
def test_index_tables_hold_the_naive_windows(case):
    """Slot by slot: the input positions of every window, in row-major window order."""
    rows, cols, windows = case
    last = max(windows)
    assert (rows.index.shape[0], cols.index.shape[0]) == (last[0] + 1, last[1] + 1)
    (top, _), (left, _) = rows.pad, cols.pad
    for (p, q), positions in windows.items():
        read = [(y - top, x - left)
                for u, y in enumerate(rows.index[p]) for v, x in enumerate(cols.index[q])
                if rows.inputs[p, u] and cols.inputs[q, v]]
        assert read == positions


@given(case=axes(), seed=st.integers(0, 2**32 - 1))
def test_gather_and_scatter_are_adjoint_for_both_window_kinds(case, seed):
    rows, cols, _ = case
    rng = np.random.default_rng(seed)
    size = (rows.size + sum(rows.pad), cols.size + sum(cols.pad))
    x = rng.standard_normal((2, 2, *size))
    for window in (IndexWindow(rows.index, cols.index), axis_window(rows, cols)):
        columns = window.columns(x)
        np.testing.assert_array_equal(np.stack(window.offsets(x), axis=2), columns)
        c = rng.standard_normal(columns.shape)
        lhs, rhs = np.sum(columns * c), np.sum(x * window.fold(c, size))
        assert abs(lhs - rhs) <= 1e-12 * np.sum(np.abs(columns * c))


def test_plain_tables_become_a_strided_window():
    """kernel 2 stride 2 on 5 with ceil_mode: windows [0, 2), [2, 4), [4, 6) of the input
    padded by one after it: a plain stride-2 window; dilation 2 is not."""
    rows = AxisWindows.sliding(5, 2, 2, ceil_mode=True)
    assert rows.pad == (0, 1) and rows.stride() == 2
    assert isinstance(axis_window(rows, rows), Window)
    dilated = AxisWindows.sliding(5, 2, 1, dilation=2)
    assert dilated.stride() is None
    assert isinstance(axis_window(rows, dilated), IndexWindow)
    # adaptive 5 -> 3: rows [0, 2), [1, 4), [3, 5); the shorter windows read the padding
    adaptive = AxisWindows.adaptive(5, 3)
    np.testing.assert_array_equal(adaptive.index, [[0, 1, 5], [1, 2, 3], [3, 4, 5]])
    assert adaptive.pad == (0, 1) and adaptive.stride() is None
