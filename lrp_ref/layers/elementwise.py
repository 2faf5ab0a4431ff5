"""Layers that take no rule: ReLU, Flatten and Identity hand relevance through.

LRP treats the activation ``a_j = sigma(z_j)`` as part of the neuron: the
relevance of ``a_j`` is the relevance of ``z_j`` (Bach et al. 2015). Flatten
only reshapes, and Identity (what an imported Dropout becomes) does nothing.
"""

from __future__ import annotations

import numpy as np

from ..audit import Ledger
from ..rules import Rule
from .base import Layer

Array = np.ndarray


class PassThrough(Layer):
    """A rule-less layer whose relevance step reshapes ``R`` back to the input."""

    def _relevance(self, R: Array, rule: Rule | None, method: str) -> tuple[Array, Ledger]:
        self.check_rule(rule)
        return R.reshape(self._input.shape), self._no_loss(R)


class ReLU(PassThrough):
    """``a = max(0, z)``; gradient ``1[z > 0]`` (0 at ``z = 0``, as in PyTorch).

    It keeps its output, not its input: ``max(0, z) > 0`` exactly where ``z > 0``,
    which is all backward needs (relevance passes through). The output is held by
    the next layer anyway, so the input, the previous layer's output, is not kept
    alive: a quarter less memory held by a VGG-16 explanation.
    """

    def _forward(self, a: Array) -> Array:
        return np.maximum(a, 0)

    def _kept_input(self, a: Array, z: Array) -> Array:
        return z

    def _backward(self, grad_z: Array) -> Array:
        return grad_z * (self._input > 0)           # max(0, z) > 0  <=>  z > 0


class Flatten(PassThrough):
    """``(B, C, H, W) -> (B, C*H*W)`` (C order, like ``torch.nn.Flatten``)."""

    def _forward(self, a: Array) -> Array:
        return a.reshape(a.shape[0], -1)

    def _backward(self, grad_z: Array) -> Array:
        return grad_z.reshape(self._input.shape)


class Identity(PassThrough):
    """``a -> a``: a placeholder, e.g. for Dropout at inference."""

    def _forward(self, a: Array) -> Array:
        return a

    def _backward(self, grad_z: Array) -> Array:
        return grad_z
