"""The conservation audit: where every unit of relevance went.

For every layer and every rule the ledger balances to float rounding::

    sum(R_out) = sum(R_in) + absorbed_bias + absorbed_stabilizer + dropped

All four terms are per-sample arrays of shape ``(B,)``. They are computed from
the rule's own quantities (for epsilon: ``b_j / (z_j + eps s_j) R_j`` and
``eps s_j / (z_j + eps s_j) R_j``), never as a remainder, so an imbalance is a
real bug, not a definition.

* ``absorbed_bias``: relevance the bias (``b_j``, a BatchNorm shift, ...) took.
* ``absorbed_stabilizer``: relevance the stabilizer ``epsilon * sign(z_j)`` took.
* ``dropped``: relevance that reached no input because a denominator was
  exactly zero; negative where a rule creates relevance (alpha-beta at a neuron
  whose contributions all have one sign passes ``alpha R_j`` down and books
  ``-beta R_j``).
* ``conditioned``: relevance a CRP condition removed at the layer's output
  (``explain(..., conditions=...)``, Achtibat et al. 2023): the sum of ``R_j``
  over the channels the condition does not keep. 0 without conditions.

So with conditions the balance reads
``sum(R_out) = sum(R_in) + absorbed_bias + absorbed_stabilizer + dropped + conditioned``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .table import format_table

Array = np.ndarray


def per_sample_sum(x: Array | tuple[Array, ...]) -> Array:
    """Sum over every axis but the first (batch) axis: shape ``(B,)``.

    Of a tuple of arrays (the ``relevance_in`` of a merge node, one per input),
    the sum over all of them.
    """
    if isinstance(x, tuple):
        return sum(per_sample_sum(part) for part in x)
    return x.reshape(x.shape[0], -1).sum(axis=1)


def dropped_relevance(zero: Array, R: Array) -> Array:
    """``sum_j R_j`` over the outputs whose denominator is 0 (mask ``zero``), per sample.

    Such an output passes nothing on: its relevance is booked as ``dropped``.
    Usually no denominator is 0, and then no masked copy of ``R`` is formed.
    """
    if not zero.any():
        return np.zeros(R.shape[0], R.dtype)
    return per_sample_sum(np.where(zero, R, 0))


@dataclass(frozen=True)
class Ledger:
    """The ledger terms of one propagation step, each of shape ``(B,)``.

    ``conditioned`` (a CRP condition's removal) is 0 unless given.
    """

    absorbed_bias: Array
    absorbed_stabilizer: Array
    dropped: Array
    conditioned: Array | None = None

    def __post_init__(self) -> None:
        if self.conditioned is None:
            object.__setattr__(self, "conditioned", np.zeros_like(self.dropped))

    @classmethod
    def zeros(cls, batch: int, dtype: np.dtype = np.float64) -> Ledger:
        """An empty ledger: nothing absorbed, nothing dropped."""
        return cls(*(np.zeros(batch, dtype=dtype) for _ in range(3)))

    @classmethod
    def condition(cls, removed: Array) -> Ledger:
        """A ledger holding only ``conditioned = removed`` (per sample)."""
        zero = np.zeros_like(removed)
        return cls(zero, zero, zero, removed)

    def __add__(self, other: Ledger) -> Ledger:
        return Ledger(
            self.absorbed_bias + other.absorbed_bias,
            self.absorbed_stabilizer + other.absorbed_stabilizer,
            self.dropped + other.dropped,
            self.conditioned + other.conditioned,
        )

    def total(self) -> Array:
        """``absorbed_bias + absorbed_stabilizer + dropped + conditioned`` per sample."""
        return self.absorbed_bias + self.absorbed_stabilizer + self.dropped + self.conditioned


@dataclass(frozen=True)
class LayerRecord:
    """What one layer did to the relevance in one explanation.

    ``path`` is the layer's path (``"3"``, ``"4.body.0"``); ``layer`` its type
    name; ``rule`` the rule it applied (None for layers that take no rule).
    ``relevance_out`` arrived at the layer's output (before a CRP condition
    masks it; the removed part is ``conditioned``), ``relevance_in`` left at its
    input (a tuple, one array per input, for a merge node: Add, Concat, Mul).
    Records of containers (nested Sequential, Residual, Graph) cover the whole
    container: their ledger is the sum of their children's plus their own
    (a Residual's split), so that every record balances on its own.
    """

    path: str
    layer: str
    rule: object
    relevance_in: Array
    relevance_out: Array
    ledger: Ledger
    container: bool = False

    @property
    def absorbed_bias(self) -> Array:
        return self.ledger.absorbed_bias

    @property
    def absorbed_stabilizer(self) -> Array:
        return self.ledger.absorbed_stabilizer

    @property
    def dropped(self) -> Array:
        return self.ledger.dropped

    @property
    def conditioned(self) -> Array:
        return self.ledger.conditioned

    def imbalance(self) -> Array:
        """``sum R_out - (sum R_in + absorbed + dropped + conditioned)`` per sample;
        ~0 up to rounding."""
        return (
            per_sample_sum(self.relevance_out)
            - per_sample_sum(self.relevance_in)
            - self.ledger.total()
        )


def format_ledger(records: list[LayerRecord], sample: int = 0) -> str:
    """The ledger of one sample as a plain-text table, one row per layer record."""
    from .rules import describe

    header = ("path", "layer", "rule", "sum R_out", "sum R_in", "bias", "stabilizer",
              "dropped", "conditioned", "imbalance")
    rows = [header]
    for r in records:
        numbers = (per_sample_sum(r.relevance_out)[sample], per_sample_sum(r.relevance_in)[sample],
                   r.absorbed_bias[sample], r.absorbed_stabilizer[sample], r.dropped[sample],
                   r.conditioned[sample], r.imbalance()[sample])
        rule = describe(r.rule) if not r.container else "(container)"
        rows.append((r.path, r.layer, rule, *(f"{v:+.6g}" for v in numbers)))
    lines = format_table(rows, "<<<" + ">" * (len(header) - 3))
    lines.insert(1, "-" * len(lines[0]))
    samples = len(records[0].absorbed_bias) if records else 0
    lines.append(f"(sample {sample} of {samples}; ledger(k) shows sample k)")
    if any(r.absorbed_bias[sample] < 0 or r.absorbed_stabilizer[sample] < 0 for r in records):
        lines.append("(a negative bias or stabilizer entry is relevance injected, not absorbed: "
                     "there sum R_in exceeds sum R_out by that amount)")
    return "\n".join(lines)
