"""Residual block ``y = body(x) + shortcut(x)`` and its relevance split.

docs/theory.md (section 6) names residual connections as a hard case: the sum
``y`` has two inputs, and relevance must be split between them instead of being
copied into both (copying doubles it — Captum issue 546, Zennit issue 236).
The split is the epsilon rule applied to the addition, whose two
"contributions" are the branch outputs::

    s(z)   = z + epsilon * sign(z),          sign(0) := +1
    R_body  = z_body  / s(z_body + z_short) * R
    R_short = z_short / s(z_body + z_short) * R

and the stabilizer keeps ``epsilon sign(z) / s(z) * R`` (booked as
``absorbed_stabilizer`` in the Residual's record). With the default
``epsilon=1e-6`` this is Zennit's ResNet canonizer (its ``Sum`` module with the
``Norm`` rule). ``R_body`` is propagated through the body, ``R_short`` through
the shortcut (the identity keeps it), and the two input relevances are summed at
``x``.

With ``epsilon=0`` the split is exact: LRP-0 through the block equals Gradient x
Input (``R = y g`` splits into ``z_body g`` and ``z_short g``, each of which the
branch turns into ``x`` times its gradient). The default differs from it by
the stabilizer, about ``1e-6 / |y|`` relative per block (~1e-5 for outputs of
order 0.1). Where ``epsilon=0`` and ``y = 0`` nothing can be split: that
relevance is booked as ``dropped``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..audit import LayerRecord, Ledger
from ..rules import Rule
from .base import Container, Layer, array_key, build, type_name
from .calls import Kept, inside
from .merge import proportional_split

Array = np.ndarray


class Residual(Container):
    """``y = body(x) + shortcut(x)``; the shortcut is the identity when None.

    Parameters
    ----------
    body : Layer
        The residual branch: any layer, typically a Sequential.
    shortcut : Layer or None
        The skip branch (e.g. a projection Conv2d); None is the identity.
    epsilon : float
        The stabilizer of the relevance split (module docstring), ``>= 0``.

    Notes
    -----
    The children are named ``"body"`` and ``"shortcut"`` (an identity shortcut
    has no child), so inside a Sequential at index 4 the paths are ``"4.body"``,
    ``"4.body.0"``, ... and ``"4.shortcut"``. A rule list entry for a Residual is
    a single Rule or a ``(body, shortcut)`` pair (the shortcut entry None for
    the identity).
    """

    #: The branch outputs of the call's forward, for the split.
    _z_body = Kept()
    _z_short = Kept()

    def __init__(self, body: Layer, shortcut: Layer | None = None,
                 epsilon: float = 1e-6) -> None:
        super().__init__()
        for name, branch in (("body", body), ("shortcut", shortcut)):
            if branch is not None and not isinstance(branch, Layer):
                raise TypeError(f"Residual: {name} must be a Layer, got {branch!r}")
        if body is None:
            raise TypeError("Residual: body must be a Layer, got None")
        if not (isinstance(epsilon, (int, float)) and math.isfinite(epsilon) and epsilon >= 0):
            raise ValueError(f"Residual: epsilon must be a finite number >= 0, got {epsilon!r}")
        self.body = body
        self.shortcut = shortcut
        self.epsilon = float(epsilon)
        layers = [body, *(layer for _, layer in body.named_layers())]
        if shortcut is not None:
            layers += [shortcut, *(layer for _, layer in shortcut.named_layers())]
        if len({id(layer) for layer in layers}) != len(layers):
            raise ValueError("Residual: body and shortcut share a layer object; "
                             "use a separate layer object for every position")

    def children(self) -> list[tuple[str, Layer]]:
        if self.shortcut is None:
            return [("body", self.body)]
        return [("body", self.body), ("shortcut", self.shortcut)]

    def __repr__(self) -> str:
        inner = [f"  (body) {self.body!r}".replace("\n", "\n  "),
                 f"  (shortcut) {self.shortcut!r}".replace("\n", "\n  ")
                 if self.shortcut is not None else "  (shortcut) identity"]
        return f"Residual(epsilon={self.epsilon!r},\n" + "\n".join(inner) + "\n)"

    # -- serialisation ----------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {"type": type_name(type(self)), "epsilon": self.epsilon, "body": self.body.config(),
                "shortcut": None if self.shortcut is None else self.shortcut.config()}

    @classmethod
    def from_config(cls, config: dict[str, Any], arrays: dict[str, Array],
                    prefix: str = "") -> Residual:
        if not isinstance(config.get("body"), dict):
            raise ValueError(f"Residual at '{prefix}': 'body' must be a layer config")
        shortcut = config.get("shortcut")
        return cls(build(config["body"], arrays, array_key(prefix, "body")),
                   None if shortcut is None
                   else build(shortcut, arrays, array_key(prefix, "shortcut")),
                   config.get("epsilon", 1e-6))

    # -- forward and backward ---------------------------------------------------------------

    def _forward(self, x: Array) -> Array:
        # both branches read the same x; each child keeps its own input for relevance
        with inside("body"):
            z_body = self.body.forward(x)
        with inside("shortcut"):
            z_short = x if self.shortcut is None else self.shortcut.forward(x)
        if z_body.shape != z_short.shape:
            raise ValueError(f"{self.where}: body output {z_body.shape} and shortcut output "
                             f"{z_short.shape} must have the same shape to be added")
        self._z_body, self._z_short = z_body, z_short
        return z_body + z_short

    def _backward(self, grad_y: Array) -> Array:
        with inside("shortcut"):
            grad_short = grad_y if self.shortcut is None else self.shortcut.backward(grad_y)
        with inside("body"):
            return self.body.backward(grad_y) + grad_short

    # -- rules ------------------------------------------------------------------------------

    def _assign_structured(self, spec: Any, out: dict[str, Rule | None]) -> None:
        self._assign_pair(spec, out, (("body", self.body), ("shortcut", self.shortcut)),
                          "(body, shortcut)")

    def _propagate(self, R: Array, assignment: dict[str, Rule | None], method: str,
                   records: list[LayerRecord]) -> tuple[Array, Ledger]:
        # R_body = z_body / s(z) R, R_short = z_short / s(z) R, z = z_body + z_short
        (R_body, R_short), own = proportional_split(R, (self._z_body, self._z_short),
                                                    self.epsilon)
        with inside("body"):
            R_in = self.body._explain(R_body, assignment, method, records)
        if self.shortcut is None:
            return R_in + R_short, own
        with inside("shortcut"):
            return R_in + self.shortcut._explain(R_short, assignment, method, records), own
