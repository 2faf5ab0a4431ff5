"""The linear-rule engine shared by Dense, Conv2d, AvgPool2d and BatchNorm.

A linear layer computes ``z_j = sum_i a_i w_ij + b_j``. Every linear rule is a
sum of parts (``lrp_ref.rules``); each part is evaluated here in one of two ways
that must agree to rounding:

``explicit``
    The equation read literally. The input is cut into patches
    ``a[b, p, k]`` (output position ``p``, receptive-field element ``k``),
    every contribution ``z_ij[b, p, k, j] = a_i w_ij`` is materialised, divided
    by its denominator and multiplied by ``R_j``; ``R_i`` is the sum over ``j``,
    folded back onto the input (overlapping patches add up). Refused above
    :data:`EXPLICIT_MAX_BYTES`.

``fast``
    The same mathematics factorised into four array operations, the
    ``z, s, c, R`` steps of Montavon et al.'s LRP tutorial (2019)::

        z = modified_forward(a)          # step 1: z_j   = sum_i a_i w_ij + b_j
        s = R / z                        # step 2: s_j   = R_j / z_j
        c = modified_forward^T(s)        # step 3: c_i   = sum_j w_ij s_j
        R = a * c                        # step 4: R_i   = a_i c_i

    since ``sum_j a_i w_ij / z_j R_j = a_i sum_j w_ij s_j``.

A subclass provides ``weight`` and ``bias`` arrays and five small maps:
``_linear(a, w)`` (``sum_i a_i w_ij``, no bias), ``_linear_T(s, w)`` (its
adjoint in ``a``), ``_expand_bias(b)`` (the bias broadcastable to the output),
and for the explicit path ``_patches(x)`` (``(B, P, K)``), ``_fold(cols)``
(its adjoint), ``_weight_pkj(w)`` (``(P or 1, K, J)``) and ``_output_pj(z)``
(``(B, P, J)``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..audit import Ledger, dropped_relevance, per_sample_sum
from ..rules import LinearRule, Part, Pass, Rule, describe
from .base import Layer

Array = np.ndarray

#: The explicit path refuses to materialise more than this many bytes of ``z_ij``.
EXPLICIT_MAX_BYTES = 256 * 2**20
#: :func:`divide` works through the output in blocks of at most this many bytes.
BLOCK_BYTES = 2**20


def stabilizer(z: Array, epsilon: float) -> Array:
    """``epsilon * sign(z)`` with ``sign(0) := +1`` (seed eq. (6)), in the dtype of ``z``."""
    # computed as 2 eps [z >= 0] - eps (exact): np.where with two scalars is ~5x slower
    e = z.dtype.type(epsilon)
    eps = np.multiply(z >= 0, 2 * e, dtype=z.dtype)
    eps -= e
    return eps


def safe_divide(numerator: Array, d: Array, in_place: bool = False) -> tuple[Array, Array]:
    """``numerator / d`` where ``d != 0``, else 0; also returns the mask ``d == 0``.

    ``in_place`` writes the quotient into ``d`` (which must have the result's
    shape and dtype) instead of a new array.
    """
    zero = d == 0
    # where d = 0 the output must hold 0: d itself already does
    out = d if in_place else None
    if not zero.any():                  # the usual case: a plain division
        return np.divide(numerator, d, out=out), zero
    if out is None:
        out = np.zeros(np.broadcast_shapes(numerator.shape, d.shape), np.result_type(numerator, d))
    # divide only where d != 0 (no inf or NaN is ever formed); the rest keeps its 0
    return np.divide(numerator, d, out=out, where=~zero), zero


def signed_sum(terms: Iterable[tuple[float, Array]]) -> Array:
    """``sum_t sign_t x_t``; a single term with sign +1 is ``x_t`` itself, not a copy."""
    (sign, total), *rest = terms
    if sign != 1 or rest:
        total = sign * total
    for sign, x in rest:
        total += sign * x
    return total


def per_sample_dot(s: Array, b: Array) -> Array:
    """``sum_j s[n, j] b[n, j]`` per sample ``n``, for ``b`` broadcastable to ``s``.

    ``s`` is first summed over the axes along which ``b`` is constant (a
    convolution's bias is one number per channel), so no array of the size of
    ``s`` is formed.
    """
    b = b.reshape((1,) * (s.ndim - b.ndim) + b.shape)
    constant = tuple(k for k in range(1, s.ndim) if b.shape[k] == 1)
    return per_sample_sum(s.sum(axis=constant, keepdims=True) * b)


def step_ledger(s: Array, b: Array | None, eps: Array | None, zero: Array | None,
                R_share: Array) -> Ledger:
    """The ledger of ``s_j = R_j / (z_j + b_j + eps_j)``: bias and stabilizer take
    ``b_j s_j`` and ``eps_j s_j``; zero denominators drop.

    ``b`` (broadcastable to ``s``) or ``eps`` is None where the step has none,
    ``zero`` (the mask ``d_j = 0``) where no denominator can be 0.
    ``eps`` is overwritten: the step has no further use for it.
    """
    none = np.zeros(s.shape[0], s.dtype)
    bias = none if b is None else per_sample_dot(s, b)
    stabilized = none if eps is None else per_sample_sum(np.multiply(eps, s, out=eps))
    dropped = none if zero is None else dropped_relevance(zero, R_share)
    return Ledger(bias, stabilized, dropped)


def output_blocks(shape: tuple[int, ...], itemsize: int) -> list[tuple[slice, slice]]:
    """Index blocks ``[:, k0:k1]`` along axis 1 covering an array, each at most
    :data:`BLOCK_BYTES` (but at least one entry of axis 1)."""
    per_entry = itemsize * int(np.prod(shape)) // max(shape[1], 1)
    step = max(1, BLOCK_BYTES // max(per_entry, 1))
    return [(slice(None), slice(k, k + step)) for k in range(0, shape[1], step)]


def divide(R: Array, z: Array, b: Array | None, epsilon: float, coefficient: float = 1.0,
           out: Array | None = None) -> tuple[Array, Ledger]:
    """Step 2 of a rule: ``s_j = coefficient R_j / d_j``, 0 where ``d_j = 0``, and its ledger.

    ``d_j = z_j + b_j + eps_j`` with ``eps_j = epsilon sign(z_j + b_j)``
    (:func:`stabilizer`; none when ``epsilon`` is 0) and ``b`` broadcastable
    to ``z`` or None. ``s`` is written into ``out`` (which may be ``z`` itself),
    a new array when None.

    It runs block by block over axis 1 (output channels or units), blocks of
    at most :data:`BLOCK_BYTES`: the stabilizer and the masks are then block-sized
    temporaries that stay in cache and that the allocator serves again, where
    output-sized ones would be fresh pages from the OS every time (arrays above
    32 MB, e.g. at batch 8 on VGG-16), whose first touch costs more than the
    arithmetic on them.
    """
    s = np.empty(z.shape, np.result_type(R, z)) if out is None else out
    b = None if b is None else np.broadcast_to(b, z.shape)
    # |d_j| >= eps > 0 where eps is not 0 in the dtype (d_j + eps >= eps where
    # d_j >= 0, as rounding is monotone; likewise below 0): no d_j is 0, nothing to mask
    never_zero = s.dtype.type(epsilon) > 0
    ledger = Ledger.zeros(s.shape[0], s.dtype)
    for block in output_blocks(z.shape, s.itemsize):
        d = s[block]
        if b is not None:                       # d_j = z_j + b_j
            np.add(z[block], b[block], out=d)
        elif s is not z:
            d[...] = z[block]
        eps = None
        if epsilon:                             # d_j += eps sign(d_j)
            eps = stabilizer(d, epsilon)
            d += eps
        R_share = R[block] if coefficient == 1 else coefficient * R[block]
        if never_zero:
            np.divide(R_share, d, out=d)
            zero = None
        else:
            _, zero = safe_divide(R_share, d, in_place=True)
        ledger = ledger + step_ledger(d, None if b is None else b[block], eps, zero, R_share)
    return s, ledger


class LinearLayer(Layer):
    """Base class of the linear layers: one engine, every linear rule, two paths."""

    takes_rule = True
    #: Whether output and input have the same shape (then ``Pass()`` is allowed).
    preserves_shape = False
    weight: Array
    bias: Array
    #: The last forward's ``sum_i a_i w_ij`` without bias, read-only (see :meth:`_product`).
    _z: Array | None = None
    #: The input and ``grad_z`` of the last backward, and the parameter gradients
    #: computed from them once read (see :class:`ParameterGradient`).
    _last_backward: tuple[Array, Array] | None = None
    _parameter_gradients: dict[str, Array] | None = None

    def _forward(self, a: Array) -> Array:
        # Remembered for relevance: every rule whose numerator is z_ij = a_i w_ij
        # (Zero, Epsilon, Gamma's first term, ...) needs this same z again.
        self._z = self._linear(a, self.weight)
        self._z.flags.writeable = False
        return self._z + self._expand_bias(self.bias)

    def _product(self, x: Array, w: Array) -> Array:
        """``sum_i x_i w_ij``: the remembered forward's when ``x, w`` are its input and weight.

        Reusing it saves half the products of an LRP-0 or LRP-eps step. Like the
        input, it is the last forward's: change the weights, forward again.
        """
        if self._z is not None and x is self._input and w is self.weight:
            return self._z
        return self._linear(x, w)

    def check_rule(self, rule: Rule | None) -> None:
        super().check_rule(rule)
        if isinstance(rule, Pass) and not self.preserves_shape:
            raise ValueError(f"{self.where} cannot apply Pass(): its output and input differ "
                             "in shape; use a linear rule such as Epsilon()")
        if not isinstance(rule, (LinearRule, Pass)):
            raise ValueError(f"{self.where} cannot apply {describe(rule)}: not a linear rule")

    def _relevance(self, R: Array, rule: Rule | None, method: str) -> tuple[Array, Ledger]:
        self.check_rule(rule)
        if isinstance(rule, Pass):
            return R, self._no_loss(R)
        a = self._input
        rule.check_input(a, self.where)
        part_relevance = self._fast_part if method == "fast" else self._explicit_part
        first, *others = rule.parts()
        R_in, ledger = part_relevance(a, R, first)
        for part in others:                     # R_i = sum over the parts
            R_part, ledger_part = part_relevance(a, R, part)
            R_in, ledger = R_in + R_part, ledger + ledger_part
        return R_in, ledger

    # -- fast path ---------------------------------------------------------------------

    def _fast_part(self, a: Array, R: Array, part: Part) -> tuple[Array, Ledger]:
        """One part by the four steps z, s, c, R (Montavon et al. 2019)."""
        factors = [(t.sign, t.input(a), t.weight(self.weight)) for t in part.terms]
        # Of two or more terms, one whose modified input is 0 everywhere adds nothing to
        # z_j nor to R_i: skip its two products (after a ReLU, alpha-beta's a- terms;
        # this halves their cost).
        if len(factors) > 1:
            factors = [f for f in factors if f[1].any()] or factors[:1]
        # step 1: z_j = sum_t sign_t sum_i input_t(a)_i weight_t(w)_ij
        z = signed_sum((sign, self._product(x, w)) for sign, x, w in factors)
        b = None if part.bias is None else self._expand_bias(part.bias(self.bias))
        # step 2: s_j = coefficient R_j / d_j,  d_j = z_j + bias(b)_j + eps sign(...),
        # written into z unless z is the read-only remembered forward
        s, ledger = divide(R, z, b, part.epsilon, part.coefficient,
                           out=None if z is self._z else z)
        # steps 3 and 4: c_i = sum_j w_ij s_j,  R_i = sum_t sign_t input_t(a)_i c_i
        R_in = signed_sum((sign, self._input_times_c(x, s, w)) for sign, x, w in factors)
        return R_in, ledger

    def _input_times_c(self, x: Array, s: Array, w: Array) -> Array:
        """``x_i c_i`` with ``c_i = sum_j w_ij s_j``, in the memory of ``c`` (a new array).

        A ``c`` that is not contiguous (a view into a padded buffer) gives a new
        contiguous array instead: relevance is handed on and returned contiguous.
        """
        c = self._linear_T(s, w)
        if not c.flags.c_contiguous:
            return x * c
        c *= x
        return c

    # -- explicit path -----------------------------------------------------------------

    def _explicit_part(self, a: Array, R: Array, part: Part) -> tuple[Array, Ledger]:
        """One part with every contribution ``z_ij`` materialised (the literal equation)."""
        # the shape (B, P, K, J) of z_ij, checked before any patch is built: the
        # outputs of a sample are its P positions times J outputs per position
        K, J = self._weight_pkj(self.weight).shape[1:]
        size = (a.shape[0], int(np.prod(self._output_shape[1:])) // J, K, J)
        nbytes = int(np.prod(size)) * a.itemsize
        if nbytes > EXPLICIT_MAX_BYTES:
            raise ValueError(
                f"{self.where}: the explicit path would materialise z_ij of shape {size} "
                f"({nbytes:,} bytes > EXPLICIT_MAX_BYTES = {EXPLICIT_MAX_BYTES:,}); "
                "use method='fast' (same result) or a smaller input"
            )
        # input_t(a) as patches (B, P, K), weight_t(w) as (P or 1, K, J)
        factors = [(t.sign, self._patches(t.input(a)), self._weight_pkj(t.weight(self.weight)))
                   for t in part.terms]
        # z_ij = sum_t sign_t input_t(a)_i weight_t(w)_ij          shape (B, P, K, J)
        z_ij = sum(sign * x[..., None] * w for sign, x, w in factors)
        z = self._output_from_pj(z_ij.sum(axis=2))
        b = np.zeros_like(z) if part.bias is None else np.broadcast_to(
            self._expand_bias(part.bias(self.bias)), z.shape)
        eps = stabilizer(z + b, part.epsilon)
        d = z + b + eps                       # d_j = sum_i z_ij + b_j + eps sign(...)
        d_pj = self._output_pj(d)[:, :, None, :]                                 # (B, P, 1, J)
        R_share = part.coefficient * R
        R_j = self._output_pj(R_share)[:, :, None, :]
        # R_i<-j = z_ij / d_j * R_j,   R_i = sum_j R_i<-j
        ratio, _ = safe_divide(z_ij, np.broadcast_to(d_pj, z_ij.shape))
        R_in = self._fold((ratio * R_j).sum(axis=3))
        s, zero = safe_divide(R_share, d)
        return R_in, step_ledger(s, b, eps, zero, R_share)

    # -- the maps a subclass provides --------------------------------------------------

    def _linear(self, a: Array, w: Array) -> Array:
        """``sum_i a_i w_ij`` for every output ``j`` (no bias)."""
        raise NotImplementedError

    def _linear_T(self, s: Array, w: Array) -> Array:
        """``sum_j w_ij s_j`` for every input ``i``: the adjoint of ``_linear``, a new array."""
        raise NotImplementedError

    def _expand_bias(self, b: Array) -> Array:
        """The bias, broadcastable to the output."""
        raise NotImplementedError

    def _patches(self, x: Array) -> Array:
        """``(B, P, K)``: the receptive field ``k`` of output position ``p``."""
        raise NotImplementedError

    def _fold(self, cols: Array) -> Array:
        """The adjoint of ``_patches``: add patch entries back onto the input."""
        raise NotImplementedError

    def _weight_pkj(self, w: Array) -> Array:
        """The weights as ``(P or 1, K, J)``: from element ``k`` to output ``j`` at ``p``."""
        raise NotImplementedError

    def _output_pj(self, z: Array) -> Array:
        """The output as ``(B, P, J)``."""
        raise NotImplementedError

    def _output_from_pj(self, z_pj: Array) -> Array:
        """Inverse of ``_output_pj``."""
        raise NotImplementedError

    def _backward(self, grad_z: Array) -> Array:
        # The parameter gradients are computed from (input, grad_z) when first read (see
        # ParameterGradient): an input gradient, as for Gradient x Input, needs none, and
        # they can cost more than the rest of the step (Dense: an outer product the size
        # of the weight).
        self._last_backward = (self._input, grad_z)
        self._parameter_gradients = None
        return self._linear_T(grad_z, self.weight)

    def _parameter_gradient(self, name: str) -> Array | None:
        """``dL/d<name>`` from the last backward (None before one), computed once."""
        if self._last_backward is None:
            return None
        if self._parameter_gradients is None:
            self._parameter_gradients = self._compute_parameter_gradients(*self._last_backward)
        return self._parameter_gradients[name]

    def _compute_parameter_gradients(self, a: Array, grad_z: Array) -> dict[str, Array]:
        """``{name: dL/d<name>}`` for the input ``a`` and ``grad_z`` of one backward."""
        raise NotImplementedError


class ParameterGradient:
    """The attribute ``grad_<name>``: ``dL/d<name>`` of the last ``backward``, read-only.

    None before the first backward; computed on first read (and kept) from the
    input and output gradient of that backward, so a later forward does not
    change it.
    """

    def __set_name__(self, owner: type, attribute: str) -> None:
        self.name = attribute.removeprefix("grad_")

    def __get__(self, layer: LinearLayer | None, owner: type) -> Any:
        return self if layer is None else layer._parameter_gradient(self.name)

    def __set__(self, layer: LinearLayer, value: Any) -> None:
        raise AttributeError(f"grad_{self.name} is computed by backward() and cannot be set")
