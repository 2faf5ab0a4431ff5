"""Rules for the product of two activations (a MatMul node): which factor takes the relevance.

A :class:`~lrp_ref.MatMul` node ``O = a b`` needs no rule: the ``constant`` it was
built with decides (docs/transformers.md). A composite overrides that choice
with one of these rules (the ``attention`` option of lrp_ref.rules.composites):

* ``UniformSplit()``: each term ``a_ji b_ip`` takes its eq. (6) share of
  ``R_jp``, and that share is split evenly between its two factors (AttnLRP,
  Achtibat et al. 2024, Prop. 3.3): ``f_a = f_b = 1/2``;
* ``HeldConstant(k)``: factor ``k`` (0: ``a``, 1: ``b``) is held constant and
  takes nothing, the other takes the whole share (CP-LRP, Ali et al. 2022: the
  attention weights ``A`` of ``A V``, ``k = 0``).

The stabilizer is the node's own ``epsilon``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Rule


@dataclass(frozen=True)
class UniformSplit(Rule):
    """Each factor of a product of two activations takes half (AttnLRP Prop. 3.3)."""

    @property
    def constant(self) -> None:
        """No factor is held constant (the ``constant`` of :class:`~lrp_ref.MatMul`)."""
        return None


@dataclass(frozen=True)
class HeldConstant(Rule):
    """Factor ``operand`` (0 or 1) of a product is held constant: the other takes all (CP-LRP)."""

    operand: int = 0

    def __post_init__(self) -> None:
        if self.operand not in (0, 1) or isinstance(self.operand, bool):
            raise ValueError(f"HeldConstant: operand must be 0 or 1 (the factor held "
                             f"constant), got {self.operand!r}")

    @property
    def constant(self) -> int:
        """The factor held constant (the ``constant`` of :class:`~lrp_ref.MatMul`)."""
        return self.operand


#: The rules a MatMul node accepts.
PRODUCT_RULES = (UniformSplit, HeldConstant)

__all__ = ["PRODUCT_RULES", "HeldConstant", "UniformSplit"]
