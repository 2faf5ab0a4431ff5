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

    def check_input(self, a: Array, where: str) -> None:
        """Raise ValueError when the rule cannot be applied to the layer input ``a``.

        Called by the layer before :meth:`parts` are evaluated; ``where`` names
        the layer (path and type). Most rules accept any input; :class:`ZBox`
        checks that its bounds broadcast to ``a``.
        """


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


# -- the rule zoo: z+, gamma, z^B, flat, w^2 -----------------------------------------------
#
# A note for comparisons with Zennit: every Zennit rule adds its ``stabilizer``
# (default 1e-6) as ``stabilizer * sign(d_j)`` to the denominator ``d_j``. The
# rules below have no stabilizer (as in the papers): an exactly zero denominator
# passes nothing and books ``R_j`` as ``dropped``. Their results and Zennit's
# therefore differ by about ``1e-6 / |d_j|`` relative even where the formulas
# agree; compare with Zennit at ``stabilizer`` close to 0 to see exact agreement.


@dataclass(frozen=True)
class ZPlus(LinearRule):
    """The z+ rule (Montavon et al. 2017, "Explaining nonlinear classification
    decisions with deep Taylor decomposition", eq. for the z+ rule)::

        R_i = sum_j  z+_ij / sum_i z+_ij * R_j,     z+_ij = max(0, a_i w_ij)

    i.e. the terms ``a+ w+`` and ``a- w-``; the bias takes no part (not even in
    the denominator). For ReLU inputs (``a >= 0``) this is Montavon's
    ``a_i w+_ij / sum_i a_i w+_ij``. Conserves ``sum_i R_i = sum_j R_j``
    except at outputs without a positive contribution (``sum_i z+_ij = 0``),
    whose ``R_j`` is ``dropped``. Equal to ``AlphaBeta(1, 0, bias=False)``.

    When to use: hidden layers of ReLU networks where only supporting evidence
    should be shown (deep Taylor decomposition's rule for ``a >= 0``).

    Peers: iNNvestigate's ``LRPZPlus`` is this rule. Zennit's ``ZPlus`` keeps
    ``b+`` in the denominator: it is our ``AlphaBeta(1, 0)``. Captum's
    ``Alpha1_Beta0_Rule`` neither splits the inputs by sign nor drops the bias.
    On a BatchNorm (one input per output) ``R_j`` passes unchanged where
    ``a_i w_i > 0`` and is dropped elsewhere.
    """

    def parts(self) -> tuple[Part, ...]:
        return (Part(1.0, _Z_PLUS, None),)


@dataclass(frozen=True)
class AddPositive:
    """``x + gamma * max(0, x)``: the gamma rule's weights ``w + g w+`` and bias ``b + g b+``."""

    gamma: float

    def __call__(self, x: Array) -> Array:
        return x + self.gamma * positive(x)


@dataclass(frozen=True)
class Gamma(LinearRule):
    """LRP-gamma (Montavon et al. 2019, "Layer-wise relevance propagation: an
    overview", section 10.2.1)::

        R_i = sum_j  a_i (w_ij + g w+_ij) / (sum_i a_i (w_ij + g w+_ij) + b_j + g b+_j) * R_j

    with ``g = gamma >= 0``. ``gamma = 0`` is LRP-0 (:class:`Zero`); as
    ``gamma`` grows, for ``a >= 0``, it tends to ``AlphaBeta(1, 0)`` like
    ``1 / gamma`` (both keep ``b+`` in the denominator). There is no
    stabilizer: a zero denominator passes nothing and books ``R_j`` as
    ``dropped``; the bias ``b_j + g b+_j`` is booked as ``absorbed_bias``.
    ``bias=False`` treats ``b`` as 0.

    When to use: the lower layers of ReLU networks (inputs ``a >= 0``), where
    favouring positive contributions gives more stable, less noisy heatmaps
    (Montavon et al. 2019, section 10.3).

    Peers: for ``a >= 0`` and ``z_j > 0`` equal to Zennit's ``Gamma``
    (Andeol et al. 2021's generalised form), which uses ``w + g w-`` for
    negative inputs and routes relevance at negative outputs ``z_j < 0``
    through ``a+ (w + g w-) + a- (w + g w+)`` with bias ``b + g b-`` — ours
    keeps Montavon's single formula there. Captum's ``GammaRule`` leaves the
    bias unmodified (``b_j`` instead of ``b_j + g b+_j``). On a BatchNorm
    (one input per output) this is the affine treatment with the scale and
    shift replaced by ``w + g w+`` and ``b + g b+``.
    """

    gamma: float = 0.25
    bias: bool = True

    def __post_init__(self) -> None:
        _check_epsilon("Gamma: gamma", self.gamma)
        _check_bias_flag(self.bias)

    def parts(self) -> tuple[Part, ...]:
        modified = AddPositive(float(self.gamma))
        return (Part(1.0, (Term(identity, modified),), modified if self.bias else None),)


@dataclass(frozen=True, eq=False)
class Bound:
    """A box bound ``l`` or ``h`` as a ZBox input modifier: the bound shaped like ``a``."""

    value: float | Array

    def __call__(self, a: Array) -> Array:
        return np.broadcast_to(np.asarray(self.value, dtype=a.dtype), a.shape).copy()


def _as_bound(name: str, value: object) -> float | Array:
    """A finite scalar as float, an array as a read-only float64 copy."""
    array = np.array(value, dtype=float) if _is_real(value) else None
    if array is None:
        raise TypeError(f"ZBox: {name} must be a real number or an array of them, "
                        f"got {value!r}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"ZBox: {name} must be finite, got {value!r}")
    if array.ndim == 0:
        return float(array)
    array.flags.writeable = False
    return array


def _is_real(value: object) -> bool:
    array = np.asarray(value)
    return array.dtype != bool and (np.issubdtype(array.dtype, np.integer)
                                    or np.issubdtype(array.dtype, np.floating))


@dataclass(frozen=True, eq=False)
class ZBox(LinearRule):
    """The z^B rule for inputs in a box ``l <= a <= h`` (Montavon et al. 2017,
    "Explaining nonlinear classification decisions with deep Taylor
    decomposition")::

        R_i = sum_j  (a_i w_ij - l_i w+_ij - h_i w-_ij)
                     / sum_i (a_i w_ij - l_i w+_ij - h_i w-_ij) * R_j

    The bias cancels (it appears in neither numerator nor denominator). Inside
    the box every numerator is ``>= 0`` (``w+ (a - l) + w- (a - h)``), so the
    rule conserves ``sum_i R_i = sum_j R_j`` except at outputs whose
    denominator is exactly 0 (``dropped``). ``low`` and ``high`` are scalars or
    arrays broadcastable to the layer input, with or without the batch axis
    (per channel ``(C, 1, 1)``, per pixel ``(C, H, W)``); ``low <= high``.
    Inputs outside the box are not refused (their shares may be negative). In
    a convolution, padded positions hold 0 for ``a``, ``l`` and ``h``, as in
    Zennit. ``ZBox(0, 0)`` is ``Zero(bias=False)``.

    When to use: the input layer, where the input domain is bounded (pixels
    in ``[0, 1]`` or their normalised range); Montavon et al. 2019 use it for
    the first layer of VGG-16.

    Peers: equal to Zennit's ``ZBox`` (up to its stabilizer, see above) and
    iNNvestigate's ``BoundedRule``. On a BatchNorm (one input per output) the
    share is 1: ``R_j`` passes unchanged except where the numerator is 0
    (``a_i`` on the bound its weight's sign selects), where it is dropped.
    """

    low: float | Array
    high: float | Array

    def __post_init__(self) -> None:
        low, high = _as_bound("low", self.low), _as_bound("high", self.high)
        try:
            above = np.greater(low, high)
        except ValueError:
            raise ValueError(f"ZBox: low {np.shape(low)} and high {np.shape(high)} do not "
                             "broadcast against each other") from None
        if np.any(above):
            raise ValueError(f"ZBox: low must be <= high everywhere; low > high at "
                             f"{int(np.count_nonzero(above))} position(s)")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(np.shape(x) == np.shape(y) and np.array_equal(x, y)
                   for x, y in ((self.low, other.low), (self.high, other.high)))

    def __hash__(self) -> int:
        return hash(tuple((np.shape(v), np.asarray(v).tobytes()) for v in (self.low, self.high)))

    def __repr__(self) -> str:
        return f"ZBox(low={short_repr(self.low)}, high={short_repr(self.high)})"

    def check_input(self, a: Array, where: str) -> None:
        for name, value in (("low", self.low), ("high", self.high)):
            try:
                shape = np.broadcast_shapes(np.shape(value), a.shape)
            except ValueError:
                shape = None
            if shape != a.shape:
                raise ValueError(
                    f"{where}: ZBox {name} of shape {np.shape(value)} does not broadcast to "
                    f"the layer input of shape {a.shape}; give a scalar or an array shaped "
                    f"like the input with or without the batch axis (e.g. {a.shape[1:]})"
                )

    def parts(self) -> tuple[Part, ...]:
        terms = (Term(identity, identity),
                 Term(Bound(self.low), positive, -1.0),
                 Term(Bound(self.high), negative, -1.0))
        return (Part(1.0, terms, None),)


@dataclass(frozen=True)
class Flat(LinearRule):
    """The flat rule (Lapuschkin et al. 2019, "Unmasking Clever Hans predictors
    and assessing what machines really learn")::

        R_i = sum_j  1 / n_j * R_j,         n_j = number of inputs connected to j

    i.e. inputs and weights replaced by ones, no bias: every input in the
    receptive field of ``j`` gets an equal share, whatever its value or
    weight. Conserves exactly (``n_j = 0`` — a convolution window that lies
    entirely in the padding — would be dropped). Padded positions are not
    inputs and count for no ``n_j``.

    When to use: the first layer, to spread relevance evenly over each
    receptive field (a smooth, input-independent map at pixel level);
    Zennit's ``*Flat`` composites and Lapuschkin et al. 2019 do this.

    Peers: equal to Zennit's ``Flat`` (up to its stabilizer) and
    iNNvestigate's ``FlatRule``. On a BatchNorm (``n_j = 1``) and on any
    one-to-one affine map it passes ``R`` unchanged.
    """

    def parts(self) -> tuple[Part, ...]:
        return (Part(1.0, (Term(ones, ones),), None),)


@dataclass(frozen=True)
class WSquare(LinearRule):
    """The w^2 rule (Montavon et al. 2017, "Explaining nonlinear classification
    decisions with deep Taylor decomposition", rule for ``a`` in ``R^d``)::

        R_i = sum_j  w_ij^2 / sum_i w_ij^2 * R_j

    i.e. inputs replaced by ones and weights squared, no bias: the shares
    depend on the weights only, never on the input or the bias. Conserves
    exactly except where every weight into ``j`` is 0 (``dropped``). Padded
    positions add nothing to ``sum_i w_ij^2``.

    When to use: the first layer when the input domain is unbounded
    (Montavon et al. 2019, section 10.3).

    Peers: iNNvestigate's ``WSquareRule`` is this rule. Zennit's ``WSquare``
    adds ``b_j^2`` to the denominator (unless ``zero_params='bias'``), so its
    shares sum to less than 1. On a BatchNorm (one input per output, weight
    ``a``) it passes ``R`` unchanged where ``a != 0`` and drops it elsewhere.
    """

    def parts(self) -> tuple[Part, ...]:
        return (Part(1.0, (Term(ones, square),), None),)


@dataclass(frozen=True)
class Pass(Rule):
    """``R_in = R_out``: hands relevance through an element-wise layer.

    For BatchNorm this is Zennit's default: the shift is never absorbed, the
    layer below shares the relevance out with its own (pre-BatchNorm) outputs.
    """


def _rule_parameters(rule: Rule) -> dict[str, object]:
    """The fields of a rule, for reprs and the audit table."""
    return {f: getattr(rule, f) for f in getattr(rule, "__dataclass_fields__", {})}


def short_repr(value: object) -> str:
    """``repr(value)``, but ``array(3, 1, 1)`` for an array (its shape, not its entries)."""
    return f"array{value.shape}" if isinstance(value, np.ndarray) else repr(value)


def describe(rule: Rule | None) -> str:
    """A short one-line description of a rule, e.g. ``Epsilon(1e-06)``."""
    if rule is None:
        return "-"
    values = [short_repr(v) for v in _rule_parameters(rule).values()]
    return f"{type(rule).__name__}({', '.join(values)})"


__all__ = [
    "ALPHA_BETA_TOLERANCE",
    "AddPositive",
    "AlphaBeta",
    "Bound",
    "Epsilon",
    "Flat",
    "Gamma",
    "LinearRule",
    "Part",
    "Pass",
    "Rule",
    "Term",
    "WSquare",
    "ZBox",
    "ZPlus",
    "Zero",
    "describe",
    "short_repr",
]
