"""The linear-rule engine: every linear rule on every linear layer, by two paths.

A linear layer (Dense, Conv2d, AvgPool2d, BatchNorm) computes
``z_j = sum_i a_i w_ij + b_j``. Every linear rule is evaluated in one of two
ways that must agree to rounding:

``explicit`` (:func:`explicit`)
    The equation read literally: the rule's function in
    :mod:`lrp_ref.rules.equations`, on the layer input cut into patches
    ``a[b, p, k]`` (output position ``p``, receptive-field element ``k``) with
    every contribution ``z_ij = a_i w_ij`` materialised. ``R_i`` is folded
    back onto the input (overlapping patches add up). Refused above
    :data:`EXPLICIT_MAX_BYTES`.

``fast`` (:func:`fast_part`, the default)
    The same mathematics factorised into four array operations, the
    ``z, s, c, R`` steps of Montavon et al.'s LRP tutorial (2019)::

        z = modified_forward(a)          # step 1: z_j   = sum_i a_i w_ij + b_j
        s = R / z                        # step 2: s_j   = R_j / z_j
        c = modified_forward^T(s)        # step 3: c_i   = sum_j w_ij s_j
        R = a * c                        # step 4: R_i   = a_i c_i

    since ``sum_j a_i w_ij / z_j R_j = a_i sum_j w_ij s_j``. A rule is
    read as a sum of parts (:mod:`lrp_ref.rules.parts`), each with its own
    modified inputs, weights and bias; the steps run once per part. A part
    that serves only the outputs of one sign (the generalised gamma rule) gets
    ``R_j`` masked by the sign of the layer's output ``z_j``
    (:func:`by_output_sign`).

The layer is any object with the maps of :class:`lrp_ref.layers.LinearLayer`:
``product(x, w)`` (``sum_i x_i w_ij``, no bias), ``linear_T(s, w)`` (its adjoint
in ``x``, a new array), ``expand_bias(b)``, and for the explicit path
``patches(x)`` (``(B, P, K)``), ``fold(cols)`` (its adjoint),
``weight_pkj(w)`` (``(P or 1, K, J)``), ``window_kj()`` (its ``(K, J)``, without
building it), ``output_pj(z)`` (``(B, P, J)``) and ``output_shape``. How each step
is made fast is :mod:`lrp_ref.engine.kernels`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..audit import Ledger, per_sample_sum
from ..rules import LinearRule, Part
from .kernels import (
    contributing,
    divide,
    input_times_c,
    overflow_error,
    signed_sum,
    through,
)

Array = np.ndarray

#: The explicit path refuses to materialise more than this many bytes of ``z_ij``.
EXPLICIT_MAX_BYTES = 256 * 2**20


def relevance(layer: Any, a: Array, R: Array, rule: LinearRule,
              method: str) -> tuple[Array, Ledger]:
    """``R_i`` and the ledger of one linear layer with input ``a`` under ``rule``."""
    if method == "explicit":
        return explicit(layer, a, R, rule)
    parts = rule.parts()
    if any(part.outputs is not None for part in parts):
        return by_output_sign(layer, a, R, parts)
    first, *others = parts
    R_in, ledger = fast_part(layer, a, R, first)
    for part in others:                         # R_i = sum over the parts
        R_part, ledger_part = fast_part(layer, a, R, part)
        R_in, ledger = R_in + R_part, ledger + ledger_part
    return R_in, ledger


def by_output_sign(layer: Any, a: Array, R: Array,
                   parts: tuple[Part, ...]) -> tuple[Array, Ledger]:
    """A rule whose parts serve outputs chosen by the sign of ``z_j`` (generalised gamma).

    Each part redistributes ``mask_j R_j`` (``mask = part.outputs(z_j)``, all
    outputs where it has none); the relevance no part takes,
    ``R_j (1 - sum_parts coefficient mask_j)``, passes nothing and is dropped.
    """
    z = layer.product(a, layer.weight) + layer.expand_bias(layer.bias)     # z_j, as the forward
    R_in, ledger, taken = None, None, np.zeros(R.shape, R.dtype)
    for part in parts:
        served = np.ones(R.shape, bool) if part.outputs is None else part.outputs(z)
        R_part, ledger_part = fast_part(layer, a, np.where(served, R, 0), part)
        taken += part.coefficient * served
        R_in = R_part if R_in is None else R_in + R_part
        ledger = ledger_part if ledger is None else ledger + ledger_part
    left = per_sample_sum(R * (1 - taken))
    return R_in, ledger + Ledger(np.zeros_like(left), np.zeros_like(left), left)


def fast_part(layer: Any, a: Array, R: Array, part: Part) -> tuple[Array, Ledger]:
    """One part of a rule by the four steps z, s, c, R (Montavon et al. 2019)."""
    # the part's terms (sign_t, input_t(a), weight_t(w))
    terms = contributing(part.terms, a, layer.weight)
    # step 1: z_j = sum_t sign_t sum_i input_t(a)_i weight_t(w)_ij
    z = signed_sum((sign, layer.product(x, w)) for sign, x, w in terms)
    # step 2: s_j = coefficient R_j / d_j,   d_j = z_j + bias(b)_j + eps sign(z_j + bias(b)_j)
    b = None if part.bias is None else layer.expand_bias(part.bias(layer.bias))
    s, ledger, overflow = divide(R, z, b, part.epsilon, part.coefficient,
                                 out=z if z.flags.writeable else None)

    def steps_3_and_4(s: Array) -> Array:
        # step 3: c_i = sum_j weight_t(w)_ij s_j;   step 4: R_i = sum_t sign_t input_t(a)_i c_i
        return signed_sum((sign, input_times_c(x, layer.linear_T(s, w))) for sign, x, w in terms)

    # (s_j too large for the dtype are held as 2^-k s_j: the same steps, times 2^k)
    return through(steps_3_and_4, s, overflow), ledger


def check_explicit_size(where: str, size: tuple[int, ...], itemsize: int) -> None:
    """Refuse (ValueError naming ``where``) to materialise contributions of shape ``size``
    above :data:`EXPLICIT_MAX_BYTES`."""
    nbytes = int(np.prod(size)) * itemsize
    if nbytes > EXPLICIT_MAX_BYTES:
        raise ValueError(
            f"{where}: the explicit path would materialise z_ij of shape {size} "
            f"({nbytes:,} bytes > EXPLICIT_MAX_BYTES = {EXPLICIT_MAX_BYTES:,}); "
            "use method='fast' (same result) or a smaller input"
        )


def explicit(layer: Any, a: Array, R: Array, rule: LinearRule) -> tuple[Array, Ledger]:
    """``rule``'s literal equation (:mod:`lrp_ref.rules.equations`) with every ``z_ij`` formed."""
    # the shape (B, P, K, J) of z_ij, checked before any patch or weight is built: the
    # outputs of a sample are its P positions times J outputs per position
    K, J = layer.window_kj()
    check_explicit_size(layer.where, (a.shape[0], int(np.prod(layer.output_shape[1:])) // J, K, J),
                        a.itemsize)
    w = layer.weight_pkj(layer.weight)                                    # (P or 1, K, J)
    b = layer.output_pj(np.broadcast_to(layer.expand_bias(layer.bias), layer.output_shape))
    try:
        # an overflowing term (z_ij, a sum of them, z_ij / z_j R_j) would become inf and its
        # ratio NaN, silently lost from R_i: refused, as the fast path refuses it
        with np.errstate(over="raise"):
            R_i, terms = rule.equation(a, layer.patches, w, b, layer.output_pj(R))
    except FloatingPointError:
        raise overflow_error(layer.where, "relevance", "a term of the literal equation (z_ij, "
                             "a sum of them, or z_ij / z_j R_j) is", a.dtype) from None
    none = np.zeros(a.shape[0], R.dtype)
    ledger = Ledger(*(none if t is None else per_sample_sum(t)
                      for t in (terms.bias, terms.stabilizer, terms.dropped)))
    return layer.fold(R_i), ledger
