"""Batch normalization at inference: a per-element affine map ``y = a x + c``.

With the running statistics frozen, ``BatchNorm`` computes (PyTorch's
``BatchNorm1d``/``BatchNorm2d`` in ``eval()`` mode)::

    y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta
      = a * x + c,        a = gamma / sqrt(running_var + eps),
                          c = beta - a * running_mean

per channel. For LRP this is a linear layer in which every input element
``x_i`` feeds exactly one output ``y_j`` (``i = j``) with weight ``a`` and bias
``c``, so ``z_ij = a x_i`` and ``z_j = a x_i + c``. docs/theory.md (section 6)
names BatchNorm as a case where plain LRP breaks; there are three treatments:

affine rule (any linear rule, e.g. ``Epsilon``)
    The shift ``c`` is a bias like any other. LRP-0 gives
    ``R_in = a x / (a x + c) * R_out`` and books ``c / (a x + c) * R_out`` as
    ``absorbed_bias`` in the ledger. When ``a x`` and ``c`` have the same sign,
    ``0 < a x / y < 1`` and the shift *absorbs* a part of the relevance. When
    they have opposite signs, ``|a x| > |y|``: the input receives *more*
    relevance than arrived (the ratio exceeds 1, or is negative when ``c``
    flips the sign of ``y``) and the shift's ledger entry is negative — it
    *injects* relevance. Near ``y = 0`` the ratio explodes; only the
    stabilizer (``Epsilon``) bounds it. This is Captum's treatment of
    ``BatchNorm2d``.
``Pass()``
    ``R_in = R_out``: the shift is never absorbed and nothing is injected; the
    layer below shares the relevance out in proportion to its own
    (pre-BatchNorm) contributions. Zennit's composites do this.
folded (``lrp_ref.canonize.merge_batchnorm``)
    The map is merged into the preceding Dense/Conv2d (``W' = W a``,
    ``b' = a b + c``), so the rule of that layer sees one bias ``b'`` and one
    stabilizer. Under LRP-0 this gives the same input relevance as the affine
    treatment (the factor ``a`` cancels), with the absorbed bias booked at one
    layer instead of two; under other rules the two differ.

Only ``gamma`` and ``beta`` are trainable: after ``backward``, ``grad_gamma``
and ``grad_beta`` give their gradients; the running statistics get no gradient (inference mode).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..checks import float_dtype
from .base import ParameterGradient, as_float_array, check_finite
from .linear import LinearLayer

Array = np.ndarray


class BatchNorm(LinearLayer):
    """Inference-mode batch normalization over axis 1 of a ``(B, C, ...)`` input.

    The subclasses fix the input rank: :class:`BatchNorm1d` ``(B, C)`` and
    :class:`BatchNorm2d` ``(B, C, H, W)``. The engine sees the per-channel
    scale ``a`` as ``weight`` and the shift ``c`` as ``bias`` (module docstring).

    Parameters
    ----------
    gamma, beta, running_mean, running_var : array_like, shape (C,)
        PyTorch's ``weight``, ``bias``, ``running_mean`` and ``running_var``.
    eps : float
        Added to the variance, ``>= 0`` (PyTorch's default 1e-5);
        ``running_var + eps`` must be positive.
    """

    array_names = ("gamma", "beta", "running_mean", "running_var")
    parameter_names = ("gamma", "beta")
    grad_gamma = ParameterGradient()
    grad_beta = ParameterGradient()
    preserves_shape = True
    #: The rank of the input, batch axis included.
    input_rank: ClassVar[int] = 2

    def __init__(self, gamma: Any, beta: Any, running_mean: Any, running_var: Any,
                 eps: float = 1e-5) -> None:
        super().__init__()
        name = type(self).__name__
        g = np.asarray(gamma)
        dtype = float_dtype(g)
        self.gamma = as_float_array(g, dtype, name)
        if self.gamma.ndim != 1:
            raise ValueError(f"{name}: gamma must have shape (C,), got {self.gamma.shape}")
        for arg, value in (("beta", beta), ("running_mean", running_mean),
                           ("running_var", running_var)):
            array = as_float_array(value, dtype, name)
            if array.shape != self.gamma.shape:
                raise ValueError(f"{name}: {arg} must have shape {self.gamma.shape} like gamma, "
                                 f"got {array.shape}")
            setattr(self, arg, array)
        for arg in self.array_names:
            check_finite(arg, getattr(self, arg), name)
        if not (isinstance(eps, (int, float)) and np.isfinite(eps) and eps >= 0):
            raise ValueError(f"{name}: eps must be a finite number >= 0, got {eps!r}")
        self.eps = float(eps)
        if np.any(self.running_var + self.eps <= 0):
            raise ValueError(f"{name}: running_var + eps must be > 0 in every channel, got "
                             f"running_var={self.running_var.tolist()}, eps={self.eps}")

    def hyperparameters(self) -> dict[str, Any]:
        return {"eps": self.eps}

    def expected_input_shape(self) -> tuple[int | None, ...]:
        return (None, self.gamma.shape[0]) + (None,) * (self.input_rank - 2)

    @property
    def weight(self) -> Array:
        """The per-channel scale ``a = gamma / sqrt(running_var + eps)``."""
        return self.gamma / np.sqrt(self.running_var + self.eps)

    @property
    def bias(self) -> Array:
        """The per-channel shift ``c = beta - a * running_mean``."""
        return self.beta - self.weight * self.running_mean

    def _per_channel(self, v: Array, ndim: int) -> Array:
        """A ``(C,)`` vector shaped to broadcast over ``(B, C, ...)`` of ``ndim`` axes."""
        return v.reshape(v.shape + (1,) * (ndim - 2))

    def _forward(self, x: Array) -> Array:
        return self._per_channel(self.weight, x.ndim) * x + self._per_channel(self.bias, x.ndim)

    def _compute_parameter_gradients(self, x: Array, grad_z: Array) -> dict[str, Array]:
        # y = gamma * x_hat + beta with x_hat = (x - mean) / sqrt(var + eps):
        # dL/dgamma = sum over batch and positions of dL/dy * x_hat, dL/dbeta = sum of dL/dy
        axes = (0,) + tuple(range(2, x.ndim))
        x_hat = ((x - self._per_channel(self.running_mean, x.ndim))
                 / self._per_channel(np.sqrt(self.running_var + self.eps), x.ndim))
        return {"gamma": (grad_z * x_hat).sum(axis=axes), "beta": grad_z.sum(axis=axes)}

    # -- the maps of the linear-rule engine --------------------------------------------
    # z_ij is nonzero only for i = j: z_j = a_j x_j. The fast path multiplies
    # element-wise; the explicit path treats every element as its own output
    # position (P = C*H*W) with one input (K = 1) and one output (J = 1).

    def linear(self, x: Array, w: Array) -> Array:
        return x * self._per_channel(w, x.ndim)

    def linear_T(self, s: Array, w: Array) -> Array:
        return s * self._per_channel(w, s.ndim)

    def expand_bias(self, b: Array) -> Array:
        return self._per_channel(b, self._input.ndim)

    def patches(self, x: Array) -> Array:
        return x.reshape(x.shape[0], -1, 1)

    def fold(self, cols: Array) -> Array:
        return cols.reshape((cols.shape[0],) + self._input.shape[1:])

    def weight_pkj(self, w: Array) -> Array:
        return np.broadcast_to(self._per_channel(w, self._input.ndim),
                               self._input.shape[1:]).reshape(-1, 1, 1)

    def output_pj(self, z: Array) -> Array:
        return z.reshape(z.shape[0], -1, 1)

    def output_from_pj(self, z_pj: Array) -> Array:
        return z_pj.reshape((z_pj.shape[0],) + self._input.shape[1:])


class BatchNorm1d(BatchNorm):
    """Batch normalization of ``(B, F)`` features, ``y = a x + c`` per feature, or of
    ``(B, C, L)`` sequences (after a :class:`~lrp_ref.Conv1d`), per channel, as torch's
    ``BatchNorm1d`` accepts both.

    See :class:`BatchNorm` for the parameters and the module docstring for the
    three LRP treatments (affine rule, ``Pass()``, folded).
    """

    input_rank = 2

    def _check_input(self, a: Any) -> Array:
        if np.ndim(a) != 3:
            return super()._check_input(a)
        # (B, C, L): the channel axis is checked here, the rest as for (B, C)
        C = self.gamma.shape[0]
        if np.shape(a)[1] != C:
            raise ValueError(f"{self.where}: expected input of shape (B, {C}) or "
                             f"(B, {C}, *), got {np.shape(a)}")
        a = as_float_array(a, self.dtype, self.where)
        check_finite("input", a, self.where)
        return a


class BatchNorm2d(BatchNorm):
    """Batch normalization of ``(B, C, H, W)`` images, ``y = a x + c`` per channel.

    See :class:`BatchNorm` for the parameters and the module docstring for the
    three LRP treatments (affine rule, ``Pass()``, folded).
    """

    input_rank = 4
