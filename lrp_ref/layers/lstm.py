"""LSTM with LRP for sequences (Arras et al. 2017).

Forward, with PyTorch's gate order ``(i, f, g, o)``, ``batch_first`` input
``x`` of shape ``(B, T, F)`` and zero initial state ``h_0 = c_0 = 0`` (written
here for step ``t = 1 .. T``, ``W_ih`` of shape ``(4H, F)``, ``W_hh`` ``(4H, H)``)::

    [a_i, a_f, a_g, a_o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
    i_t = sigmoid(a_i)   f_t = sigmoid(a_f)   g_t = tanh(a_g)   o_t = sigmoid(a_o)
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

The output is ``h_T`` ``(B, H)``, or every ``h_t`` ``(B, T, H)`` with
``return_sequences=True``.

Relevance follows Arras et al. 2017 ("Explaining recurrent neural network
predictions in sentiment analysis", WASSA@EMNLP, and the authors' NumPy
reference for bidirectional LSTMs), stepping back from ``t = T`` to 1:

1. ``h_t = o_t * tanh(c_t)`` hands its relevance to the cell:
   ``R(c_t) += R(h_t)`` (the gate ``o_t`` gets none, "signal-take-all").
2. The cell update ``c_t = f_t c_{t-1} + i_t g_t`` splits ``R(c_t)`` in
   proportion to its two terms, with the rule's stabilizer::

       R(c_{t-1}) = f_t c_{t-1} / (c_t + eps sign(c_t)) * R(c_t)
       R(g_t)     = i_t g_t     / (c_t + eps sign(c_t)) * R(c_t)

   and the gates ``f_t``, ``i_t`` get none (signal-take-all). This is the
   epsilon rule on the linear map ``c_t = [f_t c_{t-1}, i_t g_t] @ [I; I]``.
3. The candidate ``g_t = tanh(a_g)`` hands ``R(g_t)`` to ``a_g``, the linear
   map ``a_g = [x_t, h_{t-1}] @ w + b`` with ``w = [W_ih[g]; W_hh[g]]^T`` and
   ``b = b_ih[g] + b_hh[g]``, which the layer's rule (``Zero()`` or
   ``Epsilon(eps)``, eqs. (5), (6) of docs/theory.md) redistributes onto ``x_t`` and
   ``h_{t-1}``; ``R(h_{t-1})`` joins step 1 of the previous step.

Steps 2 and 3 are evaluated by the shared linear-rule engine
(:class:`~lrp_ref.layers.dense.Dense` objects built from the LSTM's weights,
one ``forward`` and one ``relevance_with_ledger`` call per time step), so ``method="explicit"``
and ``"fast"`` both exist and the bias, the stabilizer and zero denominators
are booked exactly as for a Dense layer. The layer's ledger is the sum over all
steps. With zero biases and ``eps = 0`` every step conserves, so
``sum R(x) = sum R(output)`` unless some ``c_t`` or ``a_g`` is exactly 0.
The initial state is zero, so it receives no relevance.

Only ``Zero()`` and ``Epsilon(eps)`` are accepted: Arras et al. define the
rules for this family (the cell split is LRP-eps with the layer's eps);
rules that modify weights or split contributions by sign have no defined
meaning for the gate products.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..audit import Ledger
from ..checks import float_dtype
from ..rules import Epsilon, Rule, Zero, describe
from .base import Layer, ParameterGradient, as_float_array, check_finite
from .calls import Kept, inside
from .dense import Dense

Array = np.ndarray


def sigmoid(x: Array) -> Array:
    """``1 / (1 + exp(-x))``, computed as ``(1 + tanh(x / 2)) / 2`` (no overflow)."""
    return 0.5 * (1 + np.tanh(0.5 * x))


class LSTM(Layer):
    """A single-layer LSTM, ``batch_first``, PyTorch's gate order ``(i, f, g, o)``.

    Parameters
    ----------
    weight_ih : array_like, shape (4H, F)
        PyTorch's ``weight_ih_l0``: rows ``[0:H]`` input gate, ``[H:2H]`` forget
        gate, ``[2H:3H]`` cell candidate, ``[3H:4H]`` output gate.
    weight_hh : array_like, shape (4H, H)
        PyTorch's ``weight_hh_l0``, same row blocks.
    bias_ih, bias_hh : array_like, shape (4H,), optional
        Zeros when None.
    return_sequences : bool
        Output every ``h_t`` ``(B, T, H)`` instead of the last ``h_T`` ``(B, H)``.

    Notes
    -----
    ``backward`` gives ``grad_weight_ih``, ``grad_weight_hh``,
    ``grad_bias_ih`` and ``grad_bias_hh`` (backpropagation through time; all
    four are trainable, :meth:`gradients`).
    ``relevance`` takes ``Zero()`` or ``Epsilon(eps)`` (module docstring).
    """

    takes_rule = True
    array_names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    parameter_names = array_names
    grad_weight_ih = ParameterGradient()
    grad_weight_hh = ParameterGradient()
    grad_bias_ih = ParameterGradient()
    grad_bias_hh = ParameterGradient()
    #: What forward keeps per call: every ``h_t``, ``c_t`` and the gate values.
    _h = Kept()
    _c = Kept()
    _gate_values = Kept()

    def __init__(self, weight_ih: Any, weight_hh: Any, bias_ih: Any = None, bias_hh: Any = None,
                 return_sequences: bool = False) -> None:
        super().__init__()
        w = np.asarray(weight_ih)
        dtype = float_dtype(w)
        self.weight_ih = as_float_array(w, dtype, "LSTM")
        self.weight_hh = as_float_array(weight_hh, dtype, "LSTM")
        if self.weight_hh.ndim != 2 or self.weight_hh.shape[0] != 4 * self.weight_hh.shape[1]:
            raise ValueError(f"LSTM: weight_hh must have shape (4H, H), got {self.weight_hh.shape}")
        H = self.weight_hh.shape[1]
        if self.weight_ih.ndim != 2 or self.weight_ih.shape[0] != 4 * H:
            raise ValueError(f"LSTM: weight_ih must have shape (4H, F) = ({4 * H}, F), "
                             f"got {self.weight_ih.shape}")
        self.bias_ih, self.bias_hh = (
            np.zeros(4 * H, dtype) if b is None else as_float_array(b, dtype, "LSTM")
            for b in (bias_ih, bias_hh))
        for name in self.array_names:
            if name.startswith("bias") and getattr(self, name).shape != (4 * H,):
                raise ValueError(f"LSTM: {name} must have shape ({4 * H},), "
                                 f"got {getattr(self, name).shape}")
            check_finite(name, getattr(self, name), "LSTM")
        if not isinstance(return_sequences, bool):
            raise TypeError(f"LSTM: return_sequences must be True or False, "
                            f"got {return_sequences!r}")
        self.return_sequences = return_sequences

    @property
    def hidden_size(self) -> int:
        """``H``."""
        return self.weight_hh.shape[1]

    @property
    def input_size(self) -> int:
        """``F``."""
        return self.weight_ih.shape[1]

    def hyperparameters(self) -> dict[str, Any]:
        return {"return_sequences": self.return_sequences}

    def expected_input_shape(self) -> tuple[int | None, ...]:
        return (None, None, self.input_size)

    def _gates(self, gates: Array) -> tuple[Array, Array, Array, Array]:
        """``i, f, g, o``: the four blocks of the last axis."""
        H = self.hidden_size
        return gates[..., :H], gates[..., H:2 * H], gates[..., 2 * H:3 * H], gates[..., 3 * H:]

    # -- forward and backward ---------------------------------------------------------------

    def _forward(self, x: Array) -> Array:
        B, T, _ = x.shape
        if T == 0:
            raise ValueError(f"{self.where}: the sequence needs at least one time step, "
                             f"got input of shape {x.shape}")
        H = self.hidden_size
        a_x = x @ self.weight_ih.T + self.bias_ih               # W_ih x_t + b_ih, all steps
        h = np.zeros((B, T + 1, H), x.dtype)                   # h[:, t] is h_t, h_0 = 0
        c = np.zeros((B, T + 1, H), x.dtype)
        gates = np.empty((B, T, 4 * H), x.dtype)               # i, f, g, o of every step
        for t in range(T):
            a_i, a_f, a_g, a_o = self._gates(a_x[:, t] + h[:, t] @ self.weight_hh.T + self.bias_hh)
            gates[:, t] = np.concatenate([sigmoid(a_i), sigmoid(a_f), np.tanh(a_g), sigmoid(a_o)],
                                         axis=1)
            i, f, g, o = self._gates(gates[:, t])
            c[:, t + 1] = f * c[:, t] + i * g
            h[:, t + 1] = o * np.tanh(c[:, t + 1])
        self._h, self._c, self._gate_values = h, c, gates
        return h[:, 1:] if self.return_sequences else h[:, T]

    def _backward(self, grad_z: Array) -> Array:
        """Backpropagation through time, from ``t = T`` down to 1 (see :meth:`_forward`)."""
        x, h, c = self._input, self._h, self._c
        i, f, g, o = self._gates(self._gate_values)
        T = x.shape[1]
        grad_h_seq = grad_z if self.return_sequences else np.zeros_like(h[:, 1:])
        if not self.return_sequences:
            grad_h_seq[:, T - 1] = grad_z
        grad_a = np.empty_like(self._gate_values)               # d loss / d [a_i, a_f, a_g, a_o]
        grad_h = np.zeros_like(h[:, 0])                          # from step t + 1
        grad_c = np.zeros_like(c[:, 0])
        for t in reversed(range(T)):
            grad_h = grad_h + grad_h_seq[:, t]
            tanh_c = np.tanh(c[:, t + 1])
            grad_c = grad_c + grad_h * o[:, t] * (1 - tanh_c ** 2)
            grad_a[:, t] = np.concatenate([
                grad_c * g[:, t] * i[:, t] * (1 - i[:, t]),          # a_i
                grad_c * c[:, t] * f[:, t] * (1 - f[:, t]),          # a_f
                grad_c * i[:, t] * (1 - g[:, t] ** 2),               # a_g
                grad_h * tanh_c * o[:, t] * (1 - o[:, t]),           # a_o
            ], axis=1)
            grad_c = grad_c * f[:, t]
            grad_h = grad_a[:, t] @ self.weight_hh
        grad_bias = grad_a.sum(axis=(0, 1))
        self._parameter_gradients = {
            "weight_ih": np.einsum("bta,btf->af", grad_a, x),
            "weight_hh": np.einsum("bta,btk->ak", grad_a, h[:, :-1]),
            "bias_ih": grad_bias, "bias_hh": grad_bias.copy(),
        }
        return grad_a @ self.weight_ih

    # -- relevance --------------------------------------------------------------------------

    def check_rule(self, rule: Rule | None) -> None:
        super().check_rule(rule)
        if not isinstance(rule, (Zero, Epsilon)):
            raise ValueError(
                f"{self.where} cannot apply {describe(rule)}: the LSTM rules of Arras et al. "
                "(2017) are defined for LRP-0 and LRP-epsilon only (the cell update is split "
                "with the epsilon rule, the gates take no relevance); rules that modify "
                "weights or split contributions by sign have no defined meaning for the gate "
                "products. Use Zero() or Epsilon(eps)"
            )

    def _linear_maps(self) -> tuple[Dense, Dense]:
        """The two linear maps of a step, as Dense layers for the shared engine.

        They run at the paths ``<lstm>.cell`` and ``<lstm>.candidate`` of the call.

        ``cell``: ``c_t = [f_t c_{t-1}, i_t g_t] @ [I; I]`` (no bias);
        ``candidate``: ``a_g = [x_t, h_{t-1}] @ [W_ih[g]; W_hh[g]]^T + b_ih[g] + b_hh[g]``.
        """
        H = self.hidden_size
        rows = slice(2 * H, 3 * H)
        eye = np.eye(H, dtype=self.weight_hh.dtype)
        cell = Dense(np.concatenate([eye, eye]))
        candidate = Dense(np.concatenate([self.weight_ih[rows].T, self.weight_hh[rows].T]),
                          self.bias_ih[rows] + self.bias_hh[rows])
        return cell, candidate

    def _relevance(self, R: Array, rule: Rule | None, method: str) -> tuple[Array, Ledger]:
        self.check_rule(rule)
        x, h, c = self._input, self._h, self._c
        i, f, g, _ = self._gates(self._gate_values)
        B, T, F = x.shape
        H = self.hidden_size
        cell, candidate = self._linear_maps()
        R_seq = R if self.return_sequences else np.zeros_like(h[:, 1:])
        if not self.return_sequences:
            R_seq[:, T - 1] = R
        R_x = np.zeros_like(x)
        ledger = Ledger.zeros(B, x.dtype)
        R_h = np.zeros_like(h[:, 0])                               # R(h_t) from step t + 1
        R_c = np.zeros_like(c[:, 0])                               # R(c_t) from step t + 1
        for t in reversed(range(T)):
            # 1. h_t = o_t tanh(c_t): R(c_t) += R(h_t)
            R_c = R_c + R_h + R_seq[:, t]
            # 2. c_t = f_t c_{t-1} + i_t g_t, split in proportion: R(c_{t-1}), R(g_t)
            with inside("cell"):
                cell.forward(np.concatenate([f[:, t] * c[:, t], i[:, t] * g[:, t]], axis=1))
                R_terms, cell_ledger = cell.relevance_with_ledger(R_c, rule, method)
            R_c, R_g = R_terms[:, :H], R_terms[:, H:]
            # 3. a_g = [x_t, h_{t-1}] w + b: the rule gives R(x_t), R(h_{t-1})
            with inside("candidate"):
                candidate.forward(np.concatenate([x[:, t], h[:, t]], axis=1))
                R_xh, candidate_ledger = candidate.relevance_with_ledger(R_g, rule, method)
            R_x[:, t], R_h = R_xh[:, :F], R_xh[:, F:]
            ledger = ledger + cell_ledger + candidate_ledger
        return R_x, ledger
