"""Comparing relevance maps: a scale-relative tolerance and a report a human can act on.

A relevance map is full of near-zeros (inputs that barely contribute). An
element-wise relative tolerance fails on their rounding noise, an absolute one
depends on the scale of the logits. The tolerance here is relative to the
largest relevance of each sample::

    |actual - expected| <= atol + rtol * max_i |expected_i|      (per sample, every element)

Public through :mod:`lrp_ref.testing`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..audit import per_sample_sum
from ..table import format_table

Array = np.ndarray

#: At most this many per-sample rows in a failure report (the failing samples first).
REPORT_ROWS = 8


def _as_array(x: Any, name: str) -> Array:
    """``x`` as a float64 array; accepts torch tensors (detached, moved to the CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    array = np.asarray(x)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(f"{name} must be a numeric array, got dtype {array.dtype}")
    array = array.astype(np.float64)
    return array.reshape(1) if array.ndim == 0 else array


def _per_sample(x: Array) -> Array:
    """``x`` as ``(B, elements)``: axis 0 is the batch."""
    return x.reshape(x.shape[0], -1)


def max_relative_difference(actual: Any, expected: Any) -> float:
    """``max over samples b of max_i |actual - expected| / max_i |expected|`` (sample ``b``).

    The quantity :func:`assert_relevance_close` bounds by ``rtol`` (with
    ``atol = 0``). A sample whose expected relevance is all zeros counts as 0
    when ``actual`` is zero there too and as ``inf`` otherwise.

    Parameters
    ----------
    actual, expected : array_like or torch.Tensor
        Relevance maps of the same shape, batch first.
    """
    a, e = _as_array(actual, "actual"), _as_array(expected, "expected")
    if a.shape != e.shape:
        raise ValueError(f"shape mismatch: actual {a.shape}, expected {e.shape}")
    diff = np.abs(_per_sample(a) - _per_sample(e)).max(axis=1, initial=0.0)
    scale = np.abs(_per_sample(e)).max(axis=1, initial=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / scale)
    return float(ratio.max(initial=0.0))


def assert_relevance_close(actual: Any, expected: Any, rtol: float = 1e-6,
                           atol: float = 0.0) -> None:
    """Assert that two relevance maps agree to a scale-relative tolerance per sample.

    Passes when, for every sample ``b`` (axis 0) and every element ``i``::

        |actual[b, i] - expected[b, i]| <= atol + rtol * max_i |expected[b, i]|

    A sample whose expected relevance is all zeros must therefore be zero to
    within ``atol``. A 1-D array is ``B`` samples of one element each.

    Parameters
    ----------
    actual : array_like or torch.Tensor
        The relevance to check (e.g. another library's), batch first.
    expected : array_like or torch.Tensor
        The reference relevance (e.g. ``lrp_ref``'s ``Explanation.relevance``).
    rtol : float
        Tolerance relative to each sample's largest ``|expected|``.
    atol : float
        Absolute tolerance added to it.

    Raises
    ------
    AssertionError
        On a shape mismatch, NaN or inf in either array, or an element outside
        the tolerance. The message gives the share of elements outside it, the
        largest absolute and relative difference and where they occur, and per
        sample ``max|expected|``, the tolerance, the largest difference and the
        relevance sums of both arrays with their difference (a sum difference
        points to absorbed or created relevance, a zero sum difference to
        relevance distributed differently).
    """
    if not (np.isfinite(rtol) and rtol >= 0 and np.isfinite(atol) and atol >= 0):
        raise ValueError(f"rtol and atol must be finite and >= 0, got rtol={rtol}, atol={atol}")
    a, e = _as_array(actual, "actual"), _as_array(expected, "expected")
    if a.shape != e.shape:
        raise AssertionError(f"relevance shape mismatch: actual {a.shape}, expected {e.shape}")
    for name, x in (("actual", a), ("expected", e)):
        bad = ~np.isfinite(x)
        if bad.any():
            first = tuple(int(k) for k in np.argwhere(bad)[0])
            raise AssertionError(f"{name} relevance contains {int(bad.sum())} NaN or inf "
                                 f"value(s), the first at index {first}")
    a2, e2 = _per_sample(a), _per_sample(e)
    scale = np.abs(e2).max(axis=1, initial=0.0)
    tolerance = atol + rtol * scale
    diff = np.abs(a2 - e2)
    outside = diff > tolerance[:, None]
    if not outside.any():
        return
    raise AssertionError(_report(a, e, diff, scale, tolerance, outside, rtol, atol))


def _report(a: Array, e: Array, diff: Array, scale: Array, tolerance: Array, outside: Array,
            rtol: float, atol: float) -> str:
    """The failure message of :func:`assert_relevance_close` (arrays as ``(B, n)``)."""
    n_out, n = int(outside.sum()), outside.size
    b, k = np.unravel_index(int(np.argmax(np.where(outside, diff, -1))), diff.shape)
    index = (int(b),) + tuple(int(i) for i in np.unravel_index(int(k), a.shape[1:]))
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(diff == 0, 0.0, diff / scale[:, None])
    sum_a, sum_e = per_sample_sum(a), per_sample_sum(e)
    lines = [
        f"relevance not close: {n_out} of {n} elements ({100 * n_out / n:.3g}%) are outside "
        f"|actual - expected| <= atol + rtol * max|expected| per sample "
        f"(rtol={rtol:g}, atol={atol:g})",
        f"largest difference outside the tolerance at index {index}: actual "
        f"{a[index]:.10g}, expected {e[index]:.10g}, |diff| {diff[b, k]:.3g} "
        f"= {relative[b, k]:.3g} x max|expected| of sample {b} ({scale[b]:.6g})",
        f"largest relative difference (|diff| / max|expected| of its sample): "
        f"{np.max(relative):.3g}",
        "per sample:",
    ]
    header = ("sample", "max|expected|", "tolerance", "max|diff|", "outside", "sum actual",
              "sum expected", "sum diff")
    failing = [int(s) for s in np.flatnonzero(outside.any(axis=1))]
    passing = [s for s in range(len(scale)) if s not in failing]
    shown = (failing + passing)[:REPORT_ROWS]
    rows = [header] + [
        (str(s), f"{scale[s]:.6g}", f"{tolerance[s]:.3g}", f"{diff[s].max(initial=0):.3g}",
         f"{int(outside[s].sum())}/{outside.shape[1]}", f"{sum_a[s]:.10g}", f"{sum_e[s]:.10g}",
         f"{sum_a[s] - sum_e[s]:+.3g}")
        for s in shown
    ]
    lines += ["  " + line for line in format_table(rows, ">" * len(header))]
    if len(scale) > len(shown):
        lines.append(f"  ... {len(scale) - len(shown)} more sample(s) not shown")
    lines.append("a non-zero 'sum diff' means relevance was absorbed or created differently "
                 "(bias, stabilizer, dropped); a zero one with differences means it was "
                 "distributed differently")
    return "\n".join(lines)


__all__ = ["assert_relevance_close", "max_relative_difference"]
