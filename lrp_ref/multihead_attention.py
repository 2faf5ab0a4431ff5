"""Multi-head self-attention as a Graph of the primitive layers, torch's parameter layout.

``MultiheadAttention`` computes what ``torch.nn.MultiheadAttention`` computes for
self-attention (``query = key = value = x``) in inference mode, on batch-first
input ``x`` of shape ``(B, L, E)``, ``H`` heads of ``D = E / H`` features::

    Q = x W_q^T + b_q,  K = x W_k^T + b_k,  V = x W_v^T + b_v   (W_q, W_k, W_v: in_proj_weight)
    Q, K, V  ->  (B, H, L, D)                                     (split into heads)
    A = softmax(Q K^T / sqrt(D) + M)                              (M: the masks, blocked: -inf)
    O = A V  ->  (B, L, E)                                        (heads concatenated)
    y = O W_o^T + b_o                                             (out_proj)

It is a :class:`~lrp_ref.Graph` whose nodes are the layers that already carry
these rules, so its relevance is exactly their composition and every node has
its own record and ledger (``e.layer("attn.softmax")``)::

    q_proj, k_proj, v_proj   Dense           the network's rule (Epsilon, Zero, ...)
    q_heads, v_heads         Reshape+Permute shape only: relevance moves with the elements
    k_heads                  Reshape+Permute to (B, H, D, L): K^T
    scores                   MatMul          Q K^T: the uniform split (AttnLRP Prop. 3.3)
    scale                    Scale(1/sqrt D) a constant factor: relevance passes
    mask                     AddConstant     only for a float mask with finite entries: a bias
    softmax                  Softmax         AttnLRP Prop. 3.1; blocked positions take no part
    context                  MatMul          A V: uniform (attention="attnlrp") or A held
                                             constant (attention="cp-lrp", CP-LRP)
    merge_heads, concat      Permute+Reshape back to (B, L, E)
    out_proj                 Dense           the network's rule

``attention="cp-lrp"`` (Ali et al. 2022, "XAI for Transformers: Better
Explanations through Conservative Propagation", ICML) holds the attention
weights ``A`` constant: all relevance flows along the value path, and
``scores``, ``softmax``, ``q_proj`` and ``k_proj`` receive none. With
``attention="attnlrp"`` (Achtibat et al. 2024, "AttnLRP", ICML) each factor of
``A V`` and of ``Q K^T`` takes half of each term's share, and the softmax's rule
books what it creates or loses. A composite can override the choice
(``Bilinear`` rules on the two MatMul nodes: lrp_ref.rules.composites).

Masks (torch's semantics, fixed at construction): ``attn_mask`` ``(L, L)`` or
``(B H, L, L)``, ``key_padding_mask`` ``(B, L)``; boolean (True: blocked) or
float (added to the scores; ``-inf`` blocks). A 3-D ``attn_mask`` and
``key_padding_mask`` fix the batch size. Blocked positions are the Softmax's
``mask``; the finite entries of a float mask are an ``AddConstant`` (a bias of
eq. (6), booked as ``absorbed_bias``).

Not computed (torch's options refused by the importer): cross-attention (query,
key and value must be one tensor), ``kdim``/``vdim`` other than ``E``,
``add_bias_kv``, ``add_zero_attn``, dropout in training mode, ``batch_first=False``
as the layout of this layer (the importer converts such a module to this
batch-first layer: lrp_ref's batch axis is axis 0, and each sample's ledger
must stay its own).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .graph import Graph
from .layers import AddConstant, Dense, MatMul, Permute, Reshape, Scale, Softmax
from .layers.base import Layer, array_key, as_float_array

Array = np.ndarray

#: The attention rules: the ``constant`` of the ``context`` MatMul (A V).
ATTENTION = {"attnlrp": None, "cp-lrp": 0}
#: The nodes holding the parameters (the rest is rebuilt from the masks and the heads).
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "out_proj")


class MultiheadAttention(Graph):
    """Self-attention of ``num_heads`` heads on ``(B, L, E)`` (module docstring).

    Example (tested, docs/transformers.md): one head, ``x = I`` (two tokens),
    ``W_q = I``, ``K = sqrt(2) [[0, 0], [ln 3, 0]]``, ``W_v = diag(4, 2)``,
    ``W_o = I``: ``A = [[1/4, 3/4], [1/2, 1/2]]``, ``y = [[1, 3/2], [2, 1]]``.

    Parameters
    ----------
    in_proj_weight : array_like, shape (3 E, E)
        torch's ``in_proj_weight``: ``W_q``, ``W_k``, ``W_v`` stacked, each (out, in).
    out_proj_weight : array_like, shape (E, E)
        torch's ``out_proj.weight`` (out, in).
    num_heads : int
        ``H``; ``E`` must be a multiple of it.
    in_proj_bias, out_proj_bias : array_like, optional
        Zeros when None (torch's ``bias=False``).
    attn_mask : array_like, optional
        ``(L, L)`` or ``(B H, L, L)``; boolean (True: blocked) or float (added).
    key_padding_mask : array_like, optional
        ``(B, L)``; boolean (True: that key is ignored) or float (added).
    attention : {"attnlrp", "cp-lrp"}
        The rule of ``A V`` (module docstring).
    epsilon : float
        The stabilizer of the two MatMul nodes and of a mask's AddConstant.
    """

    def __init__(self, in_proj_weight: Any, out_proj_weight: Any, num_heads: int,
                 in_proj_bias: Any = None, out_proj_bias: Any = None, attn_mask: Any = None,
                 key_padding_mask: Any = None, attention: str = "attnlrp",
                 epsilon: float = 1e-6) -> None:
        super().__init__()
        name = "MultiheadAttention"
        w_in = np.asarray(in_proj_weight)
        dtype = w_in.dtype if np.issubdtype(w_in.dtype, np.floating) else np.dtype(np.float64)
        w_in = as_float_array(w_in, dtype, name)
        if w_in.ndim != 2 or w_in.shape[0] != 3 * w_in.shape[1]:
            raise ValueError(f"{name}: in_proj_weight must be (3 E, E), got {w_in.shape}")
        E = w_in.shape[1]
        w_out = as_float_array(out_proj_weight, dtype, name)
        if w_out.shape != (E, E):
            raise ValueError(f"{name}: out_proj_weight must be ({E}, {E}), got {w_out.shape}")
        b_in = np.zeros(3 * E, dtype) if in_proj_bias is None else as_float_array(
            in_proj_bias, dtype, name)
        b_out = np.zeros(E, dtype) if out_proj_bias is None else as_float_array(
            out_proj_bias, dtype, name)
        if b_in.shape != (3 * E,) or b_out.shape != (E,):
            raise ValueError(f"{name}: in_proj_bias must be ({3 * E},) and out_proj_bias "
                             f"({E},), got {b_in.shape} and {b_out.shape}")
        if isinstance(num_heads, bool) or not isinstance(num_heads, (int, np.integer)) \
                or num_heads < 1 or E % num_heads:
            raise ValueError(f"{name}: num_heads must be an int >= 1 dividing E = {E}, "
                             f"got {num_heads!r}")
        if attention not in ATTENTION:
            raise ValueError(f"{name}: attention must be one of {sorted(ATTENTION)}, "
                             f"got {attention!r}")
        self.num_heads, self.attention, self.epsilon = int(num_heads), attention, epsilon
        self.attn_mask = _mask("attn_mask", attn_mask, dtype)
        self.key_padding_mask = _mask("key_padding_mask", key_padding_mask, dtype)
        self._build(w_in, b_in, w_out, b_out)

    # -- the graph -------------------------------------------------------------------------

    def _build(self, w_in: Array, b_in: Array, w_out: Array, b_out: Array) -> None:
        E = w_out.shape[0]
        H, D = self.num_heads, E // self.num_heads
        x = self.input("input")
        # Q = x W_q^T + b_q, ... (torch's (out, in) weights as lrp_ref's (in, out))
        q, k, v = (self.add(Dense(w_in[n * E:(n + 1) * E].T, b_in[n * E:(n + 1) * E]), x,
                            name=f"{part}_proj") for n, part in enumerate("qkv"))
        split = (0, H, D)                                          # (B, L, E) -> (B, L, H, D)
        q = self.add(Permute((0, 2, 1, 3)), self.add(Reshape(split), q, name="q_split"),
                     name="q_heads")                               # (B, H, L, D)
        kt = self.add(Permute((0, 2, 3, 1)), self.add(Reshape(split), k, name="k_split"),
                      name="k_heads")                              # (B, H, D, L): K^T
        v = self.add(Permute((0, 2, 1, 3)), self.add(Reshape(split), v, name="v_split"),
                     name="v_heads")
        scores = self.add(MatMul(self.epsilon), q, kt, name="scores")        # Q K^T
        scale = np.asarray(1 / math.sqrt(D), w_out.dtype)   # the network's dtype, not float64
        scores = self.add(Scale(scale), scores, name="scale")
        blocked, finite = self._masks()
        if finite is not None:
            scores = self.add(AddConstant(finite, epsilon=self.epsilon), scores, name="mask")
        a = self.add(Softmax(blocked), scores, name="softmax")
        o = self.add(MatMul(self.epsilon, constant=ATTENTION[self.attention]), a, v,
                     name="context")                                          # A V
        o = self.add(Reshape((0, E)), self.add(Permute((0, 2, 1, 3)), o, name="merge_heads"),
                     name="concat")                                # (B, L, H, D) -> (B, L, E)
        self.output(self.add(Dense(w_out.T, b_out), o, name="out_proj"))

    def _masks(self) -> tuple[Array | None, Array | None]:
        """``(blocked, finite)``: the merged mask ``M`` (``(B or 1, H or 1, L, L)``) split
        into its ``-inf`` entries (the Softmax's mask) and its finite part (None when 0)."""
        parts = []
        if self.attn_mask is not None:
            m = self.attn_mask
            if m.ndim == 3:                                        # (B H, L, L) -> (B, H, L, L)
                if m.shape[0] % self.num_heads:
                    raise ValueError(f"MultiheadAttention: a 3-D attn_mask has B * num_heads "
                                     f"rows; {m.shape[0]} is not a multiple of {self.num_heads}")
                m = m.reshape(-1, self.num_heads, *m.shape[1:])
            parts.append(m if m.ndim == 4 else m[None, None])
        if self.key_padding_mask is not None:
            parts.append(self.key_padding_mask[:, None, None, :])  # (B, 1, 1, L)
        if not parts:
            return None, None
        M = parts[0] if len(parts) == 1 else parts[0] + parts[1]
        blocked = np.isneginf(M)
        finite = np.where(blocked, 0, M)
        return (blocked if blocked.any() else None), (finite if finite.any() else None)

    # -- torch's parameters ----------------------------------------------------------------

    @property
    def in_proj_weight(self) -> Array:
        """torch's ``(3 E, E)``: ``W_q``, ``W_k``, ``W_v`` stacked (copies of the nodes')."""
        return np.concatenate([self[f"{p}_proj"].weight.T for p in "qkv"])

    @property
    def in_proj_bias(self) -> Array:
        return np.concatenate([self[f"{p}_proj"].bias for p in "qkv"])

    @property
    def out_proj_weight(self) -> Array:
        return self["out_proj"].weight.T

    @property
    def out_proj_bias(self) -> Array:
        return self["out_proj"].bias

    # -- serialisation: the type, the heads, the rule and the masks; arrays are the nodes' -

    def hyperparameters(self) -> dict[str, Any]:
        return {"num_heads": self.num_heads, "attention": self.attention,
                "epsilon": self.epsilon}

    def arrays(self) -> dict[str, Array]:
        masks = {"attn_mask": self.attn_mask, "key_padding_mask": self.key_padding_mask}
        return {key: m for key, m in masks.items() if m is not None}

    def config(self) -> dict[str, Any]:
        return Layer.config(self)                   # the type and hyperparameters, no nodes

    def state(self, prefix: str = "") -> dict[str, Array]:
        """The masks and the projections' arrays (``q_proj.weight``, ...), keyed like
        :meth:`parameters`; the other nodes are rebuilt from them."""
        out = {array_key(prefix, key): m for key, m in self.arrays().items()}
        for name in PROJECTIONS:
            out.update(self[name].state(array_key(prefix, name)))
        return out

    @classmethod
    def from_config(cls, config: dict[str, Any], arrays: dict[str, Array],
                    prefix: str = "") -> MultiheadAttention:
        def get(key: str) -> Array:
            full = array_key(prefix, key)
            if full not in arrays:
                raise ValueError(f"MultiheadAttention at '{prefix}': missing array {full!r}")
            return arrays[full]

        w = {name: get(f"{name}.weight") for name in PROJECTIONS}
        b = {name: get(f"{name}.bias") for name in PROJECTIONS}
        masks = {key: arrays[array_key(prefix, key)] for key in ("attn_mask", "key_padding_mask")
                 if array_key(prefix, key) in arrays}
        options = {k: v for k, v in config.items() if k != "type"}
        return cls(np.concatenate([w[n].T for n in PROJECTIONS[:3]]), w["out_proj"].T,
                   in_proj_bias=np.concatenate([b[n] for n in PROJECTIONS[:3]]),
                   out_proj_bias=b["out_proj"], **masks, **options)


def _mask(name: str, mask: Any, dtype: np.dtype) -> Array | None:
    """torch's mask as the float mask it adds: bool True -> -inf, False -> 0 (None stays)."""
    if mask is None:
        return None
    m = np.asarray(mask)
    shapes = {"attn_mask": ((2, 3), "(L, L) or (B * num_heads, L, L)"),
              "key_padding_mask": ((2,), "(B, L)")}[name]
    if m.ndim not in shapes[0]:
        raise ValueError(f"MultiheadAttention: {name} must be {shapes[1]}, got {m.shape}")
    if m.dtype == bool:
        return np.where(m, -np.inf, 0).astype(dtype)
    m = as_float_array(m, dtype, f"MultiheadAttention: {name}")
    if np.isnan(m).any() or np.isposinf(m).any():
        raise ValueError(f"MultiheadAttention: {name} contains NaN or +inf (only -inf blocks)")
    return m


__all__ = ["ATTENTION", "MultiheadAttention"]
