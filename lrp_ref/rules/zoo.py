"""The rule zoo beyond eqs. (5)-(7): z+, gamma, z^B, flat and w^2 (Montavon et al. 2017, 2019),
and the generalised gamma (Andeol et al. 2021).

Each class is the declarative description the fast engine evaluates; its
literal form is the function of the same name in :mod:`lrp_ref.rules.equations`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import equations
from .base import LinearRule, check_bias_flag, check_epsilon, short_repr
from .basic import Z_PLUS
from .parts import (
    AddNegative,
    AddPositive,
    Bound,
    Part,
    Term,
    identity,
    negative,
    negative_outputs,
    ones,
    positive,
    positive_outputs,
    square,
)

Array = np.ndarray


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

    def equation(self, a, patches, w, b, R):
        return equations.z_plus(patches(a), w, R)

    def parts(self) -> tuple[Part, ...]:
        return (Part(1.0, Z_PLUS, None),)


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

    Peers: for ``a >= 0`` and ``z_j > 0`` equal to Zennit's ``Gamma``, which
    is the generalised form (:class:`GeneralizedGamma`): it uses ``w + g w-``
    for negative inputs and routes relevance at negative outputs ``z_j < 0``
    through ``a+ (w + g w-) + a- (w + g w+)`` with bias ``b + g b-`` — this
    rule keeps Montavon's single formula there (at a negative output it
    favours the contributions that oppose the output's sign, so the shares
    can be large and of either sign). Captum's ``GammaRule`` leaves the
    bias unmodified (``b_j`` instead of ``b_j + g b+_j``). On a BatchNorm
    (one input per output) this is the affine treatment with the scale and
    shift replaced by ``w + g w+`` and ``b + g b+``.
    """

    gamma: float = 0.25
    bias: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "gamma", check_epsilon("Gamma: gamma", self.gamma))
        check_bias_flag(self.bias)

    def equation(self, a, patches, w, b, R):
        return equations.gamma(patches(a), w, b if self.bias else 0 * b, R, self.gamma)

    def parts(self) -> tuple[Part, ...]:
        modified = AddPositive(float(self.gamma))
        return (Part(1.0, (Term(identity, modified),), modified if self.bias else None),)


@dataclass(frozen=True)
class GeneralizedGamma(LinearRule):
    """The generalised LRP-gamma (Andeol et al. 2021, "Learning domain invariant
    representations by joint Wasserstein distance minimization"; Zennit's
    ``Gamma``): every output takes the contributions of its own sign::

        R_i = sum_j [z_j > 0] (z_ij + g z+_ij) / (sum_i (z_ij + g z+_ij) + b_j + g b+_j) * R_j
            + sum_j [z_j < 0] (z_ij + g z-_ij) / (sum_i (z_ij + g z-_ij) + b_j + g b-_j) * R_j

    with ``z_ij = a_i w_ij``, ``z+_ij = max(0, z_ij) = a+ w+ + a- w-``,
    ``z-_ij = min(0, z_ij) = a+ w- + a- w+`` and ``g = gamma >= 0``. A positive
    output shares ``R_j`` over ``a+ (w + g w+) + a- (w + g w-)``, a negative one
    over ``a+ (w + g w-) + a- (w + g w+)``: gamma amplifies the contributions
    that agree with the output's sign, on both sides. ``[z_j > 0]`` reads the layer's actual output
    ``z_j = sum_i z_ij + b_j``; an output with ``z_j = 0`` passes nothing and
    its ``R_j`` is booked as ``dropped`` (so is a zero denominator). The bias
    terms ``b + g b+`` and ``b + g b-`` are booked as ``absorbed_bias``;
    ``bias=False`` removes ``b`` from the denominators (the sign of ``z_j``
    still includes it, as in Zennit's ``zero_params='bias'``). There is no
    stabilizer. ``gamma = 0`` is LRP-0 (:class:`Zero`); with ``bias=False`` it
    is ``Zero(bias=False)`` except at outputs with ``z_j = 0``.

    For inputs ``a >= 0`` and outputs ``z_j > 0`` this is :class:`Gamma`
    (Montavon et al. 2019). They differ at negative outputs, which receive
    relevance wherever no ReLU follows the layer: a ResNet block's last
    convolution feeds the addition, and there Montavon's formula, which
    favours the contributions *against* the output's sign, gives shares that
    can be huge and of either sign (docs/peers.md, difference 3).

    When to use: wherever :class:`Gamma` would be used but a layer's outputs
    can be negative with relevance (residual networks, inputs of both signs);
    ``composites.epsilon_gamma_box`` uses it, as Zennit's ``EpsilonGammaBox``.

    Peers: equal to Zennit's ``Gamma`` (up to its stabilizer, see above).
    Captum and iNNvestigate have only Montavon's form. On a BatchNorm (one
    input per output) ``R_j`` is split between the input and the shift as
    the formula says.
    """

    gamma: float = 0.25
    bias: bool = True

    def __post_init__(self) -> None:
        check_epsilon("GeneralizedGamma: gamma", self.gamma)
        check_bias_flag(self.bias)

    def equation(self, a, patches, w, b, R):
        return equations.generalized_gamma(patches(a), w, b, R, self.gamma, self.bias)

    def parts(self) -> tuple[Part, ...]:
        up, down = AddPositive(float(self.gamma)), AddNegative(float(self.gamma))
        # z_j > 0: a+ (w + g w+) + a- (w + g w-) = z_ij + g z+_ij, bias b + g b+
        positive_half = Part(1.0, (Term(positive, up), Term(negative, down)),
                             up if self.bias else None, outputs=positive_outputs)
        # z_j < 0: a+ (w + g w-) + a- (w + g w+) = z_ij + g z-_ij, bias b + g b-
        negative_half = Part(1.0, (Term(positive, down), Term(negative, up)),
                             down if self.bias else None, outputs=negative_outputs)
        return (positive_half, negative_half)


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

    def equation(self, a, patches, w, b, R):
        return equations.z_box(patches(a), w, R, patches(Bound(self.low)(a)),
                                     patches(Bound(self.high)(a)))

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

    def equation(self, a, patches, w, b, R):
        return equations.flat(patches(np.ones_like(a)), w, R)

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

    def equation(self, a, patches, w, b, R):
        return equations.w_square(patches(np.ones_like(a)), w, R)

    def parts(self) -> tuple[Part, ...]:
        return (Part(1.0, (Term(ones, square),), None),)
