"""LinearLayer: the base of Dense, Conv2d, AvgPool2d and BatchNorm.

A linear layer computes ``z_j = sum_i a_i w_ij + b_j`` and accepts every
linear rule; its relevance is computed by the shared engine
(:mod:`lrp_ref.engine.linear`: the four steps, and the literal equations of
:mod:`lrp_ref.rules.equations` for ``method="explicit"``). A subclass provides
``weight`` and ``bias`` and the maps the engine reads: ``linear(x, w)``
(``sum_i x_i w_ij``, no bias), ``linear_T(s, w)`` (its adjoint in ``x``),
``expand_bias(b)`` (the bias broadcastable to the output), and for the
explicit path ``patches(x)`` (``(B, P, K)``), ``fold(cols)`` (its adjoint),
``weight_pkj(w)`` (``(P or 1, K, J)``), ``output_pj(z)`` (``(B, P, J)``) and
``output_from_pj(z_pj)``.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from ..audit import Ledger
from ..engine import linear as linear_engine
from ..rules import LinearRule, Pass, Rule, describe
from .base import Layer, check_method
from .calls import Kept, current

Array = np.ndarray


class LinearLayer(Layer):
    """Base class of the linear layers: one engine, every linear rule, two paths."""

    takes_rule = True
    #: Whether output and input have the same shape (then ``Pass()`` is allowed).
    preserves_shape = False
    weight: Array
    bias: Array
    #: The forward's ``sum_i a_i w_ij`` without bias, read-only, per call (see :meth:`product`).
    _z = Kept()
    #: The last backward pass, from which the parameter gradients are computed once
    #: read (see :class:`~lrp_ref.layers.base.ParameterGradient`): its trace (a weak
    #: reference; None on its own) and ``{path: (input, grad_z)}``, one entry per
    #: call of this object in that pass (a layer at two Graph nodes has two). On the
    #: object, not per call: an optimiser reads the gradients there.
    _last_backward: tuple[Any, dict[str, tuple[Array, Array]]] | None = None

    def _forward(self, a: Array) -> Array:
        # Remembered for relevance: every rule whose numerator is z_ij = a_i w_ij
        # (Zero, Epsilon, Gamma's first term, ...) needs this same z again.
        self._z = self.linear(a, self.weight)
        self._z.flags.writeable = False
        return self._z + self.expand_bias(self.bias)

    def check_rule(self, rule: Rule | None) -> None:
        super().check_rule(rule)
        if isinstance(rule, Pass) and not self.preserves_shape:
            raise ValueError(f"{self.where} cannot apply Pass(): its output and input differ "
                             "in shape; use a linear rule such as Epsilon()")
        if not isinstance(rule, (LinearRule, Pass)):
            raise ValueError(f"{self.where} cannot apply {describe(rule)}: not a linear rule")

    def relevance_with_ledger(self, R: Array, rule: Rule | None,
                              method: str = "fast") -> tuple[Array, Ledger]:
        """:meth:`relevance` with the ledger of the step: the linear-rule engine's entry.

        For a linear map evaluated as one step of another layer (LSTM's cell update
        and candidate), after ``forward`` on the same batch: ``R_in`` and the
        :class:`~lrp_ref.audit.Ledger` terms (absorbed bias and stabilizer, dropped).
        Checks ``R``, ``rule`` and ``method`` as :meth:`relevance` does.
        """
        R = self._check_output_array(R, "relevance")
        check_method(method)
        return self._relevance(R, rule, method)

    def _relevance(self, R: Array, rule: Rule | None, method: str) -> tuple[Array, Ledger]:
        self.check_rule(rule)
        if isinstance(rule, Pass):
            return R, self._no_loss(R)
        rule.check_input(self._input, self.where)
        return linear_engine.relevance(self, self._input, R, rule, method)

    def product(self, x: Array, w: Array) -> Array:
        """``sum_i x_i w_ij``: the remembered forward's when ``x, w`` are its input and weight.

        Reusing it saves half the products of an LRP-0 or LRP-eps step (the result
        is then read-only). Like the input, it is the last forward's: change the
        weights, forward again.
        """
        if self._z is not None and x is self._input and w is self.weight:
            return self._z
        return self.linear(x, w)

    # -- the maps a subclass provides --------------------------------------------------

    def linear(self, a: Array, w: Array) -> Array:
        """``sum_i a_i w_ij`` for every output ``j`` (no bias)."""
        raise NotImplementedError

    def linear_T(self, s: Array, w: Array) -> Array:
        """``sum_j w_ij s_j`` for every input ``i``: the adjoint of ``_linear``, a new array."""
        raise NotImplementedError

    def expand_bias(self, b: Array) -> Array:
        """The bias, broadcastable to the output."""
        raise NotImplementedError

    def patches(self, x: Array) -> Array:
        """``(B, P, K)``: the receptive field ``k`` of output position ``p``."""
        raise NotImplementedError

    def fold(self, cols: Array) -> Array:
        """The adjoint of ``_patches``: add patch entries back onto the input."""
        raise NotImplementedError

    def weight_pkj(self, w: Array) -> Array:
        """The weights as ``(P or 1, K, J)``: from element ``k`` to output ``j`` at ``p``."""
        raise NotImplementedError

    def window_kj(self) -> tuple[int, int]:
        """``(K, J)`` of :meth:`weight_pkj`: the explicit path checks its memory budget with
        them before building anything. A layer whose weights are large to build overrides it."""
        return self.weight_pkj(self.weight).shape[1:]

    def output_pj(self, z: Array) -> Array:
        """The output as ``(B, P, J)``."""
        raise NotImplementedError

    def output_from_pj(self, z_pj: Array) -> Array:
        """Inverse of ``_output_pj``."""
        raise NotImplementedError

    def _backward(self, grad_z: Array) -> Array:
        # The parameter gradients are computed from (input, grad_z) when first read (see
        # ParameterGradient): an input gradient, as for Gradient x Input, needs none, and
        # they can cost more than the rest of the step (Dense: an outer product the size
        # of the weight).
        # A call at a path not yet seen in the same trace is another call of this object
        # in the same backward pass (its gradients add up); else a new pass begins (on
        # its own, without a trace, always: a layer at two places always runs in one).
        call = current()
        last = self._last_backward
        if (call.trace is None or last is None or last[0] is None
                or last[0]() is not call.trace or call.path in last[1]):
            trace = None if call.trace is None else weakref.ref(call.trace)
            last = self._last_backward = (trace, {})
        last[1][call.path] = (self._input, grad_z)
        self._parameter_gradients = None
        return self.linear_T(grad_z, self.weight)

    def _parameter_gradient(self, name: str) -> Array | None:
        """``dL/d<name>`` from the last backward (None before one), computed once read.

        ``dL/dw = sum over the calls of the pass of dL/dw|call`` (a parameter used at
        two nodes gets both terms, the chain rule).
        """
        if self._last_backward is None:
            return None
        if self._parameter_gradients is None:
            first, *others = (self._compute_parameter_gradients(a, g)
                              for a, g in self._last_backward[1].values())
            for more in others:
                first = {key: first[key] + more[key] for key in first}
            self._parameter_gradients = first
        return self._parameter_gradients[name]

    def _compute_parameter_gradients(self, a: Array, grad_z: Array) -> dict[str, Array]:
        """``{name: dL/d<name>}`` for the input ``a`` and ``grad_z`` of one backward."""
        raise NotImplementedError
