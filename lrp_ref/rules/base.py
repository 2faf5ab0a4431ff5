"""What every rule is: the base classes, ``Pass``, parameter checks and descriptions."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .equations import Terms
from .parts import Part

Array = np.ndarray


class Rule:
    """Base class of all rules."""


class LinearRule(Rule):
    """A rule for linear layers (Dense, Conv2d, AvgPool2d, BatchNorm)."""

    def parts(self) -> tuple[Part, ...]:
        """The parts whose sum is this rule (see the module docstring)."""
        raise NotImplementedError

    def equation(self, a: Array, patches: Callable[[Array], Array], w: Array, b: Array,
                 R: Array) -> tuple[Array, Terms]:
        """This rule's literal function of :mod:`lrp_ref.rules.equations` on one layer.

        ``a`` is the layer input and ``patches`` cuts an array shaped like it
        into ``(B, P, K)`` (0 on padding); ``w`` is ``(P or 1, K, J)``, ``b`` and
        ``R`` are ``(B, P, J)``. Returns ``R_i`` as patches and the ledger terms.
        """
        raise NotImplementedError

    def check_input(self, a: Array, where: str) -> None:
        """Raise ValueError when the rule cannot be applied to the layer input ``a``.

        Called by the layer before :meth:`parts` are evaluated; ``where`` names
        the layer (path and type). Most rules accept any input; :class:`ZBox`
        checks that its bounds broadcast to ``a``.
        """


def real_number(value: object) -> object:
    """A NumPy real scalar (``np.float32(1e-6)``, ``np.int64(1)``) as the Python number it
    holds; anything else unchanged (the caller checks it)."""
    return value.item() if isinstance(value, (np.integer, np.floating)) else value


def check_epsilon(name: str, value: float) -> float:
    """``value`` (a Python or NumPy real number, finite, ``>= 0``) as a Python number."""
    value = real_number(value)
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def check_bias_flag(bias: object) -> None:
    if not isinstance(bias, bool):
        raise TypeError(f"bias must be True or False, got {bias!r}")


@dataclass(frozen=True)
class Pass(Rule):
    """``R_in = R_out``: hands relevance through an element-wise layer.

    For BatchNorm this is Zennit's default: the shift is never absorbed, the
    layer below shares the relevance out with its own (pre-BatchNorm) outputs.
    """


def _rule_parameters(rule: Rule) -> dict[str, object]:
    """The fields of a rule, for reprs and the audit table."""
    return {f: getattr(rule, f) for f in getattr(rule, "__dataclass_fields__", {})}


def short_repr(value: object) -> str:
    """``repr(value)``, but ``array(3, 1, 1)`` for an array (its shape, not its entries)."""
    return f"array{value.shape}" if isinstance(value, np.ndarray) else repr(value)


def describe(rule: Rule | None) -> str:
    """A short one-line description of a rule, e.g. ``Epsilon(1e-06)``."""
    if rule is None:
        return "-"
    values = [short_repr(v) for v in _rule_parameters(rule).values()]
    return f"{type(rule).__name__}({', '.join(values)})"
