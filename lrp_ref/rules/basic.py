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
    """LRP-0, eq. (5) of docs/theory.md (Bach et al. 2015, eq. 56)::

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
    """LRP-epsilon, eq. (6) of docs/theory.md (Bach et al. 2015, eq. 58)::

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
    "lrp_ref has both conventions of eq. (7): AlphaBeta(alpha, beta) is the later "
    "literature's, Zennit's and iNNvestigate's, R_i = sum_j (alpha z+_ij/z+_j - beta "
    "z-_ij/z-_j) R_j with alpha - beta = 1 and beta >= 0 (AlphaBeta(1, 0), AlphaBeta(2, 1)); "
    "AlphaBeta.from_eq7(alpha', beta') is eq. (7) as docs/theory.md, Bach et al. 2015 "
    "eq. 60 and the LRP Toolbox write it, R_i = sum_j (alpha' z+_ij/z+_j + beta' "
    "z-_ij/z-_j) R_j with alpha' + beta' = 1 and either sign (from_eq7(2, -1) is "
    "AlphaBeta(2, 1); from_eq7(0.5, 0.5) weighs counter-evidence equally)."
)


def _check_finite(rule: str, **values: float) -> None:
    for name, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise ValueError(f"{rule}: {name} must be a finite number, got {value!r}")


@dataclass(frozen=True)
class AlphaBeta(LinearRule):
    """LRP-alpha-beta, eq. (7) of docs/theory.md in the convention ``alpha - beta = 1``::

        R_i = sum_j ( alpha * z+_ij / z+_j  -  beta * z-_ij / z-_j ) * R_j

    ``z+_ij = max(0, a_i w_ij)`` (so ``a+ w+`` and ``a- w-`` both count as
    positive), ``z+_j = sum_i z+_ij + max(0, b_j)``; ``z-_ij = min(0, a_i w_ij)``,
    ``z-_j = sum_i z-_ij + min(0, b_j)``. Requires ``alpha - beta = 1`` (to
    within 1e-9) and ``beta >= 0``: then a neuron's relevance is conserved
    (``alpha R_j - beta R_j = R_j``) up to the bias terms.

    Where one sign is missing (``z-_j == 0``, say) that half has no
    denominator: ``alpha R_j`` goes down, ``-beta R_j`` is booked as
    ``dropped`` (negative: the rule created relevance).

    docs/theory.md writes eq. (7) as ``alpha' z+/z+ + beta' z-/z-`` with
    ``alpha' + beta' = 1`` (Bach et al. 2015 eq. 60, LRP Toolbox), ``beta'`` of
    either sign: :meth:`from_eq7` builds that form (:class:`AlphaBetaEq7`); where
    ``beta' <= 0`` it is this rule with ``alpha = alpha'``, ``beta = -beta'``.
    Equal to Zennit's ``AlphaBeta``; Zennit's ``ZPlus`` is ``AlphaBeta(1, 0)``.
    iNNvestigate's ``AlphaBetaIgnoreBias`` is ``AlphaBeta(alpha, beta, bias=False)``;
    its ``AlphaBetaRule`` differs wherever ``b != 0`` (docs/peers.md).
    """

    alpha: float = 2.0
    beta: float = 1.0
    bias: bool = True

    def __post_init__(self) -> None:
        for name in ("alpha", "beta"):
            object.__setattr__(self, name, real_number(getattr(self, name)))
        _check_finite("AlphaBeta", alpha=self.alpha, beta=self.beta)
        # checked in floating point, as the engine uses them: AlphaBeta(2**60, 2**60 - 1)
        # conserves in exact integers but not in float64, where alpha - beta = 0
        if not abs(float(self.alpha) - float(self.beta) - 1) <= ALPHA_BETA_TOLERANCE:
            raise ValueError(
                f"AlphaBeta(alpha={self.alpha}, beta={self.beta}) does not conserve relevance: "
                f"it needs alpha - beta = 1 (a neuron passes (alpha - beta) R_j down). "
                + _CONVENTIONS
            )
        if self.beta < 0:
            raise ValueError(
                f"AlphaBeta(alpha={self.alpha}, beta={self.beta}): AlphaBeta's convention "
                f"needs beta >= 0. The same rule (it conserves relevance) in eq. (7)'s form "
                f"is AlphaBeta.from_eq7({self.alpha}, {-self.beta}). " + _CONVENTIONS
            )
        check_bias_flag(self.bias)

    @classmethod
    def from_eq7(cls, alpha: float, beta: float, bias: bool = True) -> AlphaBetaEq7:
        """Eq. (7) as docs/theory.md writes it, ``alpha' + beta' = 1``: :class:`AlphaBetaEq7`.

        ``R_i = sum_j (alpha' z+_ij/z+_j + beta' z-_ij/z-_j) R_j`` for the whole
        family, e.g. ``from_eq7(0.5, 0.5)`` or ``from_eq7(0, 1)``; for
        ``beta' <= 0`` it gives the same numbers as ``AlphaBeta(alpha', -beta')``
        (``from_eq7(2, -1)`` is LRP-alpha2-beta1).
        """
        return AlphaBetaEq7(alpha, beta, bias=bias)

    def equation(self, a, patches, w, b, R):
        return equations.alpha_beta(patches(a), w, b if self.bias else 0 * b, R, self.alpha,
                                          self.beta)

    def parts(self) -> tuple[Part, ...]:
        plus = Part(self.alpha, Z_PLUS, positive if self.bias else None)
        if self.beta == 0:
            return (plus,)
        return (plus, Part(-self.beta, Z_MINUS, negative if self.bias else None))


@dataclass(frozen=True)
class AlphaBetaEq7(LinearRule):
    """LRP-alpha-beta as eq. (7) of docs/theory.md writes it (Bach et al. 2015, eq. 60)::

        R_i = sum_j ( alpha' * z+_ij / z+_j  +  beta' * z-_ij / z-_j ) * R_j,
        alpha' + beta' = 1

    with ``z+``, ``z-`` as in :class:`AlphaBeta`; ``alpha'`` and ``beta'`` may
    have either sign (the LRP Toolbox's form). ``alpha' >= 1`` (``beta' <= 0``)
    is ``AlphaBeta(alpha', -beta')``; ``alpha' < 1`` raises the weight of the
    counter-evidence: ``(0.5, 0.5)`` shares half of ``R_j`` among the
    supporting and half among the opposing contributions, ``(0, 1)`` all of it
    among the opposing ones. Where one half has no contributions its share
    (``alpha' R_j`` or ``beta' R_j``) is ``dropped``. Usually built with
    ``AlphaBeta.from_eq7(alpha', beta')``; the fields are ``alpha'`` and ``beta'``.
    """

    alpha: float = 2.0
    beta: float = -1.0
    bias: bool = True

    def __post_init__(self) -> None:
        _check_finite("AlphaBeta.from_eq7", alpha=self.alpha, beta=self.beta)
        if abs(self.alpha + self.beta - 1) > ALPHA_BETA_TOLERANCE:
            raise ValueError(
                f"AlphaBeta.from_eq7({self.alpha}, {self.beta}) does not conserve relevance: "
                f"eq. (7) needs alpha' + beta' = 1, got {self.alpha + self.beta:g}. "
                + _CONVENTIONS
            )
        check_bias_flag(self.bias)

    def equation(self, a, patches, w, b, R):
        return equations.alpha_beta_eq7(patches(a), w, b if self.bias else 0 * b, R,
                                        self.alpha, self.beta)

    def parts(self) -> tuple[Part, ...]:
        halves = ((self.alpha, Z_PLUS, positive), (self.beta, Z_MINUS, negative))
        return tuple(Part(weight, terms, bias if self.bias else None)
                     for weight, terms, bias in halves if weight != 0)
