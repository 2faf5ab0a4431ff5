"""Shape-only layers: the elements move, none is computed; relevance moves with them.

Reshape, Permute, Transpose, ChannelShuffle, Slice and Chunk (``Flatten`` and
``Identity`` are in lrp_ref.layers.elementwise) compute ``z = P a`` with ``P``
a 0/1 matrix in which every output element ``z_j`` reads exactly one input
element ``a_{i(j)}``: ``z_j = a_{i(j)}``. Eq. (5) of docs/theory.md on that
map gives ``R_i<-j = a_i / z_j R_j = R_j`` where ``i = i(j)`` and 0 otherwise,
so::

    R_i = sum_{j : i(j) = i} R_j          (R_in = P^T R_out)

the same map as the gradient, ``grad_a = P^T grad_z``. A permutation
(Reshape, Permute, Transpose, ChannelShuffle) moves every element, so ``R_in``
holds the same numbers as ``R_out`` in other places. A selection (Slice,
Chunk) reads some elements and drops the rest: a dropped element feeds no
output, so no relevance arrives there and its ``R_i`` is 0; the selected ones
get theirs back. Either way nothing is absorbed or dropped from the ledger:
``sum R_in = sum R_out`` exactly (the same numbers are summed).

None of them takes a rule, and the batch axis (axis 0) never moves: shapes,
axes and indices name the other axes, as ``Flatten`` does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..audit import Ledger
from ..rules import Rule
from .base import Layer

Array = np.ndarray


class Rearrange(Layer):
    """A layer ``z = P a`` of a 0/1 map ``P``: backward and relevance both apply ``P^T``.

    Subclasses implement ``_forward(a)`` (``P a``) and ``_adjoint(t)``
    (``P^T t``, shaped like the input of the last forward).
    """

    def _adjoint(self, t: Array) -> Array:
        raise NotImplementedError

    def _backward(self, grad_z: Array) -> Array:
        return self._adjoint(grad_z)                 # grad_a = P^T grad_z

    def _relevance(self, R: Array, rule: Rule | None, method: str) -> tuple[Array, Ledger]:
        self.check_rule(rule)
        return self._adjoint(R), self._no_loss(R)    # R_in = P^T R_out, nothing absorbed

    def _fail(self, a: Array, what: str) -> ValueError:
        return ValueError(f"{self.where}: {what}, got input of shape {a.shape}")


def _int_tuple(values: Any, name: str, cls: str) -> tuple[int, ...]:
    if isinstance(values, (int, np.integer)):
        values = (values,)
    values = tuple(values)
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{cls}: {name} must be ints, got {values!r}")
    return tuple(int(v) for v in values)


class Reshape(Rearrange):
    """``z = a.reshape(B, *shape)`` (C order, like ``torch.Tensor.view``/``reshape``).

    ``shape`` is the new shape of one sample (the batch axis ``B`` is kept);
    one entry may be -1 (inferred), and an entry 0 keeps the input's size on
    that axis (ONNX's Reshape convention: ``Reshape((0, -1))`` maps
    ``(B, C, H, W)`` to ``(B, C, H*W)``). ``R_in = R_out.reshape(a.shape)``.

    Example: ``Reshape((2, 3))`` maps ``(B, 6)`` to ``(B, 2, 3)``; relevance
    ``[[1, 2, 3], [4, 5, 6]]`` goes back as ``[1, 2, 3, 4, 5, 6]``.
    """

    def __init__(self, shape: Any) -> None:
        super().__init__()
        self.shape = _int_tuple(shape, "shape", "Reshape")
        if sum(d == -1 for d in self.shape) > 1 or any(d < -1 for d in self.shape):
            raise ValueError(f"Reshape: shape entries are sizes >= 1, 0 (keep) and at most "
                             f"one -1, got {self.shape}")

    def hyperparameters(self) -> dict[str, Any]:
        return {"shape": list(self.shape)}

    def _forward(self, a: Array) -> Array:
        try:
            if any(d == 0 and k >= a.ndim for k, d in enumerate(self.shape, start=1)):
                raise ValueError                        # 0 keeps an axis a does not have
            return a.reshape((a.shape[0], *(a.shape[k] if d == 0 else d
                                             for k, d in enumerate(self.shape, start=1))))
        except ValueError:
            raise self._fail(a, f"cannot reshape a sample to {self.shape}") from None

    def _adjoint(self, t: Array) -> Array:
        return t.reshape(self._input.shape)


class Permute(Rearrange):
    """``z = a.transpose(dims)`` (``torch.permute``); ``dims[0]`` must be 0 (the batch).

    ``dims`` lists every axis of the input, batch axis included, as torch's
    ``permute`` does. ``R_in = R_out.transpose(argsort(dims))``.
    """

    def __init__(self, dims: Any) -> None:
        super().__init__()
        self.dims = _int_tuple(dims, "dims", "Permute")
        if sorted(self.dims) != list(range(len(self.dims))) or self.dims[:1] != (0,):
            raise ValueError(f"Permute: dims must be a permutation of 0..n-1 that keeps the "
                             f"batch axis 0 first, got {self.dims}")

    def hyperparameters(self) -> dict[str, Any]:
        return {"dims": list(self.dims)}

    def _forward(self, a: Array) -> Array:
        if a.ndim != len(self.dims):
            raise self._fail(a, f"dims {self.dims} permute {len(self.dims)} axes")
        return a.transpose(self.dims)

    def _adjoint(self, t: Array) -> Array:
        return t.transpose(np.argsort(self.dims))


class Transpose(Rearrange):
    """``z = swapaxes(a, axis0, axis1)`` (``torch.transpose``); neither may be the batch axis.

    Axes count the batch axis, as torch's ``dim0``, ``dim1`` (negative from the
    end). Swapping is its own inverse: ``R_in = swapaxes(R_out, axis0, axis1)``.
    """

    def __init__(self, axis0: int, axis1: int) -> None:
        super().__init__()
        self.axis0, self.axis1 = _int_tuple((axis0, axis1), "axes", "Transpose")
        if 0 in (self.axis0, self.axis1):
            raise ValueError("Transpose: axis 0 is the batch axis, which cannot move")

    def hyperparameters(self) -> dict[str, Any]:
        return {"axis0": self.axis0, "axis1": self.axis1}

    def _forward(self, a: Array) -> Array:
        if not all(-a.ndim < k < a.ndim for k in (self.axis0, self.axis1)):
            raise self._fail(a, f"axes {self.axis0}, {self.axis1} must be non-batch axes")
        return np.swapaxes(a, self.axis0, self.axis1)

    def _adjoint(self, t: Array) -> Array:
        return np.swapaxes(t, self.axis0, self.axis1)


class ChannelShuffle(Rearrange):
    """ShuffleNet's channel shuffle of ``(B, C, ...)`` in ``groups`` groups (Zhang et al. 2018).

    ``view(B, g, C/g, ...)``, swap axes 1 and 2, ``view(B, C, ...)`` (as
    torchvision's ``channel_shuffle`` and ``torch.nn.ChannelShuffle``): output
    channel ``j = q g + p`` is input channel ``i = p C/g + q``. Its inverse is
    the shuffle in ``C/g`` groups: ``R_in`` channel ``i`` is ``R_out`` channel ``j``.
    """

    def __init__(self, groups: int) -> None:
        super().__init__()
        (self.groups,) = _int_tuple(groups, "groups", "ChannelShuffle")
        if self.groups < 1:
            raise ValueError(f"ChannelShuffle: groups must be >= 1, got {self.groups}")

    def hyperparameters(self) -> dict[str, Any]:
        return {"groups": self.groups}

    @staticmethod
    def _shuffle(a: Array, groups: int) -> Array:
        B, C, *rest = a.shape
        return np.swapaxes(a.reshape(B, groups, C // groups, *rest), 1, 2).reshape(a.shape)

    def _forward(self, a: Array) -> Array:
        if a.ndim < 2 or a.shape[1] % self.groups:
            raise self._fail(a, f"the channels (axis 1) must split into {self.groups} groups")
        return self._shuffle(a, self.groups)

    def _adjoint(self, t: Array) -> Array:
        return self._shuffle(t, t.shape[1] // self.groups)


class Select(Rearrange):
    """``z = a[index]`` of a basic (slice and int) index that keeps the batch axis.

    Backward and relevance scatter into zeros of the input's shape: an element
    the index drops gets no gradient and no relevance (module docstring).
    Subclasses give ``_index(shape)``, the full numpy index for an input shape.
    """

    def _index(self, shape: tuple[int, ...]) -> tuple:
        raise NotImplementedError

    def _forward(self, a: Array) -> Array:
        try:
            return a[self._index(a.shape)]
        except IndexError as error:
            raise self._fail(a, f"index {self.describe()} does not fit ({error})") from None

    def _adjoint(self, t: Array) -> Array:
        full = np.zeros(self._input.shape, t.dtype)       # dropped elements: 0
        full[self._index(full.shape)] = t
        return full

    def describe(self) -> str:
        raise NotImplementedError


def _entry(item: Any) -> Any:
    """One entry of a Slice index: an int, a slice, or Ellipsis (``"..."`` in a config)."""
    if item is Ellipsis or item == "...":
        return Ellipsis
    if isinstance(item, slice):
        item = [item.start, item.stop, item.step]
    if isinstance(item, (list, tuple)) and len(item) == 3 and all(
            v is None or (isinstance(v, (int, np.integer)) and not isinstance(v, bool))
            for v in item):
        start, stop, step = (None if v is None else int(v) for v in item)
        if step == 0:
            raise ValueError("Slice: a slice step cannot be 0")
        return slice(start, stop, step)
    if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
        return int(item)
    raise TypeError(f"Slice: an index entry is an int, a slice or ... (Ellipsis), got {item!r}")


class Slice(Select):
    """``z = a[:, *index]``: basic slicing of the non-batch axes (``x[:, 1:3, ::2]``).

    ``index`` is a tuple with one entry per axis after the batch axis (a
    single entry may be given alone): a ``slice``, an ``int`` (selects and
    drops that axis) or one ``...`` (Ellipsis, as numpy and torch). In a
    model file a slice is ``[start, stop, step]`` (null for None) and
    Ellipsis is ``"..."``. The batch axis is always taken whole.

    Example: ``Slice((slice(1, 3),))`` of ``a = [[a0, a1, a2, a3]]`` is
    ``[[a1, a2]]``; relevance ``[[r1, r2]]`` goes back as ``[[0, r1, r2, 0]]``.
    """

    def __init__(self, index: Any) -> None:
        super().__init__()
        items = index if isinstance(index, (list, tuple)) else (index,)
        self.index = tuple(_entry(item) for item in items)
        if sum(item is Ellipsis for item in self.index) > 1:
            raise ValueError("Slice: an index can have only one ... (Ellipsis)")

    def hyperparameters(self) -> dict[str, Any]:
        return {"index": ["..." if item is Ellipsis else
                          [item.start, item.stop, item.step] if isinstance(item, slice) else item
                          for item in self.index]}

    def _index(self, shape: tuple[int, ...]) -> tuple:
        return (slice(None), *self.index)

    def describe(self) -> str:
        def text(item: Any) -> str:
            if item is Ellipsis:
                return "..."
            if isinstance(item, slice):
                parts = ["" if v is None else str(v) for v in (item.start, item.stop, item.step)]
                return ":".join(parts[:2] if item.step is None else parts)
            return str(item)
        return "[:, " + ", ".join(text(item) for item in self.index) + "]"

    def __repr__(self) -> str:
        return f"Slice({self.describe()})"


class Chunk(Select):
    """Piece ``index`` of ``torch.chunk(a, chunks, axis)``: one node per piece.

    torch cuts axis ``axis`` (of length ``L``, not the batch axis) into pieces
    of ``ceil(L / chunks)`` elements, the last one shorter; piece ``k`` is
    ``a[..., k n : (k + 1) n, ...]`` with ``n = ceil(L / chunks)``, computed at
    forward from ``L``. A Graph node has one output, so a chunk (or split)
    becomes one node per piece that is used, each reading the whole input:
    the pieces' relevances add up at that input (fan-out), each filling its
    own positions.
    """

    def __init__(self, chunks: int, index: int, axis: int = 1) -> None:
        super().__init__()
        self.chunks, self.index, self.axis = _int_tuple((chunks, index, axis), "arguments",
                                                        "Chunk")
        if self.chunks < 1 or not 0 <= self.index < self.chunks:
            raise ValueError(f"Chunk: needs chunks >= 1 and 0 <= index < chunks, got "
                             f"chunks={self.chunks}, index={self.index}")
        if self.axis == 0:
            raise ValueError("Chunk: axis 0 is the batch axis, which cannot be cut")

    def hyperparameters(self) -> dict[str, Any]:
        return {"chunks": self.chunks, "index": self.index, "axis": self.axis}

    def _index(self, shape: tuple[int, ...]) -> tuple:
        if not -len(shape) < self.axis < len(shape):
            raise IndexError(f"axis {self.axis} is not a non-batch axis")
        axis = self.axis % len(shape)
        n = math.ceil(shape[axis] / self.chunks)
        if self.index * n >= shape[axis] and shape[axis]:
            raise IndexError(f"an axis of {shape[axis]} gives fewer than {self.index + 1} "
                             f"pieces of {n}")
        return (slice(None),) * axis + (slice(self.index * n, (self.index + 1) * n),)

    def describe(self) -> str:
        return f"chunk {self.index} of {self.chunks} along axis {self.axis}"
