"""1-D pooling on ``(B, C, L)``: the 2-D pool with ``H = 1`` behind a reshape.

``AvgPool1d`` and ``MaxPool1d`` hold an :class:`~lrp_ref.layers.pooling.AvgPool2d`
or :class:`~lrp_ref.layers.pooling.MaxPool2d` with kernel ``(1, k)``, stride
``(1, s)`` (and padding ``(0, p)``) and hand it the input seen as
``(B, C, 1, L)`` (a view): forward, gradient and relevance are the 2-D layer's,
with the same rules and modes. Error messages from inside the window
computation name the 2-D layer and the ``(1, L)`` size it sees.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..audit import Ledger
from ..checks import is_int
from ..rules import Rule
from .base import Layer
from .calls import inside
from .pooling import AvgPool2d, MaxPool2d

Array = np.ndarray


def _int(value: Any, name: str, where: str) -> int:
    if not is_int(value):
        raise TypeError(f"{where}: {name} must be an int, got {value!r}")
    return int(value)


class Pool1d(Layer):
    """The base of the 1-D pools: a 2-D pool on ``(B, C, 1, L)``."""

    _pool: AvgPool2d | MaxPool2d

    def __init__(self, pool: AvgPool2d | MaxPool2d) -> None:
        super().__init__()
        self._pool = pool

    def hyperparameters(self) -> dict[str, Any]:
        return {"kernel_size": self._pool.kernel_size[1], "stride": self._pool.stride[1]}

    def expected_input_shape(self) -> tuple[int | None, ...]:
        return (None, None, None)

    # the 2-D pool runs at the path "<this path>.pool", so that what its forward keeps
    # (per call, lrp_ref.layers.calls) has a slot of its own beside this layer's

    def _forward(self, a: Array) -> Array:
        with inside("pool"):
            return self._pool.forward(a[:, :, None, :])[:, :, 0, :]

    def _backward(self, grad_z: Array) -> Array:
        with inside("pool"):
            return self._pool.backward(grad_z[:, :, None, :])[:, :, 0, :]

    def _relevance(self, R: Array, rule: Rule | None, method: str) -> tuple[Array, Ledger]:
        self.check_rule(rule)
        with inside("pool"):
            R_in, ledger = self._pool._relevance(R[:, :, None, :], rule, method)
        return R_in[:, :, 0, :], ledger


class AvgPool1d(Pool1d):
    """Average pooling on ``(B, C, L)``, like ``torch.nn.AvgPool1d`` (no padding)::

        z[b, c, t] = sum_u a[b, c, t*s + u] / k

    A linear layer: every linear rule applies, as for :class:`AvgPool2d` (of
    which it is the ``H = 1`` case, module docstring).

    Parameters
    ----------
    kernel_size : int
    stride : int, optional
        The kernel size when None (as in torch).
    """

    takes_rule = True

    def __init__(self, kernel_size: int, stride: int | None = None) -> None:
        k = _int(kernel_size, "kernel_size", "AvgPool1d")
        s = k if stride is None else _int(stride, "stride", "AvgPool1d")
        super().__init__(AvgPool2d((1, k), (1, s)))


class MaxPool1d(Pool1d):
    """Max pooling on ``(B, C, L)``, like ``torch.nn.MaxPool1d``::

        z[b, c, t] = max_u a_pad[b, c, t*s + u]

    It takes no rule: ``mode`` decides, as for :class:`MaxPool2d` (``"winner"``:
    the window's maximum takes its relevance, ties split; ``"proportional"``),
    of which it is the ``H = 1`` case (module docstring). Padding holds
    ``-inf`` and takes no relevance.

    Parameters
    ----------
    kernel_size : int
    stride : int, optional
        The kernel size when None (as in torch).
    mode : {"winner", "proportional"}
    padding : int
        At most half the kernel (as in torch).
    """

    def __init__(self, kernel_size: int, stride: int | None = None, mode: str = "winner",
                 padding: int = 0) -> None:
        k = _int(kernel_size, "kernel_size", "MaxPool1d")
        s = k if stride is None else _int(stride, "stride", "MaxPool1d")
        p = _int(padding, "padding", "MaxPool1d")
        super().__init__(MaxPool2d((1, k), (1, s), mode=mode, padding=(0, p)))

    @property
    def mode(self) -> str:
        return self._pool.mode

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "mode": self.mode,
                "padding": self._pool.padding[1]}
