"""lrp_ref: a pure-NumPy reference implementation of Layer-wise Relevance Propagation."""

from .audit import LayerRecord, Ledger
from .io import load, save
from .layers import BatchNorm1d, BatchNorm2d, Dense, Flatten, Identity, Layer, ReLU, Residual
from .network import Explanation, Sequential
from .rules import AlphaBeta, Epsilon, Pass, Rule, Zero

__version__ = "0.1.0"

__all__ = [
    "AlphaBeta",
    "BatchNorm1d",
    "BatchNorm2d",
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
    "Residual",
    "Rule",
    "Sequential",
    "Zero",
    "load",
    "save",
]
