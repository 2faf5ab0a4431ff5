"""lrp_ref: a pure-NumPy reference implementation of Layer-wise Relevance Propagation."""

from .audit import LayerRecord, Ledger
from .io import load, save
from .layers import Dense, Flatten, Identity, Layer, ReLU
from .network import Explanation, Sequential
from .rules import AlphaBeta, Epsilon, Pass, Rule, Zero

__version__ = "0.1.0"

__all__ = [
    "AlphaBeta",
    "Dense",
    "Epsilon",
    "Explanation",
    "Flatten",
    "Identity",
    "Layer",
    "LayerRecord",
    "Ledger",
    "Pass",
    "ReLU",
    "Rule",
    "Sequential",
    "Zero",
    "load",
    "save",
]
