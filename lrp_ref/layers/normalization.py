"""LayerNorm and RMSNorm: ``1/sigma`` held constant, the rest a linear map (AttnLRP, CP-LRP).

``LayerNorm`` computes (PyTorch's ``nn.LayerNorm``), over the trailing axes of the
shape of ``gamma`` (torch's ``normalized_shape``; ``N`` elements per group)::

    mu = mean(x),  sigma = sqrt(mean((x - mu)^2) + eps),  y = gamma (x - mu) / sigma + beta

and ``RMSNorm`` (``nn.RMSNorm``) ``y = gamma x / sigma`` with ``sigma = sqrt(mean(x^2) + eps)``.

For relevance ``sigma`` is a constant (Ali et al. 2022, "XAI for Transformers:
Better Explanations through Conservative Propagation", ICML, sec. 3; Achtibat
et al. 2024, "AttnLRP", ICML, Prop. 3.4: the identity rule on the scaling).
What remains is linear in ``x`` and gets the layer's rule, ``Epsilon(eps)`` or
``Zero()``, in two steps (:func:`lrp_ref.rules.transformer_equations.layer_norm`)::

    affine     R(xhat_j) = h_j / (y_j + eps sign(y_j)) R_j,    h_j = gamma_j xhat_j, bias beta_j
    centring   R_i = sum_j x_i (delta_ij - 1/N) / (x_j - mu + eps sign(x_j - mu)) R(xhat_j)

Exactly what is constant: ``sigma`` (its dependence on every ``x_i``), ``gamma``
and ``beta``; ``mu`` is not (``detach_mean=True`` holds it constant too, as
CP-LRP's code option ``LNargsDetach``: the centring becomes
``R_i = x_i / (x_i - mu + eps sign) R(xhat_i)`` with ``-mu`` as a bias).
``Pass()`` hands ``R`` through unchanged (LXT's rule for RMSNorm and
``F.normalize``). With ``Zero()`` and ``beta = 0`` LayerNorm conserves
exactly; ``beta`` is booked as ``absorbed_bias``, the stabilizers of both
steps as ``absorbed_stabilizer``. ``backward`` is the true gradient (``sigma``
not held constant).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..audit import Ledger
from ..checks import float_dtype
from ..engine.kernels import quotient
from ..engine.linear import check_explicit_size
from ..rules import Epsilon, Pass, Rule, Zero, describe
from ..rules import transformer_equations as equations
from ..rules.transformer_equations import terms_ledger
from .base import Layer, ParameterGradient, as_float_array, check_finite
from .calls import Kept

Array = np.ndarray


class Normalization(Layer):
    """The shared part of :class:`LayerNorm` and :class:`RMSNorm` (module docstring).

    Subclasses implement ``_centred(x3)`` (``x - mu``, or ``x``),
    ``_explicit(x3, sigma, R3, eps, beta)`` (the literal function) and
    ``_fast(x3, R3, eps, beta)`` on groups ``(B, M, N)``; ``sigma = sqrt(mean(c^2) +
    eps)`` of the centred ``c`` is the same for both.
    """

    takes_rule = True
    parameter_names = ("gamma",)
    grad_gamma = ParameterGradient()
    #: The forward's ``c`` (``x - mu`` or ``x``), ``sigma`` and ``h = gamma c / sigma``, on
    #: groups: held constant or reused by relevance and backward (per call).
    _c = Kept()
    _sigma = Kept()
    _h = Kept()

    def __init__(self, gamma: Any, eps: float = 1e-5) -> None:
        super().__init__()
        name = type(self).__name__
        g = np.asarray(gamma)
        self.gamma = as_float_array(g, float_dtype(g), name)
        if self.gamma.ndim < 1:
            raise ValueError(f"{name}: gamma must have the normalised shape (at least one "
                             f"axis), got a scalar")
        check_finite("gamma", self.gamma, name)
        if not (isinstance(eps, (int, float)) and np.isfinite(eps) and eps >= 0):
            raise ValueError(f"{name}: eps must be a finite number >= 0, got {eps!r}")
        self.eps = float(eps)

    def hyperparameters(self) -> dict[str, Any]:
        return {"eps": self.eps}

    def _check_input(self, a: Any) -> Array:
        a = super()._check_input(a)
        k = self.gamma.ndim
        if a.ndim < k + 1 or a.shape[-k:] != self.gamma.shape:
            raise ValueError(f"{self.where}: expected input of shape (B, ..., "
                             f"{', '.join(map(str, self.gamma.shape))}), got {a.shape}")
        return a

    def groups(self, x: Array) -> Array:
        """``x`` as ``(B, M, N)``: ``M`` groups of the ``N = gamma.size`` normalised elements."""
        return x.reshape(x.shape[0], -1, self.gamma.size)

    def _affine(self) -> tuple[Array, Array]:
        """``gamma`` and ``beta`` flattened to ``(N,)``."""
        return self.gamma.reshape(-1), self.beta.reshape(-1)

    def _forward(self, x: Array) -> Array:
        x3 = self.groups(x)
        gamma, beta = self._affine()
        self._c = self._centred(x3)
        self._sigma = np.sqrt((self._c ** 2).mean(axis=2, keepdims=True) + self.eps)
        self._h = gamma * self._c / self._sigma
        return (self._h + beta).reshape(x.shape)

    def check_rule(self, rule: Rule | None) -> None:
        super().check_rule(rule)
        if not isinstance(rule, (Zero, Epsilon, Pass)):
            raise ValueError(f"{self.where} applies Epsilon(), Zero() or Pass() (sigma held "
                             f"constant, the rest linear), got {describe(rule)}")

    def _relevance(self, R: Array, rule: Rule | None, method: str) -> tuple[Array, Ledger]:
        self.check_rule(rule)
        if isinstance(rule, Pass):
            return R, self._no_loss(R)
        x3, R3 = self.groups(self._input), self.groups(R)
        eps = rule.epsilon if isinstance(rule, Epsilon) else 0.0
        beta = self._affine()[1] * rule.bias                 # bias=False: beta is 0 in the rule
        if method == "explicit":
            R_in, terms = self._explicit(x3, self._sigma, R3, eps, beta)
            ledger = terms_ledger(terms, R)
        else:
            R_in, ledger = self._fast(x3, R3, eps, beta)
        return R_in.reshape(self._input.shape), ledger

    def _backward(self, grad_z: Array) -> Array:
        g = self.groups(grad_z)
        sigma = self._sigma
        x_hat = self._c / sigma
        gamma = self._affine()[0]
        g_hat = g * gamma                                    # dL/dxhat
        # LayerNorm: d xhat_j / d x_i = (delta_ij - 1/N - xhat_i xhat_j / N) / sigma, so
        # dL/dx = (g - mean(g) - xhat mean(g xhat)) / sigma; RMSNorm: without "- mean(g)"
        grad = (self._centred(g_hat) - x_hat * (g_hat * x_hat).mean(axis=2, keepdims=True)) / sigma
        self._parameter_gradients = self._parameter_grads(g, x_hat)
        return grad.reshape(self._input.shape)

    def _parameter_grads(self, g: Array, x_hat: Array) -> dict[str, Array]:
        return {"gamma": (g * x_hat).sum(axis=(0, 1)).reshape(self.gamma.shape)}

    # -- what the subclasses define ----------------------------------------------------------

    def _centred(self, x3: Array) -> Array:
        raise NotImplementedError


class LayerNorm(Normalization):
    """``y = gamma (x - mu) / sigma + beta`` over the trailing axes of ``gamma.shape``.

    Rules (module docstring): ``Epsilon(eps)`` / ``Zero()`` on the affine step
    and on the centring with ``sigma`` constant, or ``Pass()``.

    Example (``Zero()``, ``gamma = 1``, ``beta = 0``): ``x = (1, 2, 6)``, ``mu = 3``,
    ``R = (1, 2, 3)``: ``s_j = R_j / (x_j - mu) = (-1/2, -2, 1)``, mean ``-1/2``, and
    ``R_i = x_i (s_i - mean s) = (0, -3, 9)``, summing to 6 as ``R`` does.

    Parameters
    ----------
    gamma : array_like
        torch's ``weight``; its shape is the normalised shape (ones for
        ``elementwise_affine=False``).
    beta : array_like, optional
        torch's ``bias`` (zeros when None).
    eps : float
        Added to the variance (torch's default 1e-5).
    detach_mean : bool
        Hold ``mu`` constant as well (CP-LRP's ``LNargsDetach``); default False.
    """

    array_names = ("gamma", "beta")
    parameter_names = ("gamma", "beta")
    grad_beta = ParameterGradient()

    def __init__(self, gamma: Any, beta: Any = None, eps: float = 1e-5,
                 detach_mean: bool = False) -> None:
        super().__init__(gamma, eps)
        self.beta = (np.zeros_like(self.gamma) if beta is None
                     else as_float_array(beta, self.gamma.dtype, "LayerNorm"))
        if self.beta.shape != self.gamma.shape:
            raise ValueError(f"LayerNorm: beta must have gamma's shape {self.gamma.shape}, "
                             f"got {self.beta.shape}")
        check_finite("beta", self.beta, "LayerNorm")
        if not isinstance(detach_mean, bool):
            raise TypeError(f"LayerNorm: detach_mean must be True or False, got {detach_mean!r}")
        self.detach_mean = detach_mean

    def hyperparameters(self) -> dict[str, Any]:
        return {"eps": self.eps, "detach_mean": self.detach_mean}

    def _centred(self, x3: Array) -> Array:
        return x3 - x3.mean(axis=2, keepdims=True)

    def _parameter_grads(self, g: Array, x_hat: Array) -> dict[str, Array]:
        return {**super()._parameter_grads(g, x_hat),
                "beta": g.sum(axis=(0, 1)).reshape(self.beta.shape)}

    def _explicit(self, x3, sigma, R3, eps, beta):
        check_explicit_size(self.where, x3.shape + x3.shape[-1:], x3.itemsize)     # z_ij
        return equations.layer_norm(x3, self._affine()[0], beta, sigma, R3, eps,
                                    self.detach_mean)

    def _fast(self, x3: Array, R3: Array, eps: float, beta: Array) -> tuple[Array, Ledger]:
        c, h = self._c, self._h                              # x - mu, gamma c / sigma
        # s_j = R_j / (y_j + eps sign y_j)
        s, affine = quotient(R3, h, beta, eps, self.where)
        R_c = h * s                                          # R(xhat_j) = R(c_j)
        if self.detach_mean:                                 # c_i = x_i + (-mu): -mu a bias
            mu = x3.mean(axis=2, keepdims=True)
            s_c, centring = quotient(R_c, x3, -mu, eps, self.where)
            return x3 * s_c, affine + centring
        # s_j = R(c_j) / (c_j + eps sign c_j)
        s_c, centring = quotient(R_c, c, None, eps, self.where)
        # R_i = x_i sum_j (delta_ij - 1/N) s_j = x_i (s_i - mean_j s_j)
        return x3 * (s_c - s_c.mean(axis=2, keepdims=True)), affine + centring


class RMSNorm(Normalization):
    """``y = gamma x / sigma``, ``sigma = sqrt(mean(x^2) + eps)``, over ``gamma``'s trailing axes.

    With ``sigma`` constant the layer is element-wise linear without bias:
    ``Epsilon(eps)`` gives ``R_i = y_i / (y_i + eps sign(y_i)) R_i``, ``Zero()`` and
    ``Pass()`` the identity (LXT's ``rms_norm_identity``).

    Parameters
    ----------
    gamma : array_like
        torch's ``weight`` (ones for ``elementwise_affine=False``).
    eps : float
        Added to ``mean(x^2)``; torch's default None means the dtype's machine
        epsilon: give it explicitly (1e-6 in many language models).
    """

    array_names = ("gamma",)

    @property
    def beta(self) -> Array:
        """RMSNorm has no shift: zeros."""
        return np.zeros_like(self.gamma)

    def _centred(self, x3: Array) -> Array:
        return x3

    def _explicit(self, x3, sigma, R3, eps, beta):
        return equations.rms_norm(x3, self._affine()[0], sigma, R3, eps)

    def _fast(self, x3: Array, R3: Array, eps: float, beta: Array) -> tuple[Array, Ledger]:
        y = self._h                                          # gamma x / sigma
        s, ledger = quotient(R3, y, None, eps, self.where)
        return y * s, ledger
