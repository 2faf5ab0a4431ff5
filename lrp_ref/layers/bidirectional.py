"""Bidirectional LSTM: one LSTM reads the sequence forwards, one backwards.

With ``x`` of shape ``(B, T, F)`` and ``reverse(x)[:, t] = x[:, T-1-t]``::

    y = [fwd(x), bwd(reverse(x))]                 (return_sequences=False)
    y = [fwd(x), reverse(bwd(reverse(x)))]        (return_sequences=True)

concatenated on the feature axis; the first is ``torch.cat([h_n[0], h_n[1]], -1)``
of a bidirectional ``torch.nn.LSTM``, the second its ``output``. Relevance
(Arras et al. 2017, whose reference code is for this very model) splits ``R``
at the concatenation (each half belongs to one direction), propagates each half
through its LSTM and adds the two input relevances at ``x`` (the backward
direction's reversed back). Nothing is absorbed at the split.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..audit import LayerRecord, Ledger
from ..rules import Rule
from .base import Container, Layer, array_key, build, type_name
from .calls import inside
from .lstm import LSTM

Array = np.ndarray


class Bidirectional(Container):
    """Two LSTMs over the same sequence, forwards and backwards, outputs concatenated.

    Parameters
    ----------
    lstm_fwd, lstm_bwd : LSTM
        The directions (PyTorch's ``*_l0`` and ``*_l0_reverse`` parameters);
        same input size and ``return_sequences``. Their paths are ``"fwd"``
        and ``"bwd"`` below the wrapper's (``"1.fwd"``, ``"1.bwd"``). A rule
        list entry for a Bidirectional is a single Rule or a ``(fwd, bwd)`` pair.
    """

    def __init__(self, lstm_fwd: LSTM, lstm_bwd: LSTM) -> None:
        super().__init__()
        for name, lstm in (("lstm_fwd", lstm_fwd), ("lstm_bwd", lstm_bwd)):
            if not isinstance(lstm, LSTM):
                raise TypeError(f"Bidirectional: {name} must be an LSTM, got {lstm!r}")
        if lstm_fwd is lstm_bwd:
            raise ValueError("Bidirectional: the two directions must be separate LSTM objects")
        if (lstm_fwd.input_size, lstm_fwd.return_sequences) != (lstm_bwd.input_size,
                                                                lstm_bwd.return_sequences):
            raise ValueError(
                "Bidirectional: both LSTMs need the same input size and return_sequences, got "
                f"({lstm_fwd.input_size}, {lstm_fwd.return_sequences}) and "
                f"({lstm_bwd.input_size}, {lstm_bwd.return_sequences})")
        self.lstm_fwd, self.lstm_bwd = lstm_fwd, lstm_bwd
        self.return_sequences = lstm_fwd.return_sequences

    def children(self) -> list[tuple[str, Layer]]:
        return [("fwd", self.lstm_fwd), ("bwd", self.lstm_bwd)]

    def __repr__(self) -> str:
        return f"Bidirectional(\n  (fwd) {self.lstm_fwd!r}\n  (bwd) {self.lstm_bwd!r}\n)"

    def expected_input_shape(self) -> tuple[int | None, ...]:
        return self.lstm_fwd.expected_input_shape()

    # -- serialisation ----------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {"type": type_name(type(self)), "fwd": self.lstm_fwd.config(),
                "bwd": self.lstm_bwd.config()}

    @classmethod
    def from_config(cls, config: dict[str, Any], arrays: dict[str, Array],
                    prefix: str = "") -> Bidirectional:
        for name in ("fwd", "bwd"):
            if not isinstance(config.get(name), dict):
                raise ValueError(f"Bidirectional at '{prefix}': {name!r} must be a layer config")
        return cls(build(config["fwd"], arrays, array_key(prefix, "fwd")),
                   build(config["bwd"], arrays, array_key(prefix, "bwd")))

    # -- forward and backward ---------------------------------------------------------------

    def _reverse_output(self, y: Array) -> Array:
        """The backward direction's output in the original time order."""
        return y[:, ::-1] if self.return_sequences else y

    def _halves(self, y: Array) -> tuple[Array, Array]:
        H = self.lstm_fwd.hidden_size
        return y[..., :H], self._reverse_output(y[..., H:])

    def _forward(self, x: Array) -> Array:
        with inside("fwd"):
            y_fwd = self.lstm_fwd.forward(x)
        with inside("bwd"):
            y_bwd = self._reverse_output(self.lstm_bwd.forward(x[:, ::-1]))
        return np.concatenate([y_fwd, y_bwd], axis=-1)

    def _backward(self, grad_y: Array) -> Array:
        grad_fwd, grad_bwd = self._halves(grad_y)
        with inside("fwd"):
            grad_x = self.lstm_fwd.backward(grad_fwd)
        with inside("bwd"):
            return grad_x + self.lstm_bwd.backward(grad_bwd)[:, ::-1]

    # -- rules ------------------------------------------------------------------------------

    def _assign_structured(self, spec: Any, out: dict[str, Rule | None]) -> None:
        self._assign_pair(spec, out, (("fwd", self.lstm_fwd), ("bwd", self.lstm_bwd)),
                          "(fwd, bwd)")

    def _propagate(self, R: Array, assignment: dict[str, Rule | None], method: str,
                   records: list[LayerRecord]) -> tuple[Array, Ledger]:
        R_fwd, R_bwd = self._halves(R)
        with inside("fwd"):
            R_in = self.lstm_fwd._explain(R_fwd, assignment, method, records)
        with inside("bwd"):
            R_in = R_in + self.lstm_bwd._explain(R_bwd, assignment, method, records)[:, ::-1]
        return R_in, self._no_loss(R)
