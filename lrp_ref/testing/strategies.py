"""Hypothesis strategies for property tests against lrp_ref (imports hypothesis).

Use them through :mod:`lrp_ref.testing`, which imports this module (and
hypothesis) on first use::

    from hypothesis import given, strategies as st
    from lrp_ref.testing import dense_networks, inputs_for, rules

    @given(st.data())
    def test_my_lrp_matches(data):
        net = data.draw(dense_networks())
        x = data.draw(inputs_for(net))
        rule = data.draw(rules())
        assert_relevance_close(my_lrp(net, x, rule), net.explain(x, rule=rule).relevance)

Weights and inputs are drawn from NumPy generators seeded by hypothesis, so a
failing example shrinks to a small seed and small shapes. Networks are float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from ..layers import AvgPool2d, Conv2d, Dense, Flatten, Layer, MaxPool2d, ReLU
from ..network import Sequential
from ..rules import (
    AlphaBeta,
    Epsilon,
    Flat,
    Gamma,
    GeneralizedGamma,
    Rule,
    WSquare,
    ZBox,
    Zero,
    ZPlus,
)

#: The spatial sizes :func:`inputs_for` tries for an image network (square inputs).
IMAGE_SIZES = range(1, 33)

#: The rule families :func:`rules` draws from.
RULE_NAMES = ("Zero", "Epsilon", "AlphaBeta", "ZPlus", "Gamma", "GeneralizedGamma", "Flat",
              "WSquare", "ZBox")

_SEEDS = st.integers(0, 2**32 - 1)


def _dense(rng: np.random.Generator, n_in: int, n_out: int, bias_scale: float) -> Dense:
    """Weights ``N(0, 1/n_in)``, biases ``N(0, bias_scale^2)``."""
    return Dense(rng.standard_normal((n_in, n_out)) / np.sqrt(n_in),
                 bias_scale * rng.standard_normal(n_out))


@st.composite
def dense_networks(draw: Any, max_depth: int = 3, max_width: int = 6,
                   bias: bool = True) -> Sequential:
    """Dense/ReLU networks: ``depth`` Dense layers with a ReLU between them, linear on top.

    Parameters
    ----------
    max_depth : int
        At most this many Dense layers (at least 1).
    max_width : int
        Layer widths (input, hidden, output) are drawn from ``1 .. max_width``.
    bias : bool
        Whether the biases are drawn (scale 0, 0.1 or 1) or all zero.
    """
    rng = np.random.default_rng(draw(_SEEDS))
    widths = [draw(st.integers(1, max_width)) for _ in range(draw(st.integers(1, max_depth)) + 1)]
    scale = draw(st.sampled_from([0.0, 0.1, 1.0])) if bias else 0.0
    layers: list[Layer] = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        layers += [_dense(rng, n_in, n_out, scale), ReLU()]
    return Sequential(layers[:-1])


@st.composite
def conv_networks(draw: Any, max_blocks: int = 2, max_channels: int = 3,
                  pooling: bool = True, bias: bool = True) -> Sequential:
    """Small CNNs: blocks of Conv2d (stride 1-2, padding 0-1) + ReLU [+ pooling], Flatten, Dense.

    Every block is a Conv2d with kernel 1-3, then a ReLU, then (if ``pooling``
    and the image is large enough) possibly a MaxPool2d or AvgPool2d with
    kernel 2 and stride 1 or 2. The classifier is Flatten and one Dense with
    1-4 outputs. The network accepts square images of exactly one size;
    :func:`inputs_for` finds it.
    """
    rng = np.random.default_rng(draw(_SEEDS))
    channels = draw(st.integers(1, max_channels))
    size = draw(st.integers(3, 9))
    scale = draw(st.sampled_from([0.0, 0.1, 1.0])) if bias else 0.0
    layers: list[Layer] = []
    for _ in range(draw(st.integers(1, max_blocks))):
        kernel, stride = draw(st.integers(1, min(3, size))), draw(st.integers(1, 2))
        padding = draw(st.integers(0, (kernel - 1) // 2 + 1 if kernel > 1 else 0))
        c_out = draw(st.integers(1, max_channels))
        fan_in = channels * kernel * kernel
        layers += [Conv2d(rng.standard_normal((c_out, channels, kernel, kernel)) / np.sqrt(fan_in),
                          scale * rng.standard_normal(c_out), stride=stride, padding=padding),
                   ReLU()]
        channels, size = c_out, (size + 2 * padding - kernel) // stride + 1
        pool = draw(st.sampled_from(["none", "max", "avg"])) if pooling and size >= 2 else "none"
        if pool != "none":
            pool_stride = draw(st.integers(1, 2))
            layers.append((MaxPool2d if pool == "max" else AvgPool2d)(2, pool_stride))
            size = (size - 2) // pool_stride + 1
    features = channels * size * size
    layers += [Flatten(), _dense(rng, features, draw(st.integers(1, 4)), scale)]
    return Sequential(layers)


def _first_layer(network: Layer) -> Layer:
    """The first plain (non-container) layer in traversal order."""
    for _, layer in network.named_layers():
        if not layer.children():
            return layer
    return network


def input_shape(network: Layer) -> tuple[int, ...]:
    """The shape of one sample the network accepts (without the batch axis).

    From the first layer's expected input shape; for an image network, the
    first square size in :data:`IMAGE_SIZES` whose forward pass succeeds
    (a network with Dense after Flatten accepts one size only).

    Raises
    ------
    TypeError
        For a network whose first layer does not read float arrays (Embedding).
    ValueError
        When no size in :data:`IMAGE_SIZES` fits.
    """
    first = _first_layer(network)
    if first.reads_token_ids:
        raise TypeError(f"inputs_for: {first.where} reads token ids, not float arrays")
    expected = first.expected_input_shape()
    if expected is None or len(expected) == 2:
        if expected is None or expected[1] is None:
            raise ValueError(f"inputs_for: cannot tell the input size of {first.where}")
        return (int(expected[1]),)
    channels = expected[1] or next(  # a pooling layer first: the first layer that knows
        (shape[1] for _, layer in network.named_layers()
         if (shape := layer.expected_input_shape()) and shape[1] is not None), 1)
    for size in IMAGE_SIZES:
        shape = (int(channels),) + (size,) * (len(expected) - 2)
        try:
            network.forward(np.zeros((1, *shape)))
        except ValueError:
            continue
        return shape
    raise ValueError(f"inputs_for: no square input of size {IMAGE_SIZES.start}.."
                     f"{IMAGE_SIZES.stop - 1} fits the network starting with {first.where}")


def inputs_for(network: Layer, max_batch: int = 3, nonnegative: bool = False,
               zeros: float = 0.0) -> st.SearchStrategy[np.ndarray]:
    """Input batches for ``network``: ``(B, *input_shape(network))``, ``1 <= B <= max_batch``.

    Parameters
    ----------
    network : Layer
        The network (its first layer fixes the shape; see :func:`input_shape`).
    max_batch : int
        The largest batch size.
    nonnegative : bool
        Absolute values of standard normals (e.g. for rules that assume
        ``a >= 0``, such as Gamma on the input layer) instead of standard normals.
    zeros : float
        The probability of each entry being exactly 0 (zero denominators).
    """
    shape = input_shape(network)

    @st.composite
    def batches(draw: Any) -> np.ndarray:
        rng = np.random.default_rng(draw(_SEEDS))
        x = rng.standard_normal((draw(st.integers(1, max_batch)), *shape))
        x = np.abs(x) if nonnegative else x
        return np.where(rng.random(x.shape) < zeros, 0.0, x)

    return batches()


def rules(names: tuple[str, ...] = RULE_NAMES) -> st.SearchStrategy[Rule]:
    """Linear rules with drawn parameters, from the families in ``names``.

    ``Zero`` and ``Epsilon`` (epsilon 1e-6, 0.01, 0.25 or 1) and ``AlphaBeta``
    ((1, 0), (2, 1) or (1.5, 0.5)), ``Gamma`` and ``GeneralizedGamma`` (gamma 0,
    0.25 or 1) with and without bias; ``ZPlus``, ``Flat``, ``WSquare``; ``ZBox(-3, 3)``.
    """
    unknown = sorted(set(names) - set(RULE_NAMES))
    if unknown:
        raise ValueError(f"rules: unknown rule families {unknown}; choose from {RULE_NAMES}")

    @st.composite
    def rule(draw: Any) -> Rule:
        name = draw(st.sampled_from(names))
        bias = draw(st.booleans())
        if name == "Zero":
            return Zero(bias=bias)
        if name == "Epsilon":
            return Epsilon(draw(st.sampled_from([1e-6, 0.01, 0.25, 1.0])), bias=bias)
        if name == "AlphaBeta":
            alpha, beta = draw(st.sampled_from([(1.0, 0.0), (2.0, 1.0), (1.5, 0.5)]))
            return AlphaBeta(alpha, beta, bias=bias)
        if name in ("Gamma", "GeneralizedGamma"):
            gamma_rule = Gamma if name == "Gamma" else GeneralizedGamma
            return gamma_rule(draw(st.sampled_from([0.0, 0.25, 1.0])), bias=bias)
        if name == "ZBox":
            return ZBox(-3.0, 3.0)
        return {"ZPlus": ZPlus, "Flat": Flat, "WSquare": WSquare}[name]()

    return rule()


__all__ = ["conv_networks", "dense_networks", "input_shape", "inputs_for", "rules"]
