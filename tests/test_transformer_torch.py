"""Forward and gradient of the transformer layers against torch, in float64.

LayerNorm, RMSNorm, Softmax, MatMul and Product: the forward equals torch's and
``backward`` is the true gradient (``sigma`` not held constant, unlike the
rule), with the parameter gradients. Skipped, with the reason, when torch is
not importable.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.interop import peers

try:
    torch = peers.import_torch()
except ImportError as exc:
    pytest.skip(f"torch not importable, torch comparison skipped: {exc}", allow_module_level=True)

F = torch.nn.functional

#: float64, another summation order than torch's kernels: rounding only
RTOL = 1e-12


def t(x):
    return torch.tensor(x, dtype=torch.float64, requires_grad=True)


def assert_close(ours, theirs, atol=1e-13):
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=RTOL, atol=atol)


@given(st.integers(0, 2**31 - 1), st.integers(1, 3), st.integers(1, 3),
       st.lists(st.integers(1, 4), min_size=1, max_size=2), st.booleans())
def test_norms_forward_and_gradients_match_torch(seed, b, n_tokens, norm, rms):
    rng = np.random.default_rng(seed)
    x, gamma, beta = (rng.standard_normal(s) for s in ((b, n_tokens, *norm), norm, norm))
    g = rng.standard_normal(x.shape)
    xt, gt, bt = t(x), t(gamma), t(beta)
    if rms:
        layer = lrp.RMSNorm(gamma, eps=1e-6)
        yt = F.rms_norm(xt, tuple(norm), gt, eps=1e-6)
    else:
        layer = lrp.LayerNorm(gamma, beta, eps=1e-5)
        yt = F.layer_norm(xt, tuple(norm), gt, bt, eps=1e-5)
    assert_close(layer.forward(x), yt)
    yt.backward(torch.tensor(g))
    # a gradient that is 0 (one element per group) is rounding noise times 1/sigma <= 1/sqrt(eps)
    assert_close(layer.backward(g), xt.grad, atol=1e-10)
    # likewise gamma's: with one element per group x - mu is exactly 0 here, while torch's
    # mean leaves rounding noise (1e-16) that 1/sigma <= 1/sqrt(eps) turns into ~1e-13
    assert_close(layer.grad_gamma, gt.grad, atol=1e-10)
    if not rms:
        assert_close(layer.grad_beta, bt.grad)


@given(st.integers(0, 2**31 - 1), st.tuples(*[st.integers(1, 3)] * 5))
def test_softmax_matmul_and_product_match_torch(seed, dims):
    rng = np.random.default_rng(seed)
    b, h, n, k, m = dims
    q, kt, v = (rng.standard_normal(s) for s in ((b, h, n, k), (b, h, k, n), (b, h, n, m)))
    scores, softmax, values = lrp.MatMul(), lrp.Softmax(), lrp.MatMul()
    out = values.forward(softmax.forward(scores.forward(q, kt)), v)
    qt, ktt, vt = t(q), t(kt), t(v)
    out_t = F.softmax(qt @ ktt, dim=-1) @ vt
    assert_close(out, out_t)
    g = rng.standard_normal(out.shape)
    out_t.backward(torch.tensor(g))
    grad_a, grad_v = values.backward(g)
    grad_q, grad_kt = scores.backward(softmax.backward(grad_a))
    for ours, theirs in ((grad_q, qt), (grad_kt, ktt), (grad_v, vt)):
        assert_close(ours, theirs.grad)
    xs = [rng.standard_normal((b, n)) for _ in range(3)]
    product = lrp.Product()
    z = product.forward(*xs)
    ts = [t(x) for x in xs]
    z_t = ts[0] * ts[1] * ts[2]
    assert_close(z, z_t)
    g = rng.standard_normal(z.shape)
    z_t.backward(torch.tensor(g))
    for ours, theirs in zip(product.backward(g), ts):
        assert_close(ours, theirs.grad)


def test_layer_norm_rule_is_gradient_times_input_with_sigma_detached():
    # with Zero() and beta = 0 the two steps are LRP-0 on the whole map with sigma constant,
    # which is Gradient x Input of (x - mu) / sigma.detach() * gamma at R / y (CP-LRP's code)
    rng = np.random.default_rng(3)
    x, gamma, R = (rng.standard_normal(s) for s in ((2, 4, 5), 5, (2, 4, 5)))
    layer = lrp.LayerNorm(gamma)
    y = layer.forward(x)
    xt = t(x)
    mu = xt.mean(-1, keepdim=True)
    sigma = ((xt - mu) ** 2).mean(-1, keepdim=True).add(1e-5).sqrt().detach()
    yt = (xt - mu) / sigma * torch.tensor(gamma)
    yt.backward(torch.tensor(R / y))
    np.testing.assert_allclose(layer.relevance(R, lrp.Zero()), (xt * xt.grad).detach().numpy(),
                               rtol=1e-9, atol=1e-12)


def test_cp_lrp_is_gradient_times_input_with_attention_and_sigma_detached():
    # TRANSFORMERS.md: with LRP-0 everywhere, CP-LRP equals Gradient x Input of the network
    # with the attention weights A and sigma detached (seeded with R / y), and without
    # biases it conserves exactly. Network: LayerNorm(softmax(x x) x), one head.
    rng = np.random.default_rng(4)
    x, gamma, R = (rng.standard_normal(s) for s in ((2, 3, 3), 3, (2, 3, 3)))
    g = lrp.Graph()
    i = g.input()
    a = g.add(lrp.Softmax(), g.add(lrp.MatMul(0.0), i, i, name="scores"), name="softmax")
    o = g.add(lrp.MatMul(0.0, constant=0), a, i, name="values")
    g.output(g.add(lrp.LayerNorm(gamma), o, name="norm"))
    e = g.explain(x, rule=lrp.Zero(), output_relevance=R)
    xt = t(x)
    A = F.softmax(xt @ xt, dim=-1).detach()
    h = A @ xt
    mu = h.mean(-1, keepdim=True)
    sigma = ((h - mu) ** 2).mean(-1, keepdim=True).add(1e-5).sqrt().detach()
    y = (h - mu) / sigma * torch.tensor(gamma)
    y.backward(torch.tensor(R) / y.detach())
    # R / y divides by outputs near 0 at random: relative rounding, a few ulps times |R / y|
    np.testing.assert_allclose(e.relevance, (xt * xt.grad).detach().numpy(), rtol=1e-9,
                               atol=1e-9)
    np.testing.assert_allclose(e.relevance.sum(axis=(1, 2)), R.sum(axis=(1, 2)), rtol=1e-9)


# -- MultiheadAttention --------------------------------------------------------------------


def torch_mha(rng, E, H, bias, batch_first):
    mha = torch.nn.MultiheadAttention(E, H, bias=bias, batch_first=batch_first,
                                      dtype=torch.float64).eval()
    with torch.no_grad():                      # torch initialises the biases to 0
        for p in mha.parameters():
            p.copy_(torch.tensor(rng.standard_normal(tuple(p.shape))))
    return mha


def random_masks(rng, B, H, L, kinds):
    """torch's masks of the drawn kinds; key 0 is never blocked (no row blocked entirely)."""
    attn_kind, padding_kind = kinds
    blocked = rng.random((B * H, L, L) if attn_kind.endswith("3d") else (L, L)) < 0.4
    blocked[..., 0] = False
    padded = rng.random((B, L)) < 0.4
    padded[:, 0] = False
    masks = {}
    if attn_kind.startswith("bool"):
        masks["attn_mask"] = blocked
    elif attn_kind.startswith("float"):
        masks["attn_mask"] = np.where(blocked, -np.inf, rng.standard_normal(blocked.shape))
    if padding_kind == "bool":
        masks["key_padding_mask"] = padded
    elif padding_kind == "float":
        masks["key_padding_mask"] = np.where(padded, -np.inf, rng.standard_normal((B, L)))
    return masks


MASKS = st.tuples(st.sampled_from(["none", "bool", "bool3d", "float", "float3d"]),
                  st.sampled_from(["none", "bool", "float"]))


@given(st.integers(0, 2**31 - 1), st.integers(1, 3), st.integers(1, 5),
       st.sampled_from([(4, 1), (4, 2), (6, 3), (8, 4)]), st.booleans(), st.booleans(), MASKS)
def test_multihead_attention_matches_torch(seed, B, L, heads, bias, batch_first, kinds):
    rng = np.random.default_rng(seed)
    E, H = heads
    module = torch_mha(rng, E, H, bias, batch_first)
    masks = random_masks(rng, B, H, L, kinds)
    if "attn_mask" in masks and "key_padding_mask" in masks and (
            masks["attn_mask"].dtype != masks["key_padding_mask"].dtype):
        masks["key_padding_mask"] = np.where(masks["key_padding_mask"], -np.inf, 0.0) \
            if masks["key_padding_mask"].dtype == bool else masks["key_padding_mask"]
        masks["attn_mask"] = np.where(masks["attn_mask"], -np.inf, 0.0) \
            if masks["attn_mask"].dtype == bool else masks["attn_mask"]
    ours = lrp.MultiheadAttention(
        module.in_proj_weight.detach().numpy(), module.out_proj.weight.detach().numpy(), H,
        None if not bias else module.in_proj_bias.detach().numpy(),
        None if not bias else module.out_proj.bias.detach().numpy(), **masks)
    x = rng.standard_normal((B, L, E))                 # lrp_ref: batch first, always
    xt = t(x if batch_first else x.transpose(1, 0, 2))
    yt, _ = module(xt, xt, xt, need_weights=False,
                   **{k: torch.tensor(m) for k, m in masks.items()})
    y = ours.forward(x)
    y_torch = yt if batch_first else yt.transpose(0, 1)
    assert_close(y, y_torch)
    g = rng.standard_normal(y.shape)
    y_torch.backward(torch.tensor(g))
    grad = ours.backward(g)
    grad_torch = xt.grad if batch_first else xt.grad.transpose(0, 1)
    assert_close(grad, grad_torch, atol=1e-12)
    w_in = np.concatenate([ours[f"{p}_proj"].grad_weight.T for p in "qkv"])
    assert_close(w_in, module.in_proj_weight.grad, atol=1e-12)
    assert_close(ours["out_proj"].grad_weight.T, module.out_proj.weight.grad, atol=1e-12)
