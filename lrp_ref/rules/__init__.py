"""LRP rules: what each rule does to one connection ``i -> j``.

Notation (docs/theory.md, section 3; Bach et al. 2015; Montavon et al. 2019):

* ``a_i``   input ``i`` of the layer (an activation of layer ``l``),
* ``w_ij``  the weight from input ``i`` to output ``j``, ``b_j`` the bias,
* ``z_ij = a_i w_ij`` the contribution of ``i`` to ``j``,
  ``z_j = sum_i z_ij + b_j`` the pre-activation of output ``j``,
* ``R_j``   the relevance arriving at output ``j``; ``R_i = sum_j R_i<-j``.

A rule is a small, immutable description (the layer owns the propagation, as in
Zennit): :mod:`.basic` holds the rules of eqs. (5)-(7), :mod:`.zoo` the later
rules, :mod:`.products` the two rules of a MatMul node, :mod:`.parts` the
vocabulary (modified inputs and weights) in which the fast engine reads them,
and :mod:`.equations` one literal function per rule.
Composites, rule specifications and canonizers (which read whole networks)
are :mod:`.composites`, :mod:`.spec` and :mod:`.canonize`; this package's
``__init__`` imports only the rules themselves.
"""

from .base import LinearRule, Pass, Rule, describe, short_repr
from .basic import ALPHA_BETA_TOLERANCE, AlphaBeta, AlphaBetaEq7, Epsilon, Zero
from .parts import AddNegative, AddPositive, Bound, Part, Term
from .products import HeldConstant, UniformSplit
from .zoo import Flat, Gamma, GeneralizedGamma, WSquare, ZBox, ZPlus

__all__ = [
    "ALPHA_BETA_TOLERANCE",
    "AddNegative",
    "AddPositive",
    "AlphaBeta",
    "AlphaBetaEq7",
    "Bound",
    "Epsilon",
    "Flat",
    "Gamma",
    "GeneralizedGamma",
    "HeldConstant",
    "LinearRule",
    "Part",
    "Pass",
    "Rule",
    "Term",
    "UniformSplit",
    "WSquare",
    "ZBox",
    "ZPlus",
    "Zero",
    "describe",
    "short_repr",
]
