"""The rules written out: one short, literal NumPy function per rule.

This is where a student finds eq. (6). Every function takes a linear layer
given as its contributions and applies the rule's formula as written, with the
symbols of docs/theory.md (section 3) and of the rule's docstring:

``a`` : (B, P, K)
    the layer input cut into patches: output position ``p`` sees inputs ``k``
    (a Dense layer has one position, ``P = 1``, that sees every input);
``w`` : (P or 1, K, J)
    ``w_ij``, the weight from input ``i = k`` to output ``j`` at position ``p``;
``b`` : broadcastable to (B, P, J)
    ``b_j``, the bias of output ``j`` (0 for ``bias=False``);
``R`` : (B, P, J)
    ``R_j``, the relevance arriving at output ``j``.

Each returns ``R_i`` of shape (B, P, K), the relevance of every patch entry
(the layer adds overlapping patches back onto its input), and the
:class:`Terms` of the ledger, one array (B, P, J) per output ``j``. A
denominator that is exactly 0 passes nothing down; the relevance it would have
carried is ``dropped`` (never NaN or inf).

These functions materialise every ``z_ij`` (B x P x K x J numbers): they are
the ``method="explicit"`` path of every linear layer, for teaching and
checking. The default ``method="fast"`` computes the same numbers from the
rule objects of :mod:`lrp_ref.rules` in four array operations
(:mod:`lrp_ref.engine`); tests check that the two agree for every rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Array = np.ndarray


@dataclass(frozen=True)
class Terms:
    """The ledger terms of one step, per output ``j``, shape (B, P, J); None is 0.

    ``bias`` and ``stabilizer``: the relevance the bias and the stabilizer take,
    ``b_j / d_j R_j`` and ``eps_j / d_j R_j``; ``dropped``: the ``R_j`` of
    outputs whose denominator is 0 (negative where a rule creates relevance).
    """

    bias: Array | None = None
    stabilizer: Array | None = None
    dropped: Array | None = None


# -- the arithmetic every rule shares ---------------------------------------------------


def sign(z: Array) -> Array:
    """``sign(z)`` with ``sign(0) := +1`` (the stabilizer's sign, eq. (6))."""
    return np.where(z >= 0, 1.0, -1.0).astype(z.dtype)


def plus(x: Array) -> Array:
    """``x+ = max(0, x)``."""
    return np.maximum(x, 0)


def minus(x: Array) -> Array:
    """``x- = min(0, x)``."""
    return np.minimum(x, 0)


def ratio(x: Array, d: Array) -> Array:
    """``x / d`` where ``d != 0``, else 0 (a zero denominator passes nothing)."""
    out = np.zeros(np.broadcast_shapes(np.shape(x), np.shape(d)), np.result_type(x, d))
    return np.divide(x, d, out=out, where=np.broadcast_to(d != 0, out.shape))


def redistribute(z_ij: Array, z_j: Array, R_j: Array) -> Array:
    """``R_i = sum_j z_ij / z_j * R_j``: every output shares its relevance by ``z_ij / z_j``."""
    return (ratio(z_ij, z_j[:, :, None, :]) * R_j[:, :, None, :]).sum(axis=3)


def dropped(R_j: Array, z_j: Array) -> Array:
    """``R_j`` where the denominator ``z_j`` is 0, else 0."""
    return np.where(z_j == 0, R_j, 0)


# -- eqs. (5), (6), (7) of docs/theory.md ---------------------------------------------------


def zero(a: Array, w: Array, b: Array, R: Array) -> tuple[Array, Terms]:
    """LRP-0, eq. (5):  ``R_i = sum_j z_ij / z_j * R_j``  (Bach et al. 2015, eq. 56)."""
    z_ij = a[..., None] * w                           # z_ij = a_i w_ij
    z_j = z_ij.sum(axis=2) + b                        # z_j  = sum_i z_ij + b_j
    R_i = redistribute(z_ij, z_j, R)
    return R_i, Terms(bias=ratio(b, z_j) * R, dropped=dropped(R, z_j))


def epsilon(a: Array, w: Array, b: Array, R: Array, epsilon: float) -> tuple[Array, Terms]:
    """LRP-epsilon, eq. (6):  ``R_i = sum_j z_ij / (z_j + eps sign(z_j)) * R_j``
    (Bach et al. 2015, eq. 58), ``sign(0) := +1``."""
    z_ij = a[..., None] * w
    z_j = z_ij.sum(axis=2) + b
    eps_j = epsilon * sign(z_j)
    d_j = z_j + eps_j                                 # the stabilized denominator
    R_i = redistribute(z_ij, d_j, R)
    return R_i, Terms(bias=ratio(b, d_j) * R, stabilizer=ratio(eps_j, d_j) * R,
                      dropped=dropped(R, d_j))


def alpha_beta(a: Array, w: Array, b: Array, R: Array, alpha: float,
               beta: float) -> tuple[Array, Terms]:
    """LRP-alpha-beta, eq. (7) with ``alpha - beta = 1`` (Bach et al. 2015, eq. 60)::

        R_i = sum_j (alpha z+_ij / z+_j - beta z-_ij / z-_j) * R_j

    ``z+_ij = max(0, z_ij)``, ``z+_j = sum_i z+_ij + max(0, b_j)``; likewise
    ``z-`` with ``min``. A half without contributions (``z+_j = 0``) is dropped.
    """
    z_ij = a[..., None] * w
    z_plus_ij, z_minus_ij = plus(z_ij), minus(z_ij)
    z_plus_j = z_plus_ij.sum(axis=2) + plus(b)
    z_minus_j = z_minus_ij.sum(axis=2) + minus(b)
    R_i = (alpha * redistribute(z_plus_ij, z_plus_j, R)
           - beta * redistribute(z_minus_ij, z_minus_j, R))
    bias = alpha * ratio(plus(b), z_plus_j) * R - beta * ratio(minus(b), z_minus_j) * R
    return R_i, Terms(bias=bias, dropped=alpha * dropped(R, z_plus_j)
                      - beta * dropped(R, z_minus_j))


def alpha_beta_eq7(a: Array, w: Array, b: Array, R: Array, alpha: float,
                   beta: float) -> tuple[Array, Terms]:
    """LRP-alpha-beta, eq. (7) as docs/theory.md writes it, ``alpha' + beta' = 1``::

        R_i = sum_j (alpha' z+_ij / z+_j + beta' z-_ij / z-_j) * R_j

    (Bach et al. 2015, eq. 60; the LRP Toolbox's form), ``alpha'`` and ``beta'``
    of either sign; ``z+``, ``z-`` as in :func:`alpha_beta`. A half without
    contributions passes nothing; its ``alpha' R_j`` or ``beta' R_j`` is dropped.
    """
    z_ij = a[..., None] * w
    z_plus_ij, z_minus_ij = plus(z_ij), minus(z_ij)
    z_plus_j = z_plus_ij.sum(axis=2) + plus(b)
    z_minus_j = z_minus_ij.sum(axis=2) + minus(b)
    R_i = (alpha * redistribute(z_plus_ij, z_plus_j, R)
           + beta * redistribute(z_minus_ij, z_minus_j, R))
    bias = alpha * ratio(plus(b), z_plus_j) * R + beta * ratio(minus(b), z_minus_j) * R
    return R_i, Terms(bias=bias, dropped=alpha * dropped(R, z_plus_j)
                      + beta * dropped(R, z_minus_j))


# -- the later rules (Montavon et al. 2017, 2019; Lapuschkin et al. 2019) ---------------------


def z_plus(a: Array, w: Array, R: Array) -> tuple[Array, Terms]:
    """The z+ rule:  ``R_i = sum_j z+_ij / sum_i z+_ij * R_j``, no bias (Montavon et al. 2017)."""
    z_plus_ij = plus(a[..., None] * w)
    z_plus_j = z_plus_ij.sum(axis=2)
    return redistribute(z_plus_ij, z_plus_j, R), Terms(dropped=dropped(R, z_plus_j))


def gamma(a: Array, w: Array, b: Array, R: Array, gamma: float) -> tuple[Array, Terms]:
    """LRP-gamma (Montavon et al. 2019, section 10.2.1)::

        R_i = sum_j a_i (w_ij + g w+_ij) / (sum_i a_i (w_ij + g w+_ij) + b_j + g b+_j) * R_j
    """
    w_gamma, b_gamma = w + gamma * plus(w), b + gamma * plus(b)
    z_ij = a[..., None] * w_gamma
    z_j = z_ij.sum(axis=2) + b_gamma
    R_i = redistribute(z_ij, z_j, R)
    return R_i, Terms(bias=ratio(b_gamma, z_j) * R, dropped=dropped(R, z_j))


def generalized_gamma(a: Array, w: Array, b: Array, R: Array, gamma: float,
                      bias: bool = True) -> tuple[Array, Terms]:
    """The generalised LRP-gamma (Andeol et al. 2021; Zennit's ``Gamma``)::

        R_i = sum_j [z_j > 0] (z_ij + g z+_ij) / (sum_i (z_ij + g z+_ij) + b_j + g b+_j) * R_j
            + sum_j [z_j < 0] (z_ij + g z-_ij) / (sum_i (z_ij + g z-_ij) + b_j + g b-_j) * R_j

    ``z+_ij = max(0, z_ij)``, ``z-_ij = min(0, z_ij)``: an output takes the
    contributions of its own sign, amplified by ``g``. ``z_j = sum_i z_ij + b_j``
    is the layer's output (with its bias also for ``bias=False``, which removes
    ``b`` from the denominators only); at ``z_j = 0`` nothing passes (dropped).
    """
    z_ij = a[..., None] * w
    z_j = z_ij.sum(axis=2) + b                        # the forward: its sign picks the half
    b = b if bias else 0 * b
    R_up, R_down = np.where(z_j > 0, R, 0), np.where(z_j < 0, R, 0)
    up_ij, down_ij = z_ij + gamma * plus(z_ij), z_ij + gamma * minus(z_ij)
    b_up, b_down = b + gamma * plus(b), b + gamma * minus(b)
    up_j, down_j = up_ij.sum(axis=2) + b_up, down_ij.sum(axis=2) + b_down
    R_i = redistribute(up_ij, up_j, R_up) + redistribute(down_ij, down_j, R_down)
    return R_i, Terms(bias=ratio(b_up, up_j) * R_up + ratio(b_down, down_j) * R_down,
                      dropped=np.where(z_j == 0, R, 0) + dropped(R_up, up_j)
                      + dropped(R_down, down_j))


def z_box(a: Array, w: Array, R: Array, low: Array, high: Array) -> tuple[Array, Terms]:
    """The z^B rule for ``low <= a <= high`` (Montavon et al. 2017)::

        R_i = sum_j (a_i w_ij - l_i w+_ij - h_i w-_ij) / sum_i (...) * R_j

    ``low`` and ``high`` are patches like ``a`` (0 on padding); the bias cancels.
    """
    z_ij = a[..., None] * w - low[..., None] * plus(w) - high[..., None] * minus(w)
    z_j = z_ij.sum(axis=2)
    return redistribute(z_ij, z_j, R), Terms(dropped=dropped(R, z_j))


def flat(one: Array, w: Array, R: Array) -> tuple[Array, Terms]:
    """The flat rule:  ``R_i = sum_j 1 / n_j * R_j``, ``n_j`` the inputs connected to ``j``
    (Lapuschkin et al. 2019). ``one`` is 1 for every input and 0 on padding (patches)."""
    z_ij = one[..., None] * np.ones_like(w)           # 1 for every connection i -> j
    n_j = z_ij.sum(axis=2)
    return redistribute(z_ij, n_j, R), Terms(dropped=dropped(R, n_j))


def w_square(one: Array, w: Array, R: Array) -> tuple[Array, Terms]:
    """The w^2 rule:  ``R_i = sum_j w_ij^2 / sum_i w_ij^2 * R_j`` (Montavon et al. 2017).
    ``one`` is 1 for every input and 0 on padding (patches)."""
    z_ij = one[..., None] * w**2
    z_j = z_ij.sum(axis=2)
    return redistribute(z_ij, z_j, R), Terms(dropped=dropped(R, z_j))


__all__ = [
    "Terms",
    "alpha_beta",
    "alpha_beta_eq7",
    "epsilon",
    "flat",
    "gamma",
    "generalized_gamma",
    "w_square",
    "z_box",
    "z_plus",
    "zero",
]
