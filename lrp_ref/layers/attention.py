"""The pieces of attention: Softmax, MatMul (of two activations) and Product.

``softmax(Q K^T) V`` is a Graph of two ``MatMul`` nodes and a ``Softmax``; a gated
MLP multiplies two activations with ``Product``. The rules are AttnLRP's
(Achtibat et al. 2024, "AttnLRP: Attention-Aware Layer-Wise Relevance
Propagation for Transformers", ICML), with CP-LRP's choice (Ali et al. 2022,
"XAI for Transformers: Better Explanations through Conservative Propagation",
ICML) as an option of ``MatMul``; their literal forms are
:mod:`lrp_ref.rules.transformer_equations`, docs/transformers.md derives them.
None of these nodes takes a rule: the rule is a property of the node, as for
:class:`~lrp_ref.Add`.

* ``Softmax``: ``R_i = x_i (R_i - s_i sum_j R_j)`` (Prop. 3.1), Gradient x Input;
  it does not conserve, and the ledger books the difference as ``absorbed_bias``.
* ``MatMul``: ``O = a b``; the uniform split (Prop. 3.3), or one operand held
  constant (CP-LRP: the attention weights of ``A V``).
* ``Product``: ``z = x_1 ... x_n``; each factor gets ``R / n`` (Prop. 3.2).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..audit import Ledger, per_sample_sum
from ..engine.kernels import quotient, row_dots
from ..engine.linear import check_explicit_size
from ..rules import Rule, describe
from ..rules import transformer_equations as equations
from ..rules.products import PRODUCT_RULES
from ..rules.transformer_equations import terms_ledger
from .base import Layer, check_not_a_rule_class
from .calls import Kept, current
from .merge import Merge

Array = np.ndarray


def softmax(x: Array, blocked: Array | None = None) -> Array:
    """``s_i = exp(x_i) / sum_j exp(x_j)`` over the last axis (shifted by the maximum).

    ``blocked`` (boolean, shaped like ``x``): those positions take no part, ``s_i = 0``.
    """
    if blocked is None:
        e = np.exp(x - x.max(axis=-1, keepdims=True))
    else:
        top = np.where(blocked, -np.inf, x).max(axis=-1, keepdims=True)
        e = np.where(blocked, 0, np.exp(np.where(blocked, top, x) - top))
    return e / e.sum(axis=-1, keepdims=True)


class Softmax(Layer):
    """``s = softmax(x)`` over the last axis, with AttnLRP's rule (Prop. 3.1)::

        R_i = x_i (R_i - s_i sum_j R_j)

    This is Gradient x Input of ``sum_j s_j(x) R_j / s_j`` with ``R_j / s_j`` held
    constant, and it does not conserve: output ``j`` hands ``(x_j - sum_i s_i x_i)
    R_j`` down, and the ledger books the rest, ``(1 - x_j + sum_i s_i x_i) R_j``,
    as ``absorbed_bias`` (the zero-order term of the first-order Taylor
    expansion of ``s_j`` at ``x``; negative where relevance is created). It is
    invariant neither to a shift of ``x`` (softmax is) nor bounded by ``R``.

    The input must be finite: a mask of ``-inf`` is not accepted (LXT sets such
    inputs to 0 in the rule). Give the blocked positions as ``mask`` instead
    (an attention mask): a boolean array, True where blocked, that broadcasts to
    the input (batch axis included). A blocked ``x_i`` takes no part: ``s_i = 0``,
    the sums run over the other positions, ``R_i = 0`` (LXT's choice, made
    explicit), and relevance that reaches a blocked output, the constant 0, is
    booked as ``absorbed_bias``. A row with every position blocked is refused
    (torch gives NaN there).

    Example: ``x = (0, ln 3)``, ``s = (1/4, 3/4)``, ``R = (1/2, 3/4)``: ``R_in =
    (0, ln 3 (3/4 - 3/4 * 5/4)) = (0, -3/16 ln 3)``; the bias takes ``5/4 + 3/16 ln 3``.
    With ``mask = (False, False, True)`` and ``x = (0, ln 3, 7)``: the same, ``s_3 = 0``.
    """

    #: The forward's output ``s``, for the relevance and the backward (per call).
    _output = Kept()

    def __init__(self, mask: Any = None) -> None:
        super().__init__()
        self.mask = None if mask is None else np.asarray(mask) != 0     # True: blocked
        if self.mask is not None and self.mask.ndim < 1:
            raise ValueError("Softmax: mask must be an array that broadcasts to the input, "
                             "with the input's number of axes")

    def arrays(self) -> dict[str, Array]:
        return {} if self.mask is None else {"mask": self.mask}

    @classmethod
    def from_config(cls, config: dict[str, Any], arrays: dict[str, Array],
                    prefix: str = "") -> Softmax:
        key = f"{prefix}.mask" if prefix else "mask"
        return cls(arrays.get(key))

    @property
    def dtype(self) -> np.dtype | None:
        """None: the mask is boolean, the layer computes in its input's dtype."""
        return None

    def _blocked(self, x: Array) -> Array | None:
        """The mask broadcast to ``x`` (checked), None without a mask."""
        if self.mask is None:
            return None
        try:
            fits = self.mask.ndim == x.ndim and np.broadcast_shapes(
                x.shape, self.mask.shape) == x.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"{self.where}: the mask of shape {self.mask.shape} must broadcast "
                             f"to the input's shape {x.shape} (as many axes)")
        blocked = np.broadcast_to(self.mask, x.shape)
        if blocked.all(axis=-1).any():
            raise ValueError(f"{self.where}: the mask blocks every position of a row; its "
                             "softmax is undefined (torch gives NaN)")
        return blocked

    def _softmax(self, x: Array) -> Array:
        return softmax(x, self._blocked(x))

    def _forward(self, x: Array) -> Array:
        self._output = self._softmax(x)
        return self._output

    def _backward(self, grad_z: Array) -> Array:
        s = self._output
        return s * (grad_z - (grad_z * s).sum(axis=-1, keepdims=True))

    def _relevance(self, R: Array, rule: Rule | None, method: str) -> tuple[Array, Ledger]:
        self.check_rule(rule)
        blocked = self._blocked(self._input)
        x = self._input if blocked is None else np.where(blocked, 0, self._input)  # x_i := 0
        R_open = R if blocked is None else np.where(blocked, 0, R)
        lost = None if blocked is None else per_sample_sum(R - R_open)   # at a constant 0
        if method == "explicit":
            check_explicit_size(self.where, x.shape + x.shape[-1:], x.itemsize)   # R_i<-j
            R_in, terms = equations.softmax(x, R_open, blocked)
            ledger = terms_ledger(terms, R)
        else:
            s = self._output                        # the forward's softmax (0 where blocked)
            R_sum = R_open.sum(axis=-1, keepdims=True)
            t = s * x
            x_bar = t.sum(axis=-1, keepdims=True)   # sum_i s_i x_i
            R_in = np.multiply(s, R_sum, out=t)
            np.subtract(R_open, R_in, out=R_in)
            R_in *= x                               # x_i (R_i - s_i sum_j R_j)
            # sum_j (1 - x_j + x_bar) R_j, per sample: sum R - sum x R + sum_rows x_bar sum R
            bias = (per_sample_sum(R_sum) - row_dots(x, R_open)
                    + row_dots(x_bar, R_sum))
            none = np.zeros_like(bias)
            ledger = Ledger(bias, none, none)
        if lost is not None:
            ledger = ledger + Ledger(lost, np.zeros_like(lost), np.zeros_like(lost))
        return R_in, ledger


class MatMul(Merge):
    """``O = a b``, the matrix product of two activations over their last two axes.

    ``a`` is ``(B, ..., n, k)``, ``b`` is ``(B, ..., k, m)`` with the same leading
    axes (``Q K^T`` takes ``K`` transposed; ``A V``). Relevance by eq. (6) on the
    bilinear form ``O_jp = sum_i a_ji b_ip`` (AttnLRP Prop. 3.3)::

        R(a_ji) = f_a sum_p a_ji b_ip / (O_jp + eps sign(O_jp)) R_jp
        R(b_ip) = f_b sum_j a_ji b_ip / (O_jp + eps sign(O_jp)) R_jp

    ``constant=None`` (default): the uniform split ``f_a = f_b = 1/2`` (AttnLRP);
    ``constant=0``: ``a`` is held constant and gets nothing, ``f_b = 1`` (CP-LRP on
    ``A V``: the attention weights are detached, all relevance flows along the
    value path); ``constant=1``: the mirror image. The node takes no rule; a
    composite may override ``constant`` with ``UniformSplit()`` or
    ``HeldConstant(k)`` (lrp_ref.rules.products). The stabilizer's share is
    ``absorbed_stabilizer``; a zero ``O_jp`` with ``epsilon = 0`` drops its ``R``.
    LXT's ``matmul`` divides by ``2 O + eps``: the same rule, its ``eps`` is our
    ``2 epsilon`` for positive ``O`` (docs/peers.md).

    Example (``epsilon = 0``, ``R = O``): ``a = [[1/4, 3/4], [1/2, 1/2]]``,
    ``b = [[4, 0], [0, 2]]``: ``R(a_ji) = a_ji (sum_p b_ip) / 2``, i.e.
    ``[[1/2, 3/4], [1, 1/2]]``, and ``R(b_ip) = b_ip (sum_j a_ji) / 2``, i.e.
    ``[[3/2, 0], [0, 5/4]]``.
    """

    min_inputs = 2
    max_inputs = 2
    #: The forward's product ``O = a b``, the denominator of the relevance (per call).
    _output = Kept()

    def __init__(self, epsilon: float = 1e-6, constant: int | None = None) -> None:
        super().__init__()
        if not (isinstance(epsilon, (int, float)) and math.isfinite(epsilon) and epsilon >= 0):
            raise ValueError(f"MatMul: epsilon must be a finite number >= 0, got {epsilon!r}")
        if constant not in (None, 0, 1) or isinstance(constant, bool):
            raise ValueError(f"MatMul: constant must be None (uniform split, AttnLRP), 0 or 1 "
                             f"(that operand held constant, CP-LRP), got {constant!r}")
        self.epsilon = float(epsilon)
        self.constant = constant

    def hyperparameters(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon, "constant": self.constant}

    def _check_shapes(self, xs: list[Array]) -> None:
        a, b = xs
        if a.ndim < 3 or b.ndim != a.ndim or a.shape[:-2] != b.shape[:-2] \
                or a.shape[-1] != b.shape[-2]:
            raise ValueError(f"{self.where}: expected (B, ..., n, k) and (B, ..., k, m) with the "
                             f"same leading axes, got {a.shape} and {b.shape}")

    def _forward(self, xs: list[Array]) -> Array:
        self._output = xs[0] @ xs[1]
        return self._output

    def _backward(self, grad_z: Array) -> tuple[Array, Array]:
        a, b = self._inputs
        return grad_z @ np.swapaxes(b, -1, -2), np.swapaxes(a, -1, -2) @ grad_z

    def check_rule(self, rule: Rule | None) -> None:
        """None (the node's ``constant``), or ``UniformSplit()`` / ``HeldConstant(k)``."""
        check_not_a_rule_class(rule, self.where)
        if rule is not None and not isinstance(rule, PRODUCT_RULES):
            raise ValueError(f"{self.where} takes no rule (its constant={self.constant!r} "
                             f"decides), or UniformSplit() or HeldConstant(k) from a "
                             f"composite; got {describe(rule)}")

    def _assign_uniform(self, rule: Rule | None, out: dict[str, Rule | None]) -> None:
        # a network's single rule (Epsilon, ...) is not for this node; a product rule is
        if isinstance(rule, PRODUCT_RULES):
            out[current().path] = rule
        else:
            super()._assign_uniform(rule, out)

    def _relevance(self, R: Array, rule: Rule | None, method: str
                   ) -> tuple[tuple[Array, Array], Ledger]:
        self.check_rule(rule)
        a, b = self._inputs
        constant = self.constant if rule is None else rule.constant
        if method == "explicit":
            check_explicit_size(self.where, a.shape + b.shape[-1:], a.itemsize)   # z_jip
            R_in, terms = equations.matmul(a, b, R, self.epsilon, constant)
            return R_in, terms_ledger(terms, R)
        f_a, f_b = {None: (0.5, 0.5), 0: (0.0, 1.0), 1: (1.0, 0.0)}[constant]
        # s_jp = R_jp / (O_jp + eps sign), O the forward's product (kept, not formed again)
        s, ledger = quotient(R, self._output, None, self.epsilon, self.where)
        # a factor held constant (f = 0) gets nothing: its product is not formed
        R_a = _times(s @ np.swapaxes(b, -1, -2), a, f_a) if f_a else np.zeros_like(a)  # sum_p
        R_b = _times(np.swapaxes(a, -1, -2) @ s, b, f_b) if f_b else np.zeros_like(b)  # sum_j
        return (R_a, R_b), ledger


def _times(c: Array, x: Array, f: float) -> Array:
    """``f x c`` into ``c`` (no other array; ``f`` is 1/2 or 1, exact scalings)."""
    c *= x
    if f != 1:
        c *= f
    return c


class Product(Merge):
    """``z = x_1 x_2 ... x_n``, the element-wise product of n >= 2 activations of one shape.

    AttnLRP's uniform rule (Prop. 3.2): every factor gets ``R_k = R / n``;
    nothing is absorbed. (:class:`~lrp_ref.Mul` is the other reading: a signal
    times a gate, the signal takes all.) The split depends on how a product of
    three or more factors is built from nodes: ``x1 x2 x3`` with ``(2, 3, 4)`` and
    ``R = 24`` gives ``(6, 6, 12)`` as ``Product(Product(x1, x2), x3)``,
    ``(12, 6, 6)`` as ``Product(x1, Product(x2, x3))`` and ``(8, 8, 8)`` as one
    three-input node.
    """

    def _check_shapes(self, xs: list[Array]) -> None:
        self._same_shapes(xs)

    def _forward(self, xs: list[Array]) -> Array:
        z = xs[0] * xs[1]
        for x in xs[2:]:
            z = z * x
        return z

    def _backward(self, grad_z: Array) -> tuple[Array, ...]:
        grads = []
        for k in range(len(self._inputs)):           # dz/dx_k = prod_{l != k} x_l
            g = grad_z
            for l, x in enumerate(self._inputs):
                if l != k:
                    g = g * x
            grads.append(g)
        return tuple(grads)

    def _relevance(self, R: Array, rule: Rule | None, method: str
                   ) -> tuple[tuple[Array, ...], Ledger]:
        self.check_rule(rule)
        return equations.product(self._inputs, R), self._no_loss(R)
