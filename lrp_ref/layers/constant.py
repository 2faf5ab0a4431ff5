"""A signal combined with a constant: ``AddConstant`` (x + c), ``Scale`` (x * s) and
``ConcatConstant`` (a class token concatenated to the tokens).

The constant is a number or an array fixed in the model (a parameter or
buffer read in ``forward``, a literal): it broadcasts to the signal's shape
and is saved with the layer. Neither layer takes a rule.

* ``AddConstant(c)``: ``c`` acts as a bias (eq. (6) of docs/theory.md with the
  one contribution ``x`` and the bias ``c``): the signal gets
  ``x / (x + c + eps sign(x + c)) R``, the constant's share is booked as
  ``absorbed_bias``, the stabilizer's as ``absorbed_stabilizer``.
* ``Scale(s)``: multiplication by a constant (layer scale, a fixed
  temperature) passes relevance unchanged, ``R_x = R``: the product has one
  variable factor, which takes all (as the signal of :class:`~lrp_ref.Mul`).
* ``ConcatConstant(c, axis)``: ``z = concatenate([c, x], axis)`` with ``c``
  repeated for every sample (a ViT's class token): ``x`` gets its slice of
  ``R``, the constant's positions keep theirs, booked as ``absorbed_bias``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..audit import Ledger, per_sample_sum
from ..engine.kernels import divide, through
from ..rules import Rule
from .base import Layer

Array = np.ndarray


class WithConstant(Layer):
    """A one-input layer holding one constant array that broadcasts to its input."""

    def _constant(self, name: str, value: Any) -> Array:
        array = np.asarray(value)
        if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype,
                                                                      np.complexfloating):
            raise TypeError(f"{type(self).__name__}: {name} must be a real number or array, "
                            f"got {value!r}")
        array = array.astype(np.float64 if not np.issubdtype(array.dtype, np.floating)
                             else array.dtype)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{type(self).__name__}: {name} contains NaN or inf")
        return array

    def _check_broadcast(self, a: Array, c: Array) -> None:
        try:
            fits = np.broadcast_shapes(a.shape, c.shape) == a.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"{self.where}: the constant of shape {c.shape} must broadcast to "
                             f"the input's shape, got input of shape {a.shape}")


class AddConstant(WithConstant):
    """``z = x + c``, ``c`` a constant broadcast to ``x``: ``c`` takes its share as a bias.

    Eq. (6) of docs/theory.md with one contribution ``x`` and the bias ``c``::

        s(z) = z + epsilon * sign(z),        sign(0) := +1,   z = x + c
        R_x  = x / s(z) * R                  (element-wise)

    ``c / s(z) R`` is booked as ``absorbed_bias``, ``epsilon sign(z) / s(z) R``
    as ``absorbed_stabilizer``; with ``epsilon = 0`` a zero ``z`` drops its
    ``R``. ``epsilon`` defaults to 1e-6, as :class:`~lrp_ref.Add`.

    Example: ``AddConstant(1.0, epsilon=0)`` of ``x = 3`` with ``R = 8``:
    ``z = 4``, ``R_x = 3/4 8 = 6``, absorbed bias ``1/4 8 = 2``.
    """

    array_names = ("constant",)

    def __init__(self, constant: Any, epsilon: float = 1e-6) -> None:
        super().__init__()
        self.constant = self._constant("constant", constant)
        if not (isinstance(epsilon, (int, float)) and math.isfinite(epsilon) and epsilon >= 0):
            raise ValueError(f"AddConstant: epsilon must be a finite number >= 0, "
                             f"got {epsilon!r}")
        self.epsilon = float(epsilon)

    def hyperparameters(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon}

    def added(self, a: Array) -> Array:
        """The constant ``c`` added to input ``a`` (checked to broadcast to it)."""
        self._check_broadcast(a, self.constant)
        return self.constant

    def _forward(self, a: Array) -> Array:
        return a + self.added(a)

    def _backward(self, grad_z: Array) -> Array:
        return grad_z                                           # dz/dx = 1

    def _relevance(self, R: Array, rule: Rule | None, method: str) -> tuple[Array, Ledger]:
        self.check_rule(rule)
        x = self._input
        s, ledger, overflow = divide(R, x, self.added(x), self.epsilon)  # s = R / s(x + c)
        return through(lambda s: x * s, s, overflow), ledger              # R_x = x s


class Scale(WithConstant):
    """``z = x * s``, ``s`` a constant broadcast to ``x``; relevance passes: ``R_x = R``.

    Multiplication by a constant or a parameter (layer scale) has one variable
    factor, ``x``, which takes all the relevance; nothing is absorbed. (LRP-0
    of the one contribution ``z_x = x s`` to ``z`` gives the same:
    ``z_x / z R = R``.) The gradient is ``s grad_z``.
    """

    array_names = ("scale",)

    def __init__(self, scale: Any) -> None:
        super().__init__()
        self.scale = self._constant("scale", scale)

    def _forward(self, a: Array) -> Array:
        self._check_broadcast(a, self.scale)
        return a * self.scale

    def _backward(self, grad_z: Array) -> Array:
        return grad_z * self.scale

    def _relevance(self, R: Array, rule: Rule | None, method: str) -> tuple[Array, Ledger]:
        self.check_rule(rule)
        return R, self._no_loss(R)


class ConcatConstant(WithConstant):
    """``z = concatenate([c, x], axis)``: a constant ``c`` of one sample's shape, repeated
    for every sample, before the signal ``x`` (after it with ``first=False``).

    A vision transformer's class token (``torch.cat([class_token.expand(n, -1, -1), x],
    dim=1)``). ``z`` has two kinds of positions: those of ``x``, which read one
    input element each, and those of ``c``, which read none: no relevance can
    reach the constant, so it keeps its share, as a bias does (eq. (6) of
    docs/theory.md: the bias's term ``b_j / z_j R_j`` is ``R_j`` where ``z_j = b_j``)::

        R_x = R[positions of x]          absorbed_bias = sum R[positions of c]

    and ``sum R = sum R_x + absorbed_bias`` exactly. The gradient is the same slice.
    ``axis`` counts the batch axis (as ``torch.cat``'s ``dim``); the constant's
    shape is one sample's, equal to ``x.shape[1:]`` except along ``axis``.

    Example: tokens ``x`` of shape ``(B, 2, D)`` and ``c`` of shape ``(1, D)``
    give ``z`` of shape ``(B, 3, D)``, ``z[:, 0] = c``; ``R_x = R[:, 1:]`` and
    ``R[:, 0]`` (summed per sample) is absorbed.
    """

    array_names = ("constant",)

    def __init__(self, constant: Any, axis: int = 1, first: bool = True) -> None:
        super().__init__()
        self.constant = self._constant("constant", constant)
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
            raise TypeError(f"ConcatConstant: axis must be an int, got {axis!r}")
        if axis == 0:
            raise ValueError("ConcatConstant: axis 0 is the batch axis; the constant is "
                             "concatenated along an axis of each sample")
        if not isinstance(first, bool):
            raise TypeError(f"ConcatConstant: first must be True or False, got {first!r}")
        self.axis, self.first = int(axis), first

    def hyperparameters(self) -> dict[str, Any]:
        return {"axis": self.axis, "first": self.first}

    def _forward(self, a: Array) -> Array:
        axis = self.axis % a.ndim
        shape = a.shape[1:axis] + a.shape[axis + 1:]
        c = self.constant
        if c.ndim != a.ndim - 1 or c.shape[:axis - 1] + c.shape[axis:] != shape:
            raise ValueError(f"{self.where}: the constant of shape {c.shape} must have one "
                             f"sample's shape but on axis {self.axis}, got input of shape "
                             f"{a.shape}")
        c = np.broadcast_to(c.astype(a.dtype, copy=False), (a.shape[0], *c.shape))
        return np.concatenate([c, a] if self.first else [a, c], axis=axis)

    def _parts(self, t: Array) -> tuple[Array, Array]:
        """``(the signal's part, the constant's part)`` of an output-shaped ``t``."""
        n = self.constant.shape[self.axis % t.ndim - 1]
        head, tail = np.split(t, [n if self.first else t.shape[self.axis] - n], axis=self.axis)
        return (tail, head) if self.first else (head, tail)

    def _backward(self, grad_z: Array) -> Array:
        return self._parts(grad_z)[0]

    def _relevance(self, R: Array, rule: Rule | None, method: str) -> tuple[Array, Ledger]:
        self.check_rule(rule)
        R_x, R_c = self._parts(R)
        zero = np.zeros(R.shape[0], R.dtype)
        return R_x, Ledger(per_sample_sum(R_c), zero, zero.copy())
