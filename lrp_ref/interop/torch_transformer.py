"""Convert torch's transformer modules: MultiheadAttention, TransformerEncoder(Layer), norms.

Called by :func:`lrp_ref.interop.torch.from_torch`'s module converter (these are
torch.nn leaves for ``torch.fx``: each converts as a whole). Mapping (forward
equal to torch's in float64 up to rounding):

==============================================  ==============================================
torch module (inference mode)                   lrp_ref
==============================================  ==============================================
``LayerNorm(shape, eps, elementwise_affine,     :class:`~lrp_ref.LayerNorm` (``weight`` and
bias)``                                         ``bias``; ones and zeros without them)
``RMSNorm(shape, eps)``                         :class:`~lrp_ref.RMSNorm` (``eps=None``: the
                                                machine epsilon of the converted dtype, as torch)
``MultiheadAttention(E, H)`` called as          :class:`~lrp_ref.MultiheadAttention` (its masks:
``mha(x, x, x, ...)``                           constants of the model, buffers or parameters)
``TransformerEncoderLayer``                     a :class:`~lrp_ref.Graph`: ``self_attn``,
                                                ``add_1``, ``norm1``, ``linear1``,
                                                ``activation``, ``linear2``, ``add_2``,
                                                ``norm2`` (``norm_first`` either way)
``TransformerEncoder``                          a :class:`~lrp_ref.Graph` of ``layers.0``,
                                                ``layers.1``, ... and ``norm`` (when set)
==============================================  ==============================================

The node names are torch's module names, so ``"layers.0.self_attn.out_proj"``
is a path of both. The residual additions are :class:`~lrp_ref.Add` nodes and
the attention's MatMul nodes have ``epsilon = residual_epsilon``; the
activation ``relu`` or ``gelu`` (function or module) is a ReLU or GELU node
(relevance passes: AttnLRP's identity rule), dropout the identity (inference).

Batch first. lrp_ref's batch axis is axis 0, and each sample's ledger is its
own, so the converted attention always reads ``(B, L, E)``: a module built with
``batch_first=False`` (torch's default for these modules) converts to the same
batch-first layer, and the network takes ``x.transpose(0, 1)`` of torch's
``(L, B, E)`` input (and gives its output transposed likewise). Inside a model
traced with fx the operations around such a module are written for torch's
layout: there ``batch_first=False`` is refused.

Refused (ValueError naming the module): ``kdim``/``vdim`` other than the
embedding size (separate ``q_proj_weight``...), ``add_bias_kv``,
``add_zero_attn``, cross-attention (query, key and value not one tensor), an
activation other than relu/gelu, ``is_causal=True`` without a causal
``attn_mask``; a mask that is a forward argument (lrp_ref networks have one input)
or computed in forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..graph import Graph
from ..layers import GELU, Add, Layer, LayerNorm, ReLU, RMSNorm
from ..multihead_attention import MultiheadAttention


@dataclass(frozen=True)
class Masks:
    """The masks of an attention call, as numpy arrays (None: none)."""

    attn_mask: np.ndarray | None = None
    key_padding_mask: np.ndarray | None = None


NO_MASKS = Masks()


def where(path: str, module: Any) -> str:
    name = f"'{path}'" if path else "(root)"
    return f"torch module {name} ({type(module).__name__})"


def layer_norm(converter: Any, module: Any, path: str) -> LayerNorm:
    return layer_norm_of(module.normalized_shape, module.weight, getattr(module, "bias", None),
                         module.eps, converter.array, converter.torch)


def layer_norm_of(shape: Any, weight: Any, bias: Any, eps: Any, array: Any,
                  torch: Any) -> LayerNorm:
    """torch's layer_norm arguments (the module's, or ``F.layer_norm``'s in a traced model)
    as a LayerNorm: ``normalized_shape`` (ints), ``weight`` and ``bias`` (tensors, or None:
    ones and zeros), ``eps``; ``array(tensor)`` converts to the target dtype."""
    gamma = array(torch.ones(tuple(shape)) if weight is None else weight)
    return LayerNorm(gamma, None if bias is None else array(bias), eps=float(eps))


def rms_norm(converter: Any, module: Any, path: str) -> RMSNorm:
    shape = tuple(module.normalized_shape)
    gamma = module.weight if module.weight is not None else converter.torch.ones(shape)
    eps = float(np.finfo(converter.dtype).eps) if module.eps is None else float(module.eps)
    return RMSNorm(converter.array(gamma), eps=eps)


def attention(converter: Any, module: Any, path: str, masks: Masks = NO_MASKS
              ) -> MultiheadAttention:
    """``nn.MultiheadAttention`` (self-attention) as :class:`~lrp_ref.MultiheadAttention`."""
    here = where(path, module)
    if not module._qkv_same_embed_dim:
        raise ValueError(f"{here}: kdim/vdim differ from embed_dim (separate q/k/v "
                         "projection weights); lrp_ref converts self-attention with "
                         "in_proj_weight")
    if module.bias_k is not None or module.add_zero_attn:
        option = "add_bias_kv" if module.bias_k is not None else "add_zero_attn"
        raise ValueError(f"{here}: {option}=True is not supported")
    array = converter.array
    bias = module.in_proj_bias is not None
    try:
        return MultiheadAttention(
            array(module.in_proj_weight), array(module.out_proj.weight), module.num_heads,
            array(module.in_proj_bias) if bias else None,
            None if module.out_proj.bias is None else array(module.out_proj.bias),
            attn_mask=masks.attn_mask, key_padding_mask=masks.key_padding_mask,
            epsilon=converter.residual_epsilon)
    except ValueError as error:
        raise ValueError(f"{here}: {error}") from None


def encoder_layer(converter: Any, module: Any, path: str, masks: Masks = NO_MASKS) -> Graph:
    """``nn.TransformerEncoderLayer`` as a Graph named like its modules (module docstring)."""
    here = where(path, module)

    def child(name: str) -> Layer:
        return converter.convert(getattr(module, name), f"{path}.{name}" if path else name)

    activation = module.activation
    functional = converter.torch.nn.functional
    if activation is functional.relu:
        act: Layer = ReLU()
    elif activation is functional.gelu:
        act = GELU()
    elif isinstance(activation, converter.torch.nn.Module):
        act = child("activation")
    else:
        raise ValueError(f"{here}: the activation {activation!r} is not supported (relu or "
                         "gelu, as a string, a function or a module)")
    attn = attention(converter, module.self_attn, f"{path}.self_attn" if path else "self_attn",
                     masks)
    epsilon = converter.residual_epsilon
    g = Graph()
    x = g.input("src")
    if module.norm_first:       # x = x + sa(norm1(x)); x = x + ff(norm2(x))
        h = g.add(attn, g.add(child("norm1"), x, name="norm1"), name="self_attn")
        x = g.add(Add(epsilon), x, h, name="add_1")
        h = g.add(child("norm2"), x, name="norm2")
        h = g.add(child("linear2"), g.add(act, g.add(child("linear1"), h, name="linear1"),
                                          name="activation"), name="linear2")
        g.output(g.add(Add(epsilon), x, h, name="add_2"))
    else:                       # x = norm1(x + sa(x)); x = norm2(x + ff(x))
        h = g.add(attn, x, name="self_attn")
        x = g.add(child("norm1"), g.add(Add(epsilon), x, h, name="add_1"), name="norm1")
        h = g.add(child("linear2"), g.add(act, g.add(child("linear1"), x, name="linear1"),
                                          name="activation"), name="linear2")
        g.output(g.add(child("norm2"), g.add(Add(epsilon), x, h, name="add_2"), name="norm2"))
    return g


def encoder(converter: Any, module: Any, path: str, masks: Masks = NO_MASKS) -> Graph:
    """``nn.TransformerEncoder``: its layers in order, then its ``norm`` (when set)."""
    g = Graph()
    x = g.input("src")
    for k, layer in enumerate(module.layers):
        name = f"layers.{k}"
        x = g.add(encoder_layer(converter, layer, f"{path}.{name}" if path else name, masks),
                  x, name=name)
    if module.norm is not None:
        x = g.add(converter.convert(module.norm, f"{path}.norm" if path else "norm"), x,
                  name="norm")
    g.output(x)
    return g


def batch_first(module: Any, torch: Any) -> bool:
    """The layout of an attention module (an encoder's is its first layer's)."""
    if isinstance(module, torch.nn.TransformerEncoder):
        module = module.layers[0]
    if isinstance(module, torch.nn.TransformerEncoderLayer):
        module = module.self_attn
    return bool(module.batch_first)


def check_causal(here: str, is_causal: Any, attn_mask: np.ndarray | None) -> None:
    """``is_causal=True`` is a hint that ``attn_mask`` is the causal mask: check it."""
    if not is_causal:
        return
    if attn_mask is None:
        raise ValueError(f"{here}: is_causal=True without attn_mask; give the causal mask "
                         "itself (lrp_ref holds masks as arrays)")
    L = attn_mask.shape[-1]
    blocked = np.isneginf(attn_mask) if attn_mask.dtype != bool else attn_mask
    causal = np.broadcast_to(np.triu(np.ones((L, L), bool), 1), blocked.shape)
    if not np.array_equal(blocked, causal) or (attn_mask.dtype != bool
                                               and np.any(attn_mask[~blocked])):
        raise ValueError(f"{here}: is_causal=True with an attn_mask that is not the causal "
                         "mask (torch would use the causal mask and ignore attn_mask)")


__all__ = ["NO_MASKS", "Masks", "attention", "batch_first", "check_causal", "encoder",
           "encoder_layer", "layer_norm", "rms_norm"]
