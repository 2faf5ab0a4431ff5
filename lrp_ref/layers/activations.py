"""Element-wise non-linearities ``a_j = f(z_j)``: relevance passes unchanged (the identity).

LRP treats the activation as part of its neuron (Bach et al. 2015): the
relevance of ``a_j = f(z_j)`` is the relevance of ``z_j``, ``R(z_j) = R(a_j)``.
This is Zennit's ``Pass`` rule and AttnLRP's identity rule for element-wise
non-linearities (Achtibat et al. 2024, "AttnLRP: attention-aware layer-wise
relevance propagation for transformers", ICML). The layers take no rule, like
ReLU; their ledger is empty (nothing absorbed, nothing dropped).

Where the identity departs from Gradient x Input. Through ``Dense -> f``,
LRP-0 (eq. (5) of docs/theory.md) gives ``R_i = z_ij / z_j * f(z_j)`` while
Gradient x Input gives ``z_ij * f'(z_j)``: the two agree exactly when
``f(z) = z f'(z)``, i.e. for positively homogeneous ``f`` (ReLU, LeakyReLU).
Elsewhere the layer conserves (``sum R_in = sum R_out``), but what it hands
down is ``f(z_j)``, not a decomposition of it:

* where ``f(z)`` and ``z`` have opposite signs (Sigmoid, Hardsigmoid and
  Softplus at ``z < 0``), every input's share changes sign (zennit issue 212:
  ``sigmoid(2 (-1) + 1 (1))`` gives the input that pushes the output down the
  positive relevance ``2 sigmoid(-1)``);
* where ``f(0) != 0`` (the same three), the relevance ``f(0)`` of a neuron with
  ``z_j = 0`` has no contribution to be split by: LRP-0 books it as ``dropped``;
* where ``f`` saturates (ReLU6 above 6, Hardsigmoid, Hardswish's upper side,
  Tanh, Sigmoid far out), relevance passes although the gradient is (nearly) 0.

The table of docs/conventions.md ("Element-wise non-linearities") lists this
per activation. Each class gives ``f`` and its exact derivative ``f'`` as torch
computes them in float64 (the same formulas, torch's one-sided conventions at
the kinks), written so that no intermediate overflows for finite input.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from .elementwise import PassThrough
from .erf import by_blocks, erf

Array = np.ndarray


def _sigmoid(z: Array) -> Array:
    """``1 / (1 + exp(-z))``, as ``e / (1 + e)`` with ``e = exp(z)`` for ``z < 0`` (no overflow)."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _softplus(t: Array) -> Array:
    """``log(1 + exp(t))`` without overflow (``logaddexp(0, t)``)."""
    return np.logaddexp(0, t)


class Activation(PassThrough):
    """An element-wise ``a = f(z)``: forward ``f``, backward ``f'``, relevance passed unchanged.

    A subclass defines :meth:`f` and :meth:`df` (the exact derivative) and, if it
    has parameters, names them in ``hyperparameter_names``; they are its hyperparameters
    (saved in model files) under torch's argument names.
    """

    #: The constructor's parameters (torch's names), saved as hyperparameters.
    hyperparameter_names: ClassVar[tuple[str, ...]] = ()

    def f(self, z: Array) -> Array:
        """The function, element-wise: ``a = f(z)``."""
        raise NotImplementedError

    def df(self, z: Array) -> Array:
        """Its exact derivative ``f'(z)``, element-wise (torch's values at the kinks)."""
        raise NotImplementedError

    def hyperparameters(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.hyperparameter_names}

    def _forward(self, a: Array) -> Array:
        return self.f(a).astype(a.dtype, copy=False)

    def _backward(self, grad_z: Array) -> Array:
        return (grad_z * self.df(self._input)).astype(grad_z.dtype, copy=False)


def _finite(layer: str, name: str, value: Any) -> float:
    """``value`` as a float, or a ValueError naming the layer type and the parameter."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{layer}: {name} must be finite, got {value}")
    return value


class LeakyReLU(Activation):
    """``f(z) = z`` for ``z > 0``, ``negative_slope * z`` else; ``f' = 1`` or ``negative_slope``.

    Positively homogeneous, ``f(z) = z f'(z)`` on both sides: the identity
    equals Gradient x Input through it (with LRP-0 below), also on the negative
    side, where the relevance ``negative_slope * z_j`` keeps the sign of ``z_j``
    times the slope's.
    """

    hyperparameter_names = ("negative_slope",)

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = _finite("LeakyReLU", "negative_slope", negative_slope)

    def f(self, z: Array) -> Array:
        return np.where(z > 0, z, z * self.negative_slope)

    def df(self, z: Array) -> Array:
        return np.where(z > 0, 1.0, self.negative_slope)


class ELU(Activation):
    """``f(z) = z`` for ``z > 0``, ``alpha (exp(z) - 1)`` else; ``f' = 1`` or ``alpha exp(z)``.

    ``f'(0) = alpha`` (torch's convention at the kink). On the positive side the
    identity equals Gradient x Input; on the negative side ``f(z) != z f'(z)``:
    the relevance handed down is ``alpha (exp(z_j) - 1)``, which keeps the sign
    of ``z_j`` (for ``alpha > 0``) but not the magnitude ``z_j alpha exp(z_j)``
    of Gradient x Input.
    """

    hyperparameter_names = ("alpha",)

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = _finite("ELU", "alpha", alpha)

    def f(self, z: Array) -> Array:
        return np.where(z > 0, z, self.alpha * np.expm1(np.minimum(z, 0)))

    def df(self, z: Array) -> Array:
        return np.where(z > 0, 1.0, self.alpha * np.exp(np.minimum(z, 0)))


class GELU(Activation):
    """``f(z) = z Phi(z)``, ``Phi`` the standard normal CDF; ``approximate="tanh"`` as torch.

    Exact (``approximate="none"``): ``Phi(z) = (1 + erf(z / sqrt 2)) / 2``,
    ``f'(z) = Phi(z) + z phi(z)``, ``phi(z) = exp(-z^2 / 2) / sqrt(2 pi)``.
    ``"tanh"``: ``f(z) = z (1 + tanh(u)) / 2``, ``u = sqrt(2/pi) (z + 0.044715 z^3)``,
    ``f'(z) = (1 + tanh(u)) / 2 + z (1 - tanh(u)^2) u'(z) / 2``.

    ``f(0) = 0`` and ``f`` keeps the sign of ``z``, but ``f(z) != z f'(z)``
    (they differ by ``z^2 phi(z)``): the identity hands down ``f(z_j)``, not
    Gradient x Input's ``z_j f'(z_j)``.
    """

    hyperparameter_names = ("approximate",)
    #: The constants as torch writes them (C's M_SQRT1_2, M_2_SQRTPI, M_SQRT2): the same
    #: roundings as torch. ``ERF_SCALE = 1/sqrt 2``, ``PDF_SCALE = 1/sqrt(2 pi)``,
    #: ``BETA = sqrt(2/pi)``; ``KAPPA`` the cubic coefficient of the tanh form.
    ERF_SCALE = 0.70710678118654752440
    PDF_SCALE = 1.12837916709551257390 * 0.70710678118654752440 * 0.5
    BETA = 1.41421356237309504880 * 1.12837916709551257390 * 0.5
    KAPPA = 0.044715
    #: Beyond these |z| the normal density underflows to 0 (exp(-800)) and the tanh form's
    #: tanh(u) is exactly +-1 in float64 (u > 19.1): clipping z there changes no value and
    #: keeps z^2 and z^3 finite (torch's tanh-form backward is NaN, 0 * inf, past 1.3e154).
    PDF_LIMIT, TANH_LIMIT = 40.0, 10.0

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh' (as torch), "
                             f"got {approximate!r}")
        self.approximate = approximate

    def _tanh_u(self, z: Array) -> tuple[Array, Array, Array]:
        """``z`` clipped where tanh is exactly +-1, ``tanh(u(z))`` and ``u'(z)``."""
        z = np.clip(z, -self.TANH_LIMIT, self.TANH_LIMIT)
        z2 = z * z
        return (z, np.tanh(self.BETA * (z + self.KAPPA * (z2 * z))),
                self.BETA * (1 + 3 * self.KAPPA * z2))

    def _cdf(self, z: Array) -> Array:
        """``(1 + erf(z / sqrt 2)) / 2`` in float64, ``math.erf``'s bits (in place: the
        same roundings as ``0.5 * (1 + erf)``, without two more arrays)."""
        cdf = erf(z * self.ERF_SCALE)
        cdf += 1
        cdf *= 0.5
        return cdf

    def f(self, z: Array) -> Array:
        if self.approximate == "tanh":
            return 0.5 * z * (1 + self._tanh_u(z)[1])
        # in z's dtype, computed in float64 block by block (erf.by_blocks: no output-sized
        # float64 array, whose fresh pages cost more than the products on it)
        return by_blocks(lambda zb: zb * self._cdf(zb), z)

    def df(self, z: Array) -> Array:
        if self.approximate == "tanh":
            zc, t, du = self._tanh_u(z)          # the second term is 0 beyond the clip
            return 0.5 * (1 + t) + (0.5 * zc) * (1 - t * t) * du
        zc = np.clip(z, -self.PDF_LIMIT, self.PDF_LIMIT)
        return self._cdf(z) + zc * (self.PDF_SCALE * np.exp(zc * zc * -0.5))


class SiLU(Activation):
    """``f(z) = z sigmoid(z)`` (Swish); ``f' = s (1 + z (1 - s))``, ``s = sigmoid(z)``.

    ``f(0) = 0``, sign of ``z`` kept; ``f(z) != z f'(z)``: the identity hands
    down ``f(z_j)``, Gradient x Input ``z_j f'(z_j)``.
    """

    def f(self, z: Array) -> Array:
        return z * _sigmoid(z)

    def df(self, z: Array) -> Array:
        s = _sigmoid(z)
        return s * (1 + z * (1 - s))


class Hardsigmoid(Activation):
    """``f(z) = min(max(z + 3, 0), 6) / 6``; ``f' = 1/6`` on ``-3 < z < 3``, else 0.

    ``f(0) = 1/2 > 0`` and ``f > 0`` where ``z < 0`` (as Sigmoid): shares change
    sign below, and a neuron with ``z_j = 0`` carries relevance with no
    contribution to split. Saturated (``|z| >= 3``), relevance passes although
    the gradient is 0.
    """

    def f(self, z: Array) -> Array:
        return np.minimum(np.maximum(z + 3, 0), 6) / 6

    def df(self, z: Array) -> Array:
        return np.where((z > -3) & (z < 3), 1 / 6, 0.0)


class Hardswish(Activation):
    """``f(z) = z min(max(z + 3, 0), 6) / 6``; ``f' = 0`` (z <= -3), ``z/3 + 1/2`` (z < 3), 1.

    (torch's one-sided values at the kinks: ``f'(-3) = 0``, ``f'(3) = 1``.)
    ``f(0) = 0``, sign of ``z`` kept. Above 3 it is the identity (relevance and
    Gradient x Input agree); below -3 both are 0; in between the identity hands
    down ``f(z_j)``, Gradient x Input ``z_j f'(z_j)``.
    """

    def f(self, z: Array) -> Array:
        return z * np.minimum(np.maximum(z + 3, 0), 6) / 6

    def df(self, z: Array) -> Array:
        return np.where(z <= -3, 0.0, np.where(z < 3, z / 3 + 0.5, 1.0))


class ReLU6(Activation):
    """``f(z) = min(max(z, 0), 6)``; ``f' = 1`` on ``0 < z < 6``, else 0 (torch's hardtanh).

    Below 6 it is a ReLU (identity = Gradient x Input). Saturated (``z_j >= 6``),
    the relevance ``6`` passes to ``z_j`` although the gradient is 0: Gradient x
    Input gives such a unit nothing, the identity all of it.
    """

    def f(self, z: Array) -> Array:
        return np.minimum(np.maximum(z, 0), 6)

    def df(self, z: Array) -> Array:
        return ((z > 0) & (z < 6)).astype(np.float64)


class Tanh(Activation):
    """``f(z) = tanh(z)``; ``f' = 1 - tanh(z)^2``.

    ``f(0) = 0``, sign of ``z`` kept, but saturating: for large ``|z_j|`` the
    relevance ``+-1`` passes although the gradient is nearly 0.
    """

    def f(self, z: Array) -> Array:
        return np.tanh(z)

    def df(self, z: Array) -> Array:
        y = np.tanh(z)
        return 1 - y * y


class Sigmoid(Activation):
    """``f(z) = 1 / (1 + exp(-z))``; ``f' = f (1 - f)``.

    ``f > 0`` everywhere and ``f(0) = 1/2``: at ``z_j < 0`` every share
    ``z_ij / z_j`` changes sign (zennit issue 212, worked in docs/conventions.md),
    and at ``z_j = 0`` the relevance ``1/2`` has no contribution to split (LRP-0
    books it as ``dropped``). Saturated, relevance passes where the gradient
    vanishes.
    """

    def f(self, z: Array) -> Array:
        return _sigmoid(z)

    def df(self, z: Array) -> Array:
        y = _sigmoid(z)
        return y * (1 - y)


class Softplus(Activation):
    """``f(z) = log(1 + exp(beta z)) / beta``, and ``z`` where ``beta z > threshold`` (torch).

    ``f' = sigmoid(beta z)``, and 1 above the threshold. ``f > 0`` everywhere
    (``beta > 0``) and ``f(0) = log(2) / beta``: as Sigmoid, shares change sign
    at ``z_j < 0`` and a neuron at ``z_j = 0`` carries relevance with no
    contribution to split. Above the threshold it is the identity (relevance and
    Gradient x Input agree).
    """

    hyperparameter_names = ("beta", "threshold")

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        beta = float(beta)
        if beta == 0 or not math.isfinite(beta):
            raise ValueError(f"Softplus: beta must be a finite non-zero number, got {beta}")
        self.beta = beta
        self.threshold = _finite("Softplus", "threshold", threshold)

    def f(self, z: Array) -> Array:
        t = self.beta * z
        return np.where(t > self.threshold, z, _softplus(t) / self.beta)

    def df(self, z: Array) -> Array:
        t = self.beta * z
        return np.where(t > self.threshold, 1.0, _sigmoid(t))


class Mish(Activation):
    """``f(z) = z t``, ``t = tanh(softplus(z))``; ``f' = t + z sigmoid(z) (1 - t^2)``.

    ``f(0) = 0``, sign of ``z`` kept; ``f(z) != z f'(z)``: the identity hands
    down ``f(z_j)``, Gradient x Input ``z_j f'(z_j)``.
    """

    def f(self, z: Array) -> Array:
        return z * np.tanh(_softplus(z))

    def df(self, z: Array) -> Array:
        t = np.tanh(_softplus(z))
        return t + z * _sigmoid(z) * (1 - t * t)


#: Every activation class, in the order of the docs' table.
ACTIVATIONS = (LeakyReLU, ELU, GELU, SiLU, Hardswish, Hardsigmoid, ReLU6, Tanh, Sigmoid,
               Softplus, Mish)

__all__ = ["ACTIVATIONS", "ELU", "GELU", "Activation", "Hardsigmoid", "Hardswish", "LeakyReLU",
           "Mish", "ReLU6", "SiLU", "Sigmoid", "Softplus", "Tanh"]
