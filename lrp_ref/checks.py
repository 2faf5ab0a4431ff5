"""Small argument checks shared across the package (a leaf module: NumPy only)."""

from __future__ import annotations

from typing import Any

import numpy as np


def is_int(value: Any) -> bool:
    """Whether ``value`` is a Python or NumPy integer, not a bool.

    ``True`` is an ``int`` in Python, but a flag is never a count, an index or
    a size: bools (``bool`` and ``np.bool_``) are refused.
    """
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def float_dtype(x: Any) -> np.dtype:
    """The dtype ``x`` is computed in: its own when floating, else float64 (ints, bools)."""
    dtype = np.asarray(x).dtype
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)
