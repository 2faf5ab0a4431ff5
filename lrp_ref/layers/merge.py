"""Nodes with several inputs: Add, Concat and Mul, each with its relevance rule.

In a :class:`~lrp_ref.Graph` these nodes join branches. Their ``forward``
takes the inputs as separate arguments, ``forward(x_1, ..., x_n)``, and their
``relevance`` (and ``backward``) return a tuple with one array per input, in
the order of the arguments. None takes a rule: the split is a property of the
node (Add's ``epsilon``), as for :class:`~lrp_ref.Residual`.

* ``Add``: the epsilon rule applied to a sum whose "contributions" are its
  inputs, ``R_k = x_k / (z + eps sign(z)) R`` with ``z = sum_k x_k``
  (Zennit's ``Norm`` rule on its ``Sum`` module, default ``eps = 1e-6``).
* ``Concat``: each input gets the slice of ``R`` that its elements occupy.
* ``Mul``: a signal times a gate; the signal takes all the relevance (Arras
  et al. 2017, "Explaining recurrent neural network predictions in sentiment
  analysis", as lrp_ref.layers.lstm does for the LSTM gates).

The record of a merge node in an Explanation holds ``relevance_in`` as that
tuple; its ledger sums over all of them.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from ..audit import Ledger
from ..engine.kernels import divide, through
from ..rules import Rule
from .base import Layer, as_float_array, check_finite
from .calls import Kept, check_own_attributes, own_attributes

Array = np.ndarray


def total(parts: tuple[Array, ...] | list[Array]) -> Array:
    """``z = sum_k x_k`` of two or more arrays, as a new array, summed in order."""
    z = parts[0] + parts[1]
    for x in parts[2:]:
        z += x
    return z


def proportional_split(R: Array, parts: tuple[Array, ...], epsilon: float
                       ) -> tuple[tuple[Array, ...], Ledger]:
    """``R_k = x_k / (z + epsilon sign(z)) R`` with ``z = sum_k x_k``, and its ledger.

    Eq. (6) of docs/theory.md with the parts ``x_k`` of a sum as the
    contributions and no bias (:class:`Add`, :class:`~lrp_ref.Residual`): the
    stabilizer's share is ``absorbed_stabilizer``, a zero ``z`` with
    ``epsilon = 0`` drops its ``R``.
    """
    z = total(parts)
    s, ledger, overflow = divide(R, z, None, epsilon, out=z)  # s = R / (z + eps sign(z))
    *first, last = parts
    R_k = [through(lambda s, x=x: x * s, s, overflow) for x in first]          # x_k s
    # the last x_k s into s's own memory (a new array of this step): one array less
    R_k.append(through(lambda s: np.multiply(last, s, out=s), s, overflow))
    return tuple(R_k), ledger


class Merge(Layer):
    """A node of ``min_inputs`` or more inputs (at most ``max_inputs``, None: no limit).

    Subclasses implement ``_check_shapes(xs)``, ``_forward(xs)``,
    ``_backward(grad_z) -> tuple`` and ``_relevance(R, rule, method) -> (tuple, Ledger)``
    on the checked inputs ``xs`` (a list of arrays of one dtype).
    """

    min_inputs: ClassVar[int] = 2
    max_inputs: ClassVar[int | None] = None
    #: The inputs of the call's forward (per call, as ``_input``).
    _inputs = Kept(default=())

    def check_count(self, n: int) -> None:
        """Raise ValueError unless the node takes ``n`` inputs."""
        if n < self.min_inputs or (self.max_inputs is not None and n > self.max_inputs):
            want = (f"exactly {self.min_inputs}" if self.max_inputs == self.min_inputs
                    else f"at least {self.min_inputs}")
            raise ValueError(f"{self.where} takes {want} inputs, got {n}")

    def forward(self, *inputs: Array) -> Array:
        """``z`` from the inputs ``x_1, ..., x_n`` (given as separate arguments).

        The inputs are converted to one floating dtype (their common one;
        float64 for integers) and checked for NaN and inf and for shapes that
        fit. What is remembered for ``backward`` and ``relevance`` are the
        input arrays themselves (as :meth:`Layer.forward`).
        """
        self.check_count(len(inputs))
        arrays = [np.asarray(x) for x in inputs]
        floats = [x.dtype for x in arrays if np.issubdtype(x.dtype, np.floating)]
        dtype = np.result_type(*floats) if floats else np.dtype(np.float64)
        xs = [as_float_array(x, dtype, self.where) for x in arrays]
        for k, x in enumerate(xs):
            if x.ndim < 1:
                raise ValueError(f"{self.where}: input {k} needs a batch axis, got a scalar")
            check_finite(f"input {k}", x, self.where)
        self._check_shapes(xs)
        own = own_attributes(self)
        z = self._forward(xs)
        check_own_attributes(self, own)
        self._inputs = tuple(xs)
        self._input = xs[0]     # what Layer's checks read: forward was called, and the dtype
        self._output_shape = z.shape
        return z

    def _check_shapes(self, xs: list[Array]) -> None:
        raise NotImplementedError

    def _same_shapes(self, xs: list[Array]) -> None:
        if any(x.shape != xs[0].shape for x in xs):
            raise ValueError(f"{self.where}: inputs must have the same shape, got "
                             f"{', '.join(str(x.shape) for x in xs)}")


class Add(Merge):
    """``z = sum_k x_k`` of n >= 2 inputs of one shape; relevance split in proportion.

    The epsilon rule (eq. (6) of docs/theory.md) with the inputs as the
    contributions and no bias::

        s(z) = z + epsilon * sign(z),        sign(0) := +1
        R_k  = x_k / s(z) * R                (element-wise, z = sum_k x_k)

    The stabilizer keeps ``epsilon sign(z) / s(z) * R``, booked as
    ``absorbed_stabilizer``; where ``epsilon = 0`` and ``z = 0`` nothing can be
    split and ``R`` is booked as ``dropped``. The default ``epsilon = 1e-6``
    is Zennit's ``Norm`` rule on its ``Sum`` (the ResNet canonizer), as
    :class:`~lrp_ref.Residual`; ``epsilon = 0`` keeps LRP-0 equal to Gradient
    x Input (``R = z g`` splits into ``x_k g``).

    Example: ``Add(epsilon=0)`` of ``x_1 = 1``, ``x_2 = 3`` with ``R = 8`` gives
    ``R_1 = 1/4 8 = 2``, ``R_2 = 6``.
    """

    def __init__(self, epsilon: float = 1e-6) -> None:
        super().__init__()
        if not (isinstance(epsilon, (int, float)) and math.isfinite(epsilon) and epsilon >= 0):
            raise ValueError(f"Add: epsilon must be a finite number >= 0, got {epsilon!r}")
        self.epsilon = float(epsilon)

    def hyperparameters(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon}

    def _check_shapes(self, xs: list[Array]) -> None:
        self._same_shapes(xs)

    def _forward(self, xs: list[Array]) -> Array:
        return total(xs)

    def _backward(self, grad_z: Array) -> tuple[Array, ...]:
        return tuple(grad_z for _ in self._inputs)      # d z / d x_k = 1

    def _relevance(self, R: Array, rule: Rule | None, method: str
                   ) -> tuple[tuple[Array, ...], Ledger]:
        self.check_rule(rule)
        return proportional_split(R, self._inputs, self.epsilon)


class Concat(Merge):
    """``z = concatenate([x_1, ..., x_n], axis)``: each input gets its slice of ``R``.

    ``R_k`` is the part of ``R`` at the positions of ``x_k`` in ``z``; nothing is
    absorbed, so ``sum_k sum R_k = sum R`` exactly. ``axis`` counts the batch
    axis (as ``torch.cat``'s ``dim``): 1 is features or channels. The batch
    axis itself cannot be concatenated (samples would mix).
    """

    def __init__(self, axis: int = 1) -> None:
        super().__init__()
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
            raise TypeError(f"Concat: axis must be an int, got {axis!r}")
        if axis == 0:
            raise ValueError("Concat: axis 0 is the batch axis, which cannot be concatenated")
        self.axis = int(axis)

    def hyperparameters(self) -> dict[str, Any]:
        return {"axis": self.axis}

    def _check_shapes(self, xs: list[Array]) -> None:
        ndim = xs[0].ndim
        axis = self.axis + ndim if self.axis < 0 else self.axis
        if not 0 < axis < ndim or any(x.ndim != ndim for x in xs) or any(
                x.shape[:axis] + x.shape[axis + 1:] != xs[0].shape[:axis] + xs[0].shape[axis + 1:]
                for x in xs):
            raise ValueError(f"{self.where}: inputs must have the same shape except on axis "
                             f"{self.axis} (not the batch axis), got "
                             f"{', '.join(str(x.shape) for x in xs)}")

    def _forward(self, xs: list[Array]) -> Array:
        return np.concatenate(xs, axis=self.axis)

    def _split(self, t: Array) -> tuple[Array, ...]:
        ends = np.cumsum([x.shape[self.axis] for x in self._inputs])[:-1]
        return tuple(np.split(t, ends, axis=self.axis))

    def _backward(self, grad_z: Array) -> tuple[Array, ...]:
        return self._split(grad_z)

    def _relevance(self, R: Array, rule: Rule | None, method: str
                   ) -> tuple[tuple[Array, ...], Ledger]:
        self.check_rule(rule)
        return self._split(R), self._no_loss(R)


class Mul(Merge):
    """``z = x * g``: a signal ``x`` times a gate ``g`` (broadcast to ``x``'s shape).

    The gate is a squeeze-and-excitation weight ``(B, C, 1, 1)``, a sigmoid of
    the same shape as ``x``, ... Relevance is signal-take-all (Arras et al.
    2017; the LSTM's gates, lrp_ref.layers.lstm): the gate only modulates how
    much of the signal passes, so it gets none::

        R_x = R,        R_g = 0

    Nothing is absorbed. This is not Gradient x Input: that credits ``x`` and
    ``g`` each with ``x g dR/dz`` (the product rule), counting ``z`` twice.
    Inputs are ``forward(signal, gate)``, in that order.
    """

    min_inputs = 2
    max_inputs = 2

    def _check_shapes(self, xs: list[Array]) -> None:
        x, g = xs
        try:
            fits = g.ndim == x.ndim and np.broadcast_shapes(x.shape, g.shape) == x.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"{self.where}: the gate (input 1) of shape {g.shape} must broadcast "
                             f"to the signal's (input 0) shape {x.shape} with as many axes")

    def _forward(self, xs: list[Array]) -> Array:
        return xs[0] * xs[1]

    def _backward(self, grad_z: Array) -> tuple[Array, Array]:
        x, g = self._inputs
        # dz/dx = g; dz/dg = x, summed over the axes along which g was broadcast
        axes = tuple(k for k, (n, m) in enumerate(zip(g.shape, x.shape)) if n == 1 and m != 1)
        return grad_z * g, (grad_z * x).sum(axis=axes, keepdims=True)

    def _relevance(self, R: Array, rule: Rule | None, method: str
                   ) -> tuple[tuple[Array, Array], Ledger]:
        self.check_rule(rule)
        return (R, np.zeros_like(self._inputs[1])), self._no_loss(R)
