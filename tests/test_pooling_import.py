"""from_torch with the pooling options and Upsample: modules in an nn.Sequential and the
functional forms in a traced module (F.max_pool2d, F.avg_pool2d, F.adaptive_*_pool2d,
F.interpolate), forward equal to torch, and refusals that name the node.

Tolerance: the forward sums a few products per layer in another order than torch:
1e-12 relative to the largest |output| (measured ~1e-16).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import lrp_ref as lrp

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional
from lrp_ref.interop.torch import from_torch  # noqa: E402

SEQUENTIAL = [
    nn.MaxPool2d(3, 2, padding=1, dilation=(1, 2), ceil_mode=True),
    nn.AvgPool2d(3, 1, 1, ceil_mode=True, count_include_pad=False),
    nn.AvgPool2d(2, divisor_override=3, ceil_mode=True),
    nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
    nn.AdaptiveMaxPool2d((5, 3)),
    nn.Upsample(size=(7, 8)),
    nn.AdaptiveAvgPool2d(3),
]


class Functional(nn.Module):
    def forward(self, x):
        x = F.max_pool2d(x, 2, 1, dilation=(1, 2), ceil_mode=True)
        x = F.avg_pool2d(x, 3, 2, 1, True, False, 5)
        x = F.interpolate(x, scale_factor=2.5, mode="bilinear")
        x = F.adaptive_avg_pool2d(x, (5, 3))
        x = F.interpolate(x, size=(6, 7), mode="bilinear", align_corners=True)
        x = F.interpolate(x, scale_factor=1.5)
        return F.adaptive_max_pool2d(x, output_size=2)


def forward_error(model, net, x):
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    return np.abs(net.forward(x) - expected).max() / np.abs(expected).max()


def test_sequential_modules_import_with_their_options():
    model = nn.Sequential(*SEQUENTIAL).eval()
    net = from_torch(model)
    assert [type(layer).__name__ for layer in net] == [
        "MaxPool2d", "AvgPool2d", "AvgPool2d", "Upsample", "AdaptiveMaxPool2d", "Upsample",
        "AdaptiveAvgPool2d"]
    assert net[0].config()["dilation"] == [1, 2] and net[0].ceil_mode
    assert net[2].divisor_override == 3 and not net[1].count_include_pad
    assert net[3].align_corners and net[3].scale_factor == (2.0, 2.0)
    x = np.random.default_rng(0).standard_normal((2, 3, 11, 9))
    assert forward_error(model, net, x) < 1e-12


def test_functional_forms_are_traced_with_their_arguments():
    model = Functional().eval()
    net = from_torch(model)
    assert [node.name for node in net.nodes] == [
        "max_pool2d", "avg_pool2d", "interpolate", "adaptive_avg_pool2d", "interpolate_1",
        "interpolate_2", "adaptive_max_pool2d"]
    x = np.random.default_rng(1).standard_normal((2, 2, 10, 9))
    assert forward_error(model, net, x) < 1e-12
    # every linear node (avg pools, interpolations) explains with both paths alike
    R = np.random.default_rng(2).standard_normal(net.forward(x).shape)
    for rule in (lrp.Epsilon(0.01), lrp.AlphaBeta(2, 1), lrp.Flat(), lrp.WSquare()):
        fast = net.explain(x, rule=rule, output_relevance=R)
        explicit = net.explain(x, rule=rule, output_relevance=R, method="explicit")
        np.testing.assert_allclose(fast.relevance, explicit.relevance, rtol=0,
                                   atol=1e-12 * np.abs(explicit.relevance).max())


class Refused(nn.Module):
    def __init__(self, call):
        super().__init__()
        self.call = call

    def forward(self, x):
        return self.call(x)


@pytest.mark.parametrize("call, text", [
    (lambda x: F.max_pool2d(x, 2, return_indices=True)[0],
     "'max_pool2d_with_indices' is not supported"),                  # traced as its own call
    (lambda x: F.adaptive_avg_pool2d(x, (None, 3)), "output_size=(None, 3)"),
    (lambda x: F.interpolate(x, scale_factor=2, mode="bicubic"), "mode='bicubic'"),
    (lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", antialias=True),
     "antialias=True"),
])
def test_refused_functional_options_name_the_node(call, text):
    with pytest.raises(ValueError, match=r"from_torch: fx node .*" + re.escape(text)):
        from_torch(Refused(call).eval())
