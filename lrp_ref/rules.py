"""LRP rules: what each rule does to one connection ``i -> j``.

Notation (seed text, section 3; Bach et al. 2015; Montavon et al. 2019):

* ``a_i``   input ``i`` of the layer (an activation of layer ``l``),
* ``w_ij``  the weight from input ``i`` to output ``j``, ``b_j`` the bias,
* ``z_ij = a_i w_ij`` the contribution of ``i`` to ``j``,
  ``z_j = sum_i z_ij + b_j`` the pre-activation of output ``j``,
* ``R_j``   the relevance arriving at output ``j``; ``R_i = sum_j R_i<-j``.

A rule is a small, immutable description (the layer owns the propagation, as in
Zennit). A linear rule is a sum of *parts*; each part redistributes a share
``coefficient * R_j`` of every output's relevance in proportion to a modified
contribution::

    z'_ij = sum_t sign_t * input_t(a)_i * weight_t(w)_ij          (numerator)
    d_j   = sum_i z'_ij + bias(b)_j + epsilon * sign(...)          (denominator)
    R_i  += sum_j z'_ij / d_j * coefficient * R_j

``sign(0) := +1`` everywhere. A part whose denominator is exactly zero passes
nothing down: that relevance is booked as ``dropped`` in the audit, never as
NaN or inf. The engine that evaluates parts lives in ``lrp_ref/layers/linear.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Array = np.ndarray

#: The tolerance within which ``alpha - beta`` must equal 1.
ALPHA_BETA_TOLERANCE = 1e-9


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
    """

    coefficient: float
    terms: tuple[Term, ...]
    bias: Callable[[Array], Array] | None
    epsilon: float = 0.0


# -- rules ------------------------------------------------------------------------------


class Rule:
    """Base class of all rules."""


class LinearRule(Rule):
    """A rule for linear layers (Dense, Conv2d, AvgPool2d, BatchNorm)."""

    def parts(self) -> tuple[Part, ...]:
        """The parts whose sum is this rule (see the module docstring)."""
        raise NotImplementedError


def _check_epsilon(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def _check_bias_flag(bias: object) -> None:
    if not isinstance(bias, bool):
        raise TypeError(f"bias must be True or False, got {bias!r}")


_PLAIN = (Term(identity, identity),)


@dataclass(frozen=True)
class Epsilon(LinearRule):
    """LRP-epsilon, seed eq. (6) (Bach et al. 2015, eq. 58)::

        R_i = sum_j  z_ij / (z_j + epsilon * sign(z_j)) * R_j,   sign(0) := +1

    with ``z_ij = a_i w_ij`` and ``z_j = sum_i z_ij + b_j``. The stabilizer
    absorbs ``epsilon sign(z_j) / (z_j + epsilon sign(z_j)) * R_j`` and the bias
    ``b_j / (z_j + epsilon sign(z_j)) * R_j`` (both in the audit). ``bias=False``
    treats ``b`` as 0 in the rule (Zennit's ``zero_params='bias'``); the
    forward pass is unchanged. Defaults: ours and Zennit's epsilon is 1e-6,
    Captum's 1e-9, iNNvestigate's 1e-7.
    """

    epsilon: float = 1e-6
    bias: bool = True

    def __post_init__(self) -> None:
        _check_epsilon("Epsilon: epsilon", self.epsilon)
        _check_bias_flag(self.bias)

    def parts(self) -> tuple[Part, ...]:
        return (Part(1.0, _PLAIN, identity if self.bias else None, float(self.epsilon)),)


@dataclass(frozen=True)
class Zero(LinearRule):
    """LRP-0, seed eq. (5) (Bach et al. 2015, eq. 56)::

        R_i = sum_j  z_ij / z_j * R_j

    A neuron with ``z_j == 0`` passes nothing down; its ``R_j`` is booked as
    ``dropped``. On ReLU networks LRP-0 equals Gradient x Input
    (Ancona et al. 2018). ``bias`` as in :class:`Epsilon`.
    """

    bias: bool = True

    def __post_init__(self) -> None:
        _check_bias_flag(self.bias)

    def parts(self) -> tuple[Part, ...]:
        return (Part(1.0, _PLAIN, identity if self.bias else None),)


# z+_ij = max(0, a_i w_ij) = a+ w+ + a- w-;  z-_ij = min(0, a_i w_ij) = a+ w- + a- w+
_Z_PLUS = (Term(positive, positive), Term(negative, negative))
_Z_MINUS = (Term(positive, negative), Term(negative, positive))

_CONVENTIONS = (
    "lrp_ref uses the convention of the later LRP literature, Zennit and iNNvestigate: "
    "R_i = sum_j (alpha z+_ij/z+_j - beta z-_ij/z-_j) R_j with alpha - beta = 1 and "
    "beta >= 0, e.g. AlphaBeta(1, 0) or AlphaBeta(2, 1). The seed's eq. (7) (Bach et al. "
    "2015 eq. 60, the LRP Toolbox) writes alpha' z+/z+ + beta' z-/z- with "
    "alpha' + beta' = 1; use AlphaBeta.from_eq7(alpha', beta') for that form "
    "(alpha = alpha', beta = -beta')."
)


@dataclass(frozen=True)
class AlphaBeta(LinearRule):
    """LRP-alpha-beta, seed eq. (7) in the convention ``alpha - beta = 1``::

        R_i = sum_j ( alpha * z+_ij / z+_j  -  beta * z-_ij / z-_j ) * R_j

    ``z+_ij = max(0, a_i w_ij)`` (so ``a+ w+`` and ``a- w-`` both count as
    positive), ``z+_j = sum_i z+_ij + max(0, b_j)``; ``z-_ij = min(0, a_i w_ij)``,
    ``z-_j = sum_i z-_ij + min(0, b_j)``. Requires ``alpha - beta = 1`` (to
    within 1e-9) and ``beta >= 0``: then a neuron's relevance is conserved
    (``alpha R_j - beta R_j = R_j``) up to the bias terms.

    Where one sign is missing (``z-_j == 0``, say) that half has no
    denominator: ``alpha R_j`` goes down, ``-beta R_j`` is booked as
    ``dropped`` (negative: the rule created relevance).

    The seed writes eq. (7) as ``alpha' z+/z+ + beta' z-/z-`` with
    ``alpha' + beta' = 1`` (Bach et al. 2015 eq. 60, LRP Toolbox): the same
    family with ``alpha = alpha'``, ``beta = -beta'``; build it with
    :meth:`from_eq7`. Equal to Zennit's ``AlphaBeta`` and iNNvestigate's
    ``AlphaBetaRule``; Zennit's ``ZPlus`` is ``AlphaBeta(1, 0)``.
    """

    alpha: float = 2.0
    beta: float = 1.0
    bias: bool = True

    def __post_init__(self) -> None:
        for name in ("alpha", "beta"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ValueError(f"AlphaBeta: {name} must be a finite number, got {value!r}")
        if self.beta < 0 or abs(self.alpha - self.beta - 1) > ALPHA_BETA_TOLERANCE:
            raise ValueError(
                f"AlphaBeta(alpha={self.alpha}, beta={self.beta}) does not conserve relevance. "
                + _CONVENTIONS
            )
        _check_bias_flag(self.bias)

    @classmethod
    def from_eq7(cls, alpha: float, beta: float, bias: bool = True) -> AlphaBeta:
        """Build the rule from the seed's eq. (7) form, ``alpha' + beta' = 1``.

        ``R_i = sum_j (alpha' z+_ij/z+_j + beta' z-_ij/z-_j) R_j`` is
        ``AlphaBeta(alpha', -beta')``; e.g. ``from_eq7(2, -1) == AlphaBeta(2, 1)``.
        """
        if not abs(alpha + beta - 1) <= ALPHA_BETA_TOLERANCE:
            raise ValueError(
                f"AlphaBeta.from_eq7({alpha}, {beta}): eq. (7) needs alpha + beta = 1. "
                + _CONVENTIONS
            )
        return cls(alpha, -beta, bias=bias)

    def parts(self) -> tuple[Part, ...]:
        plus = Part(self.alpha, _Z_PLUS, positive if self.bias else None)
        if self.beta == 0:
            return (plus,)
        return (plus, Part(-self.beta, _Z_MINUS, negative if self.bias else None))


@dataclass(frozen=True)
class Pass(Rule):
    """``R_in = R_out``: hands relevance through an element-wise layer.

    For BatchNorm this is Zennit's default: the shift is never absorbed, the
    layer below shares the relevance out with its own (pre-BatchNorm) outputs.
    """


def _rule_parameters(rule: Rule) -> dict[str, object]:
    """The fields of a rule, for reprs and the audit table."""
    return {f: getattr(rule, f) for f in getattr(rule, "__dataclass_fields__", {})}


def describe(rule: Rule | None) -> str:
    """A short one-line description of a rule, e.g. ``Epsilon(1e-06)``."""
    if rule is None:
        return "-"
    values = [repr(v) if not isinstance(v, np.ndarray) else f"array{v.shape}"
              for v in _rule_parameters(rule).values()]
    return f"{type(rule).__name__}({', '.join(values)})"


__all__ = [
    "ALPHA_BETA_TOLERANCE",
    "AlphaBeta",
    "Epsilon",
    "LinearRule",
    "Part",
    "Pass",
    "Rule",
    "Term",
    "Zero",
    "describe",
]
