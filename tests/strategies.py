"""Hypothesis strategies shared by the core tests: random dense layers and networks.

Weights are drawn from NumPy generators seeded by hypothesis (so shrinking
works on the seed and shapes) with optional exact zeros, which make the zero
denominators the rules must book as ``dropped``.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import lrp_ref as lrp

RULES = [
    lrp.Zero(),
    lrp.Zero(bias=False),
    lrp.Epsilon(1e-6),
    lrp.Epsilon(0.5),
    lrp.Epsilon(0.25, bias=False),
    lrp.AlphaBeta(1, 0),
    lrp.AlphaBeta(2, 1),
    lrp.AlphaBeta(1.5, 0.5, bias=False),
]


def sparse_normal(rng: np.random.Generator, shape: tuple, zeros: float) -> np.ndarray:
    """Standard normal entries, each replaced by an exact 0 with probability ``zeros``."""
    x = rng.standard_normal(shape)
    return np.where(rng.random(shape) < zeros, 0.0, x)


SOME_ZEROS = st.sampled_from([0.0, 0.0, 0.3])
DEPTHS = st.integers(1, 4)
BIAS_SCALES = st.sampled_from([0.0, 0.1, 1.0])


@st.composite
def dense_cases(draw, zeros=SOME_ZEROS):
    """A Dense layer with bias, an input batch and an output relevance."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_in, n_out, batch = draw(st.integers(1, 6)), draw(st.integers(1, 5)), draw(st.integers(1, 3))
    p = draw(zeros)
    layer = lrp.Dense(sparse_normal(rng, (n_in, n_out), p), sparse_normal(rng, (n_out,), p))
    a = sparse_normal(rng, (batch, n_in), p)
    R = sparse_normal(rng, (batch, n_out), p)
    return layer, a, R


@st.composite
def relu_networks(draw, depth=DEPTHS, bias_scale=BIAS_SCALES):
    """A Dense/ReLU network (last layer linear) and an input batch."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    widths = [draw(st.integers(1, 6)) for _ in range(draw(depth) + 1)]
    scale = draw(bias_scale)
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        layers += [lrp.Dense(rng.standard_normal((n_in, n_out)) / np.sqrt(n_in),
                             scale * rng.standard_normal(n_out)), lrp.ReLU()]
    net = lrp.Sequential(layers[:-1])
    x = rng.standard_normal((draw(st.integers(1, 3)), widths[0]))
    return net, x
