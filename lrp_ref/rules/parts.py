"""The vocabulary of the fast engine: a linear rule as a sum of parts.

A linear rule is a sum of *parts*; each part redistributes a share
``coefficient * R_j`` of every output's relevance in proportion to a modified
contribution::

    z'_ij = sum_t sign_t * input_t(a)_i * weight_t(w)_ij          (numerator)
    d_j   = sum_i z'_ij + bias(b)_j + epsilon * sign(...)          (denominator)
    R_i  += sum_j z'_ij / d_j * coefficient * R_j

A part may serve only some outputs, chosen by the sign of the layer's output
``z_j = sum_i a_i w_ij + b_j`` (its ``outputs`` mask; the generalised gamma
rule treats positive and negative outputs apart): it then shares
``coefficient * R_j`` only where the mask holds. Relevance that no part takes
(``R_j (1 - sum_parts coefficient * mask_j)``, e.g. at ``z_j = 0`` when the
masks are ``z_j > 0`` and ``z_j < 0``) passes nothing and is booked as
``dropped``.

``sign(0) := +1`` everywhere. A part whose denominator is exactly zero passes
nothing down: that relevance is booked as ``dropped`` in the audit, never as
NaN or inf. The engine that evaluates parts is ``lrp_ref.engine``; the same
rules written out literally, one function each, are ``lrp_ref.rules.equations``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Array = np.ndarray


# -- input and weight modifiers --------------------------------------------------------


def identity(x: Array) -> Array:
    """``x`` unchanged."""
    return x


def positive(x: Array) -> Array:
    """``x+ = max(0, x)``."""
    return np.maximum(x, 0)


def negative(x: Array) -> Array:
    """``x- = min(0, x)``."""
    return np.minimum(x, 0)


def ones(x: Array) -> Array:
    """All ones, shaped like ``x`` (Flat's inputs and weights, w^2's inputs)."""
    return np.ones_like(x)


def square(x: Array) -> Array:
    """``x**2`` (the w^2 rule's weights)."""
    return x * x


# -- output masks: which outputs a part serves, from the layer's output z_j --------------


def positive_outputs(z: Array) -> Array:
    """``z_j > 0``: the outputs a part for positive outputs serves."""
    return z > 0


def negative_outputs(z: Array) -> Array:
    """``z_j < 0``: the outputs a part for negative outputs serves."""
    return z < 0


@dataclass(frozen=True)
class Term:
    """One product ``sign * input(a)_i * weight(w)_ij`` of a part's numerator."""

    input: Callable[[Array], Array]
    weight: Callable[[Array], Array]
    sign: float = 1.0


@dataclass(frozen=True)
class Part:
    """A share ``coefficient * R_j`` redistributed over ``sum_t`` of its terms.

    ``bias`` maps the layer's bias to the bias in the denominator (None: no
    bias). ``epsilon`` adds the stabilizer ``epsilon * sign(d_j)``.
    ``outputs`` maps the layer's output ``z_j`` (its forward, bias included)
    to the mask of the outputs this part serves (None: every output).
    """

    coefficient: float
    terms: tuple[Term, ...]
    bias: Callable[[Array], Array] | None
    epsilon: float = 0.0
    outputs: Callable[[Array], Array] | None = None


@dataclass(frozen=True)
class AddPositive:
    """``x + gamma * max(0, x)``: the gamma rule's weights ``w + g w+`` and bias ``b + g b+``."""

    gamma: float

    def __call__(self, x: Array) -> Array:
        return x + self.gamma * positive(x)


@dataclass(frozen=True)
class AddNegative:
    """``x + gamma * min(0, x)``: the generalised gamma rule's ``w + g w-`` and ``b + g b-``."""

    gamma: float

    def __call__(self, x: Array) -> Array:
        return x + self.gamma * negative(x)


@dataclass(frozen=True, eq=False)
class Bound:
    """A box bound ``l`` or ``h`` as a ZBox input modifier: the bound shaped like ``a``."""

    value: float | Array

    def __call__(self, a: Array) -> Array:
        return np.broadcast_to(np.asarray(self.value, dtype=a.dtype), a.shape).copy()
