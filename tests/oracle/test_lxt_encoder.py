"""A small transformer encoder explained end to end by lrp_ref and by LXT 2.1, in float64.

The model: ``nn.TransformerEncoder`` of 2 layers, d_model 16, 2 heads, GELU,
post-norm and pre-norm (``norm_first``), converted by ``from_torch`` and explained
with ``composites.attnlrp()`` / ``composites.cp_lrp()``. The LXT side is the same
encoder written with LXT's explicit rules (``lxt.explicit.functional``:
``linear_epsilon``, ``layer_norm``'s ``layer_norm_grad_fn``, ``matmul``,
``softmax``, ``add2``; ``lxt.explicit.rules``: ``identity`` for GELU and the
``1/sqrt(D)`` scaling, ``epsilon_lrp`` of ``A.detach() @ V`` as LXT's own
``multi_head_attention_cp`` writes CP-LRP). LXT's model-level API
(``lxt.explicit.core``, ``lxt.efficient``) imports the transformers package,
which is not installed here (see TRANSFORMERS.md); the functional rules are
what those call. The assembly is checked first: its forward equals torch's.

The epsilon convention (docs/peers.md, "LXT 2.1"): LXT adds a plain ``+eps``
to every denominator where lrp_ref adds ``eps sign(z)`` (and its matmul divides
by ``2 O + eps``). As in test_lxt_agreement.py, the comparison sets every
stabilizer to 0 on both sides, where the two are the same mathematics: each
denominator is an output of a random float64 network, nonzero.

Tolerance: 1e-11 relative to the largest relevance of the sample: the same
float64 formulas in another summation order, amplified where a denominator is
small (LRP-0 divides by every pre-activation): measured at most 5.7e-14 (the
table printed at the end of the session).
"""

import math

import numpy as np
import pytest

import lrp_ref as lrp

lf = pytest.importorskip(
    "lxt.explicit.functional",
    reason="LXT not installed: it is not in the oracle extra (its dependencies would pull a "
           "CUDA torch); install it with pip install --no-deps lxt==2.1 (as .ci/run does)")

import lxt.explicit.rules as lrules  # noqa: E402

from lrp_ref.interop.torch import from_torch  # noqa: E402

import peer_runs as pr  # noqa: E402

torch = pr.torch
nn = torch.nn
F = torch.nn.functional
RTOL = 1e-11
EPS = 0.0           # every stabilizer, both sides (module docstring)


def encoder(norm_first, seed=0):
    layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, activation="gelu",
                                       batch_first=True, norm_first=norm_first)
    model = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).double().eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():         # random biases too (torch initialises them to 0)
        for name, p in model.named_parameters():
            gain = 1.0 if "norm" in name and name.endswith("weight") else 0.0
            p.copy_(gain + 0.5 * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return model


def lxt_attention(mha, h, padding, attention, EPS):
    """``mha(h, h, h)[0]`` with LXT's rules (batch first)."""
    B, L, E = h.shape
    H = mha.num_heads
    D = E // H
    w, b = mha.in_proj_weight.chunk(3), mha.in_proj_bias.chunk(3)
    q, k, v = (lf.linear_epsilon(h, w[n], b[n], EPS).view(B, L, H, D).permute(0, 2, 1, 3)
               for n in range(3))
    mask = torch.zeros(B, 1, 1, L, dtype=h.dtype).masked_fill(padding[:, None, None, :],
                                                              float("-inf"))
    if attention == "attnlrp":
        scores = lf.matmul(q, k.transpose(-2, -1), epsilon=EPS)            # uniform split
        scores = lrules.identity(lambda t: t / math.sqrt(D), scores)      # a constant factor
        a = lf.softmax(scores + mask, -1)           # LXT's rule sets the -inf inputs to 0
        o = lf.matmul(a, v, epsilon=EPS)
    else:                                           # multi_head_attention_cp: A detached
        with torch.no_grad():
            a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(D) + mask, -1)
        o = lrules.epsilon_lrp(torch.matmul, EPS, a.detach(), v)
    o = o.permute(0, 2, 1, 3).reshape(B, L, E)
    return lf.linear_epsilon(o, mha.out_proj.weight, mha.out_proj.bias, EPS)


def lxt_layer(layer, h, padding, attention, EPS):
    def norm(module, t):
        return lf.layer_norm_grad_fn.apply(t, module.weight, module.bias, module.eps, EPS)

    def ff(t):
        t = lrules.identity(F.gelu, lf.linear_epsilon(t, layer.linear1.weight,
                                                      layer.linear1.bias, EPS))
        return lf.linear_epsilon(t, layer.linear2.weight, layer.linear2.bias, EPS)

    if layer.norm_first:
        h = lf.add2(h, lxt_attention(layer.self_attn, norm(layer.norm1, h), padding, attention,
                                  EPS),
                    epsilon=EPS)
        return lf.add2(h, ff(norm(layer.norm2, h)), epsilon=EPS)
    h = norm(layer.norm1, lf.add2(h, lxt_attention(layer.self_attn, h, padding, attention, EPS),
                                  epsilon=EPS))
    return norm(layer.norm2, lf.add2(h, ff(h), epsilon=EPS))


def lxt_explain(model, x, padding, R, attention, eps=EPS):
    """LXT's output and input relevance of the encoder, every stabilizer ``eps``."""
    xt = torch.tensor(x, requires_grad=True)
    h = xt
    for layer in model.layers:
        h = lxt_layer(layer, h, padding, attention, eps)
    h.backward(torch.tensor(R))
    return h.detach().numpy(), xt.grad.numpy()


class WithPadding(nn.Module):
    """The encoder with a key padding mask held as a buffer (lrp_ref converts constants)."""

    def __init__(self, model, padding):
        super().__init__()
        self.encoder = model
        self.register_buffer("padding", padding)

    def forward(self, x):
        return self.encoder(x, src_key_padding_mask=self.padding)


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
@pytest.mark.parametrize("attention", ["attnlrp", "cp-lrp"])
def test_encoder_relevance_agrees_with_lxt(attention, norm_first):
    rng = np.random.default_rng(1)
    model = encoder(norm_first)
    padding = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    x = rng.standard_normal((2, 5, 16))
    with torch.no_grad():
        y_torch = model(torch.tensor(x), src_key_padding_mask=padding).numpy()
    R = rng.standard_normal(y_torch.shape) * y_torch          # a seed that scales with y
    y_lxt, R_lxt = lxt_explain(model, x, padding, R, attention)
    np.testing.assert_allclose(y_lxt, y_torch, rtol=1e-10, atol=1e-12)   # the assembly is right
    net = from_torch(WithPadding(model, padding).eval(), residual_epsilon=EPS)
    composite = (lrp.composites.attnlrp if attention == "attnlrp" else lrp.composites.cp_lrp)
    e = net.explain(x, rule=composite(EPS, EPS), output_relevance=R)
    np.testing.assert_allclose(e.output, y_torch, rtol=1e-10, atol=1e-12)
    difference = pr.record(f"LXT 2.1 encoder ({attention}, "
                           f"{'pre' if norm_first else 'post'}-norm, eps = 0)", e.relevance, R_lxt)
    assert difference <= RTOL


def test_difference_lxt_plain_eps_moves_the_encoder_relevance():
    # with the default stabilizers the two differ by the convention (plain +eps against
    # eps sign(z); LXT's matmul eps on 2 O): small, but not rounding
    rng = np.random.default_rng(2)
    model = encoder(False)
    padding = torch.zeros(2, 5, dtype=torch.bool)
    x = rng.standard_normal((2, 5, 16))
    with torch.no_grad():
        y = model(torch.tensor(x)).numpy()
    R = y.copy()
    eps = 1e-2
    _, R_lxt = lxt_explain(model, x, padding, R, "attnlrp", eps)
    net = from_torch(WithPadding(model, padding).eval(), residual_epsilon=eps)
    ours = net.explain(x, rule=lrp.composites.attnlrp(eps, eps), output_relevance=R).relevance
    assert pr.record("LXT 2.1 encoder (attnlrp, eps = 1e-2: the convention)", ours, R_lxt) > 1e-6
