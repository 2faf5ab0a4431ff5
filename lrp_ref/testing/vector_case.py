"""One case of the known-answer suite (:mod:`lrp_ref.testing.vectors`): :class:`Case`, its
tolerances, and the generator that seeds a case's numbers by its name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..graph import Graph
from ..network import Sequential

Array = np.ndarray

FLOAT64_RTOL = 1e-8
FLOAT64_WHY = ("float64: two correct implementations differ by rounding, amplified by "
               "sum_i |z_ij| / |z_j| where a denominator is small; lrp_ref's fast path is "
               "within 3e-14 of these answers, Zennit and Captum agree with lrp_ref to 2e-9 "
               "on random networks (docs/peers.md, asserted there at 1e-8), hence 1e-8 of "
               "each sample's max|R|")
FLOAT32_RTOL = 1e-4
FLOAT32_WHY = ("float32 arithmetic on float32 parameters and input, against the float64 "
               "answer for the same numbers: the float32 unit roundoff 6e-8, amplified by a "
               "few layers, small denominators and another summation order; lrp_ref's own "
               "float32 run is within 6e-7 here, 1e-4 leaves room for other orders")


@dataclass(frozen=True)
class Case:
    """One known answer: ``net`` explained at ``x`` under ``rule`` from ``output_relevance``.

    ``output_relevance`` None means ``onehot(target) * f(x)`` (lrp_ref's seeding).
    ``source`` names where an external number comes from; ``peer`` records a
    peer's number and convention where it differs from lrp_ref's.
    """

    name: str
    about: str
    net: Sequential | Graph
    x: Array
    rule: Any
    target: Array | None = None
    output_relevance: Array | None = None
    dtype: str = "float64"
    source: str | None = None
    peer: dict[str, Any] | None = None
    known: dict[str, Any] = field(default_factory=dict)

    @property
    def rtol(self) -> float:
        return FLOAT64_RTOL if self.dtype == "float64" else FLOAT32_RTOL

    @property
    def why(self) -> str:
        return FLOAT64_WHY if self.dtype == "float64" else FLOAT32_WHY


def rng_for(name: str) -> np.random.Generator:
    """A generator seeded by the case name (stable across runs and platforms)."""
    return np.random.default_rng([ord(c) for c in name])


__all__ = ["Case", "rng_for"]
