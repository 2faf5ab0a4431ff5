"""The transformer rules written out: one short, literal NumPy function per rule.

The sibling of :mod:`lrp_ref.rules.equations` for the operations of a
transformer that are not a linear layer: normalisation, softmax and the
products of two activations. Sources: AttnLRP (Achtibat et al., "AttnLRP:
Attention-Aware Layer-Wise Relevance Propagation for Transformers", ICML 2024;
Props. 3.1-3.4) and CP-LRP (Ali et al., "XAI for Transformers: Better
Explanations through Conservative Propagation", ICML 2022). docs/transformers.md
derives each rule and its ledger.

Every function materialises what its equation sums over (the ``N x N``
contributions of a LayerNorm's centring, the Jacobian of a softmax, the
``z_jip = a_ji b_ip`` of a matrix product): they are the ``method="explicit"``
path of the layers in :mod:`lrp_ref.layers.normalization` and
:mod:`lrp_ref.layers.attention`, whose ``method="fast"`` computes the same
numbers factorised; tests check that the two agree. Each returns the input
relevance and the :class:`~lrp_ref.rules.equations.Terms` of the ledger (one
array per output element; None is 0). A zero denominator passes nothing down
and its relevance is ``dropped``, as in :mod:`lrp_ref.rules.equations`.
"""

from __future__ import annotations

import numpy as np

from ..audit import Ledger, per_sample_sum
from .equations import Terms, dropped, ratio, sign

Array = np.ndarray


def stabilized(z: Array, epsilon: float) -> tuple[Array, Array]:
    """``(d, eps)``: ``eps = epsilon sign(z)``, ``d = z + eps`` (eq. (6), ``sign(0) := +1``)."""
    eps = epsilon * sign(z)
    return z + eps, eps


def terms_ledger(terms: Terms, R: Array) -> Ledger:
    """The per-sample :class:`~lrp_ref.audit.Ledger` of a function's per-element ``Terms``."""
    none = np.zeros(R.shape[0], R.dtype)
    return Ledger(*(none if t is None else per_sample_sum(t)
                    for t in (terms.bias, terms.stabilizer, terms.dropped)))


def layer_norm(x: Array, gamma: Array, beta: Array, sigma: Array, R: Array, epsilon: float,
               detach_mean: bool = False) -> tuple[Array, Terms]:
    """LayerNorm with ``1/sigma`` constant (AttnLRP Prop. 3.4; CP-LRP, Ali et al. 2022, sec. 3).

    ``x``, ``R``: ``(B, M, N)``, each of the ``M`` groups of ``N`` elements normalised on
    its own; ``gamma``, ``beta``: ``(N,)``; ``sigma``: ``(B, M, 1)``, the forward's
    ``sqrt(var + eps)``, a constant of the rule. The forward
    ``y_j = gamma_j (x_j - mu) / sigma + beta_j`` is read as three steps::

        affine     y_j = h_j + beta_j,  h_j = gamma_j xhat_j:
                   R(xhat_j) = h_j / (y_j + eps sign(y_j)) R_j            eq. (6), bias beta_j
        1/sigma    xhat_j = c_j / sigma, sigma constant:  R(c_j) = R(xhat_j)   (identity)
        centring   c_j = sum_i z_ij,  z_ij = x_i (delta_ij - 1/N):
                   R_i = sum_j z_ij / (c_j + eps sign(c_j)) R(c_j)        eq. (6), no bias

    With ``epsilon = 0`` the centring step is Ali et al.'s
    ``R_i = sum_j x_i (delta_ij - 1/N) / (x_j - mu) R_j``. ``detach_mean`` also
    holds ``mu`` constant (the option ``LNargsDetach`` of CP-LRP's code): then
    ``z_ij = x_i delta_ij`` and ``-mu`` is the bias of ``c_j``. Ledger: ``beta`` (and
    ``-mu``) as bias, both steps' stabilizers, zero denominators dropped.
    """
    N = x.shape[2]
    mu = x.mean(axis=2, keepdims=True)
    h = gamma * (x - mu) / sigma                      # h_j = gamma_j xhat_j
    y = h + beta                                      # y_j = h_j + beta_j
    d_y, eps_y = stabilized(y, epsilon)
    R_c = ratio(h, d_y) * R                           # affine step; identity on 1/sigma
    w = np.eye(N) if detach_mean else np.eye(N) - 1 / N
    b = -mu if detach_mean else np.zeros_like(mu)     # the bias of the centring
    z_ij = x[..., :, None] * w                        # z_ij = x_i w_ij, (B, M, N_i, N_j)
    c = z_ij.sum(axis=2) + b                          # c_j = sum_i z_ij + b_j
    d_c, eps_c = stabilized(c, epsilon)
    R_i = (ratio(z_ij, d_c[:, :, None, :]) * R_c[:, :, None, :]).sum(axis=3)
    return R_i, Terms(bias=ratio(beta, d_y) * R + ratio(b, d_c) * R_c,
                      stabilizer=ratio(eps_y, d_y) * R + ratio(eps_c, d_c) * R_c,
                      dropped=dropped(R, d_y) + dropped(R_c, d_c))


def rms_norm(x: Array, gamma: Array, sigma: Array, R: Array, epsilon: float
             ) -> tuple[Array, Terms]:
    """RMSNorm with ``1/sigma`` constant (AttnLRP Prop. 3.4), ``sigma = sqrt(mean(x^2) + eps)``.

    ``y_j = gamma_j x_j / sigma`` has no centring: with ``sigma`` constant it is an
    element-wise linear map without bias, and eq. (6) gives::

        R_i = y_i / (y_i + eps sign(y_i)) R_i

    the identity for ``epsilon = 0`` (LXT's ``rms_norm_identity``). Shapes as
    :func:`layer_norm`.
    """
    y = gamma * x / sigma
    d, eps = stabilized(y, epsilon)
    return ratio(y, d) * R, Terms(stabilizer=ratio(eps, d) * R, dropped=dropped(R, d))


def softmax(x: Array, R: Array, blocked: Array | None = None) -> tuple[Array, Terms]:
    """AttnLRP's softmax rule (Prop. 3.1), ``s = softmax(x)`` over the last axis::

        R_i = sum_j x_i (delta_ij - s_i) R_j  =  x_i (R_i - s_i sum_j R_j)

    It is Gradient x Input of ``sum_j s_j(x) R_j / s_j`` with ``R_j / s_j`` held
    constant (``ds_j/dx_i = s_j (delta_ij - s_i)``): a first-order Taylor
    expansion of each ``s_j`` at ``x`` whose zero-order part (the "bias") takes
    the rest of ``R_j``. Output ``j`` hands down ``(x_j - sum_i s_i x_i) R_j``; the
    ledger books its bias ::

        b_j = (1 - x_j + sum_i s_i x_i) R_j

    which is negative where the rule creates relevance: the rule does not conserve.
    ``blocked`` (an attention mask, shaped like ``x``): those positions take no part,
    ``s_i = 0``, and the caller gives them ``x_i = 0`` and ``R_i = 0``.
    """
    N = x.shape[-1]
    top = (x if blocked is None else np.where(blocked, -np.inf, x)).max(axis=-1, keepdims=True)
    e = np.exp(x - top) if blocked is None else np.where(blocked, 0, np.exp(x - top))
    s = e / e.sum(axis=-1, keepdims=True)
    R_ij = x[..., :, None] * (np.eye(N) - s[..., :, None]) * R[..., None, :]   # R_i<-j
    x_bar = (s * x).sum(axis=-1, keepdims=True)                               # sum_i s_i x_i
    return R_ij.sum(axis=-1), Terms(bias=(1 - x + x_bar) * R)


def matmul(a: Array, b: Array, R: Array, epsilon: float, constant: int | None = None
           ) -> tuple[tuple[Array, Array], Terms]:
    """The product ``O = a b`` of two activations, ``O_jp = sum_i a_ji b_ip`` (last two axes).

    Each term ``z_jip = a_ji b_ip`` takes its share of ``R_jp`` by eq. (6) on the
    bilinear form, and that share goes to its factors (AttnLRP Prop. 3.3)::

        R(a_ji) = sum_p  f_a z_jip / (O_jp + eps sign(O_jp)) R_jp
        R(b_ip) = sum_j  f_b z_jip / (O_jp + eps sign(O_jp)) R_jp

    ``constant=None``: the uniform split ``f_a = f_b = 1/2`` (AttnLRP);
    ``constant=0``: ``a`` held constant, ``f_a = 0, f_b = 1`` (CP-LRP's ``A V``, the
    attention weights ``A`` detached: all relevance flows along the value path);
    ``constant=1``: ``f_a = 1, f_b = 0``. Ledger: the stabilizer's share, zero
    ``O_jp`` (with ``epsilon = 0``) dropped.
    """
    f_a, f_b = {None: (0.5, 0.5), 0: (0.0, 1.0), 1: (1.0, 0.0)}[constant]
    z = a[..., :, :, None] * b[..., None, :, :]          # z_jip, (..., n, k, m)
    O = z.sum(axis=-2)                                   # O_jp = sum_i z_jip
    d, eps = stabilized(O, epsilon)
    share = ratio(z, d[..., :, None, :]) * R[..., :, None, :]
    R_a = f_a * share.sum(axis=-1)                       # sum over p
    R_b = f_b * share.sum(axis=-3)                       # sum over j
    return (R_a, R_b), Terms(stabilizer=ratio(eps, d) * R, dropped=dropped(R, d))


def product(xs: tuple[Array, ...], R: Array) -> tuple[Array, ...]:
    """The element-wise product ``z = x_1 ... x_n`` of ``n`` activations (AttnLRP Prop. 3.2)::

        R_k = R / n        for every factor k

    the uniform rule: conserving, nothing absorbed. It depends on how a product
    is grouped: ``(x1 x2) x3`` of two two-factor nodes gives ``(R/4, R/4, R/2)``,
    ``x1 (x2 x3)`` gives ``(R/2, R/4, R/4)`` and one three-factor node ``R/3`` each.
    """
    return tuple(R / len(xs) for _ in xs)


__all__ = ["layer_norm", "matmul", "product", "rms_norm", "softmax", "stabilized", "terms_ledger"]
