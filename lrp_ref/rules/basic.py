"""The three rules of the theory: LRP-0 (eq. 5), LRP-epsilon (eq. 6), LRP-alpha-beta (eq. 7).

Equation numbers are those of docs/theory.md; the rules are Bach et al. 2015's
(PLoS ONE 10(7), eqs. 56, 58 and 60). Each class is the declarative description
the fast engine evaluates (``parts``); its literal form is the function of the
same name in :mod:`lrp_ref.rules.equations`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import equations
from .base import LinearRule, check_bias_flag, check_epsilon, real_number
from .parts import Part, Term, identity, negative, positive

#: The tolerance within which ``alpha - beta`` must equal 1.
ALPHA_BETA_TOLERANCE = 1e-9

PLAIN = (Term(identity, identity),)


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
        check_bias_flag(self.bias)

    def equation(self, a, patches, w, b, R):
        return equations.zero(patches(a), w, b if self.bias else 0 * b, R)

    def parts(self) -> tuple[Part, ...]:
        return (Part(1.0, PLAIN, identity if self.bias else None),)


# z+_ij = max(0, a_i w_ij) = a+ w+ + a- w-;  z-_ij = min(0, a_i w_ij) = a+ w- + a- w+


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
        object.__setattr__(self, "epsilon", check_epsilon("Epsilon: epsilon", self.epsilon))
        check_bias_flag(self.bias)

    def equation(self, a, patches, w, b, R):
        return equations.epsilon(patches(a), w, b if self.bias else 0 * b, R, self.epsilon)

    def parts(self) -> tuple[Part, ...]:
        return (Part(1.0, PLAIN, identity if self.bias else None, float(self.epsilon)),)


Z_PLUS = (Term(positive, positive), Term(negative, negative))
Z_MINUS = (Term(positive, negative), Term(negative, positive))

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
            value = real_number(getattr(self, name))
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ValueError(f"AlphaBeta: {name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, value)
        # checked in floating point, as the engine uses them: AlphaBeta(2**60, 2**60 - 1)
        # conserves in exact integers but not in float64, where alpha - beta = 0
        alpha, beta = float(self.alpha), float(self.beta)
        if beta < 0 or not abs(alpha - beta - 1) <= ALPHA_BETA_TOLERANCE:
            raise ValueError(
                f"AlphaBeta(alpha={self.alpha}, beta={self.beta}) does not conserve relevance. "
                + _CONVENTIONS
            )
        check_bias_flag(self.bias)

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

    def equation(self, a, patches, w, b, R):
        return equations.alpha_beta(patches(a), w, b if self.bias else 0 * b, R, self.alpha,
                                          self.beta)

    def parts(self) -> tuple[Part, ...]:
        plus = Part(self.alpha, Z_PLUS, positive if self.bias else None)
        if self.beta == 0:
            return (plus,)
        return (plus, Part(-self.beta, Z_MINUS, negative if self.bias else None))
