"""Hypothesis strategies shared by the core tests, beyond those of ``lrp_ref.testing``.

Single Dense layers with their input and output relevance, and the rule list
the tests parametrize over; networks come from the package's strategies.
Weights are drawn from NumPy generators seeded by hypothesis (so shrinking
works on the seed and shapes) with optional exact zeros, which make the zero
denominators the rules must book as ``dropped``.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.testing.strategies import dense_networks, inputs_for

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
def relu_networks(draw):
    """A Dense/ReLU network of 1-4 Dense layers (last layer linear) and an input batch.

    The package's strategies (``lrp_ref.testing``) drawn as the pair the tests take.
    """
    net = draw(dense_networks(max_depth=4))
    return net, draw(inputs_for(net))
