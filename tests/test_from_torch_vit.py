"""from_torch of a vision transformer's input side, hand-written after torchvision's
VisionTransformer (torch only; torchvision's own models are in
tests/oracle/test_torchvision_transformers.py): patches by a strided convolution,
reshape and permute to tokens, the class token expanded over the batch and concatenated
(ConcatConstant), the positional embedding added (AddConstant), the shape checks of
``torch._assert`` (no node), LayerNorm, the class token's row ``x[:, 0]`` and a head.

Forward against torch in float64 to 1e-12 relative (rounding of the same sums);
ledgers balance to 1e-10 of the relevance through a node (docs/conventions.md).
"""

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref.interop import peers
from lrp_ref.testing import assert_relevance_close

try:
    torch = peers.import_torch()
except ImportError as exc:
    pytest.skip(f"torch not importable, from_torch tests skipped: {exc}", allow_module_level=True)

from lrp_ref.interop.torch import from_torch  # noqa: E402

nn = torch.nn


class Embedding(nn.Module):
    """VisionTransformer._process_input, the class token and Encoder's positional add."""

    def __init__(self, image=8, patch=4, dim=6, classes=3):
        super().__init__()
        self.image, self.patch, self.dim = image, patch, dim
        self.conv_proj = nn.Conv2d(2, dim, kernel_size=patch, stride=patch)
        self.class_token = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, (image // patch) ** 2 + 1, dim))
        self.ln = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        n, c, h, w = x.shape
        torch._assert(h == self.image, "Wrong image height!")
        x = self.conv_proj(x)
        x = x.reshape(n, self.dim, (h // self.patch) * (w // self.patch))
        x = x.permute(0, 2, 1)
        n = x.shape[0]
        x = torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)
        torch._assert(x.dim() == 3, f"Expected (batch_size, seq_length, hidden_dim) got {x.shape}")
        x = self.ln(x + self.pos_embedding)
        return self.head(x[:, 0])


def model():
    torch.manual_seed(0)
    return Embedding().double().eval()


def forward(m, x):
    with torch.no_grad():
        return m(torch.from_numpy(x)).numpy()


def test_class_token_and_positional_embedding_convert_and_forward_equals_torch():
    m = model()
    net = from_torch(m)
    assert [(n.name, type(n.layer).__name__) for n in net.nodes] == [
        ("conv_proj", "Conv2d"), ("reshape", "Reshape"), ("permute", "Permute"),
        ("cat", "ConcatConstant"), ("add", "AddConstant"), ("ln", "LayerNorm"),
        ("getitem_5", "Slice"), ("head", "Dense")]
    np.testing.assert_array_equal(net["cat"].constant, m.class_token.detach().numpy()[0])
    assert net["cat"].axis == 1 and net["cat"].first
    x = np.random.default_rng(0).standard_normal((3, 2, 8, 8))
    assert_relevance_close(net.forward(x), forward(m, x), rtol=1e-12)


def test_the_class_token_absorbs_its_relevance_and_every_node_balances():
    net = from_torch(model())
    x = np.random.default_rng(1).standard_normal((2, 2, 8, 8))
    for method in ("fast", "explicit"):
        e = net.explain(x, rule=lrp.Epsilon(1e-6), method=method)
        assert np.all(np.isfinite(e.relevance))
        cat = e.layer("cat")
        # the class token's row of the relevance arriving at the concatenation, absorbed
        np.testing.assert_allclose(cat.absorbed_bias, cat.relevance_out[:, 0].sum(axis=1),
                                   rtol=1e-13)
        for record in e.layers:
            through = np.abs(record.relevance_out).reshape(2, -1).sum(axis=1).max()
            np.testing.assert_allclose(record.imbalance(), 0, rtol=0, atol=1e-10 * through,
                                       err_msg=record.path)


def asserts_on_values(x):
    torch._assert(x, "a check of the values")
    return x


class Wrap(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.token = nn.Parameter(torch.randn(1, 1, 4))
        self.pair = nn.Parameter(torch.randn(2, 1, 4))

    def forward(self, x):
        return self.fn(self, x)


@pytest.mark.parametrize("fn, message", [
    (lambda m, x: x.expand(x.shape[0], -1, -1),
     r"fx node 'expand'.*expands a traced tensor"),
    (lambda m, x: torch.cat([m.token.expand(x.shape[0], -1, -1), x, x], 1),
     r"fx node 'cat'.*one traced tensor and one constant"),
    (lambda m, x: torch.cat([m.token, x], 1),         # runs in torch at batch size 1 only
     r"fx node 'cat'.*'token'.*expanded over the batch and concatenated"),
    (lambda m, x: torch.cat([m.pair.expand(x.shape[0], -1, -1), x], 1),
     r"fx node 'expand'.*expand\(n, -1, -1\) of a constant of shape \(2, 1, 4\)"),
    (lambda m, x: torch.cat([m.token.expand(3, -1, -1), x], 1),
     r"fx node 'expand'.*expand\(3, -1, -1\).*the batch size"),
    (lambda m, x: asserts_on_values(x), r"fx node '_assert'.*a condition on sizes"),
], ids=["tensor", "three", "not-expanded", "not-one-row", "fixed-batch", "assert-on-values"])
def test_refusals_name_the_node(fn, message):
    with pytest.raises(ValueError, match=message):
        from_torch(Wrap(fn).double().eval())
