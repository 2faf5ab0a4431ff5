"""from_torch of torch's transformer modules: MultiheadAttention, TransformerEncoder(Layer), norms.

Forward equal to torch's in float64 (rtol 1e-10: the same sums in another order;
measured ~1e-15), paths equal to torch's module names, and the refusals. torch's
encoder takes its "fast path" (nested tensors, padded positions set to 0) only
without autograd: these tests give torch an input that requires grad, so it
computes the documented function everywhere.
"""

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref.interop import peers

try:
    torch = peers.import_torch()
except ImportError as exc:
    pytest.skip(f"torch not importable, from_torch tests skipped: {exc}", allow_module_level=True)

from lrp_ref.interop.torch import from_torch  # noqa: E402

nn = torch.nn

RTOL = 1e-10


def randomize(module, seed=0):
    """Random float64 parameters (torch initialises biases to 0), eval mode."""
    g = torch.Generator().manual_seed(seed)
    module = module.double().eval()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    return module


def torch_forward(module, x):
    return module(torch.tensor(x, requires_grad=True)).detach().numpy()


class SelfAttention(nn.Module):
    """mha(x, x, x) with constant masks (buffers), the output read by [0]."""

    def __init__(self, E, H, attn_mask=None, key_padding_mask=None):
        super().__init__()
        self.attn = nn.MultiheadAttention(E, H, batch_first=True)
        self.register_buffer("attn_mask", attn_mask)
        self.register_buffer("padding", key_padding_mask)

    def forward(self, x):
        y, _ = self.attn(x, x, x, attn_mask=self.attn_mask, key_padding_mask=self.padding,
                         need_weights=False)
        return y


@pytest.mark.parametrize("masks", ["none", "bool", "float"])
def test_multihead_attention_in_a_traced_model(masks):
    L = 4
    causal = torch.triu(torch.ones(L, L, dtype=torch.bool), 1)
    padding = torch.tensor([[False, False, False, True], [False, True, False, False]])
    if masks == "float":
        causal = torch.zeros(L, L, dtype=torch.float64).masked_fill(causal, float("-inf")) \
            + 0.3 * torch.arange(L, dtype=torch.float64)                 # an additive bias
        padding = torch.zeros(2, L, dtype=torch.float64).masked_fill(padding, float("-inf"))
    model = randomize(SelfAttention(6, 2, *((causal, padding) if masks != "none" else ())))
    net = from_torch(model)
    x = np.random.default_rng(0).standard_normal((2, L, 6))
    np.testing.assert_allclose(net.forward(x), torch_forward(model, x), rtol=RTOL, atol=1e-12)
    mha = net["attn"]
    assert isinstance(mha, lrp.MultiheadAttention) and mha.num_heads == 2
    assert ("attn.mask" in dict(net.named_layers())) == (masks == "float")
    assert "attn.out_proj" in dict(net.named_layers())


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu", "gelu-module"])
def test_encoder_layer_forward_equals_torch(norm_first, activation):
    act = nn.GELU() if activation == "gelu-module" else activation
    layer = randomize(nn.TransformerEncoderLayer(8, 2, dim_feedforward=12, activation=act,
                                                 norm_first=norm_first, batch_first=True))
    net = from_torch(nn.Sequential(layer).eval())
    x = np.random.default_rng(1).standard_normal((3, 5, 8))
    np.testing.assert_allclose(net.forward(x), torch_forward(layer, x), rtol=RTOL, atol=1e-12)
    paths = dict(net.named_layers())
    for name in ("self_attn", "self_attn.q_proj", "norm1", "linear1", "activation", "linear2",
                 "norm2", "add_1", "add_2"):
        assert f"0.{name}" in paths, name
    kind = lrp.ReLU if activation == "relu" else lrp.GELU
    assert isinstance(paths["0.activation"], kind)


def test_batch_first_false_converts_to_the_batch_first_layer():
    # torch reads (L, B, E); the converted network reads (B, L, E): lrp_ref's batch axis is 0
    layer = randomize(nn.TransformerEncoderLayer(8, 4, dim_feedforward=16, batch_first=False))
    net = from_torch(nn.Sequential(layer).eval())
    x = np.random.default_rng(2).standard_normal((5, 3, 8))            # (L, B, E)
    y = torch_forward(layer, x)
    np.testing.assert_allclose(net.forward(x.transpose(1, 0, 2)), y.transpose(1, 0, 2),
                               rtol=RTOL, atol=1e-12)


class Classifier(nn.Module):
    """Linear embedding, a TransformerEncoder (padding mask as a buffer), mean-free head."""

    def __init__(self, norm, batch_first=True):
        super().__init__()
        self.embed = nn.Linear(3, 16)
        layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, batch_first=batch_first,
                                           activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(16) if norm else None,
                                             enable_nested_tensor=False)
        self.register_buffer("padding", torch.tensor([[False] * 4 + [True]] * 2))
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        h = self.encoder(self.embed(x), src_key_padding_mask=self.padding)
        return self.head(h[:, 0])


@pytest.mark.parametrize("norm", [False, True])
def test_encoder_in_a_traced_model(norm):
    model = randomize(Classifier(norm))
    net = from_torch(model)
    x = np.random.default_rng(3).standard_normal((2, 5, 3))
    np.testing.assert_allclose(net.forward(x), torch_forward(model, x), rtol=RTOL, atol=1e-12)
    paths = dict(net.named_layers())
    for k in (0, 1):
        assert f"encoder.layers.{k}.self_attn.out_proj" in paths
        assert f"encoder.layers.{k}.norm2" in paths
    assert ("encoder.norm" in paths) == norm
    e = net.explain(x, rule=lrp.Epsilon(1e-6))
    assert e.relevance.shape == x.shape


def test_layer_norm_and_rms_norm_modules():
    for module in (nn.LayerNorm(6), nn.LayerNorm(6, bias=False),
                   nn.LayerNorm((2, 3), elementwise_affine=False), nn.RMSNorm(6),
                   nn.RMSNorm(6, eps=1e-3)):
        shape = module.normalized_shape
        model = randomize(nn.Sequential(module))
        net = from_torch(model)
        x = np.random.default_rng(4).standard_normal((2, 4, *shape))
        np.testing.assert_allclose(net.forward(x), torch_forward(model, x), rtol=RTOL,
                                   atol=1e-12)


class Bad(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.how = how
        kw = {"kdim": 4} if how == "kdim" else {"add_bias_kv": True} if how == "bias_kv" else {}
        self.attn = nn.MultiheadAttention(6, 2, batch_first=how != "layout", **kw)
        self.register_buffer("causal", torch.triu(torch.ones(3, 3, dtype=torch.bool), 1))
        self.register_buffer("other", torch.eye(3, dtype=torch.bool))

    def forward(self, x):
        how = self.how
        if how == "cross":
            return self.attn(x, x + 1, x + 1)[0]
        if how == "weights":
            return self.attn(x, x, x)[1]
        if how == "causal":
            return self.attn(x, x, x, is_causal=True)[0]
        if how == "not-causal":
            return self.attn(x, x, x, attn_mask=self.other, is_causal=True)[0]
        return self.attn(x, x, x)[0]


@pytest.mark.parametrize("how, message", [
    ("cross", "query, key and value are not one tensor"),
    ("weights", r"attention weights \(item 1\)"),
    ("causal", "is_causal=True without attn_mask"),
    ("not-causal", "not the causal mask"),
    ("kdim", "kdim/vdim differ"),
    ("bias_kv", "add_bias_kv=True is not supported"),
    ("layout", "batch_first=False"),
])
def test_refusals_name_the_module(how, message):
    with pytest.raises(ValueError, match=message):
        from_torch(Bad(how).double().eval())


def test_a_mask_given_as_forward_argument_is_refused():
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(6, 2, batch_first=True)

        def forward(self, x, mask):
            return self.attn(x, x, x, key_padding_mask=mask)[0]

    with pytest.raises(ValueError, match="second forward argument|not a constant of the model"):
        from_torch(Masked().double().eval())
