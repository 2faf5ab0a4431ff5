"""lrp_ref agrees with Zennit 0.5.1 on the convolution options, float64, rtol 1e-8.

Zennit computes a rule by modifying the module's parameters (and inputs) and
taking the gradient of the modified forward: it keeps the module's groups,
dilation, padding and padding mode. So its Flat counts the inputs of a group
only and a reflected copy as an input of its own (the gradient adds the copy's
relevance back onto the element it copies), as docs/conventions.md says ours
does. Networks: depthwise-separable (groups), dilated, reflect/replicate/circular
padded, 'same' with an even kernel, Conv1d and ConvTranspose2d, each followed by
ReLU, Flatten, Linear. Stabilizers as in test_zennit_agreement.py (1e-30 for the
rules without one).
"""

from __future__ import annotations

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref.interop.torch import from_torch
from lrp_ref.testing import assert_relevance_close

try:
    import peer_runs as pr
except ImportError as exc:
    pytest.skip(f"oracle extra not importable: {exc}", allow_module_level=True)

torch = pr.torch
nn = torch.nn
RTOL = 1e-8


def network(name):
    """``(model, sample_shape)``: a conv with the option, ReLU, Flatten, Linear (float64)."""
    torch.manual_seed(sum(map(ord, name)))
    convs, shape = {
        "depthwise-separable": ([nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.ReLU(),
                                 nn.Conv2d(4, 3, 1)], (4, 6, 6)),
        "grouped-dilated": ([nn.Conv2d(4, 6, 3, dilation=2, groups=2, stride=(1, 2))],
                            (4, 7, 8)),
        "reflect": ([nn.Conv2d(2, 3, 3, padding=(2, 1), padding_mode="reflect")], (2, 5, 5)),
        "replicate": ([nn.Conv2d(2, 3, (2, 3), padding=1, padding_mode="replicate")],
                      (2, 4, 5)),
        "circular-same-even": ([nn.Conv2d(2, 3, 4, padding="same", padding_mode="circular")],
                               (2, 5, 6)),
        "same-even": ([nn.Conv2d(2, 3, (2, 4), padding="same")], (2, 5, 6)),
        "conv1d": ([nn.Conv1d(2, 4, 5, stride=2, padding=3, dilation=2, groups=2)], (2, 17)),
        "transposed": ([nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1,
                                           groups=2)], (4, 3, 4)),
    }[name]
    body = nn.Sequential(*convs).double().eval()
    with torch.no_grad():
        features = body(torch.zeros(1, *shape, dtype=torch.float64)).numel()
        for conv in convs:
            if getattr(conv, "bias", None) is not None:
                conv.bias.normal_(0.0, 0.3)
    model = nn.Sequential(*convs, nn.ReLU(), nn.Flatten(), nn.Linear(features, 3))
    return model.double().eval(), shape


NETWORKS = ["depthwise-separable", "grouped-dilated", "reflect", "replicate",
            "circular-same-even", "same-even", "conv1d", "transposed"]
EPS = lrp.Epsilon(0.25)
SETTINGS = {
    "Epsilon(0.25)": (EPS, None, None),
    "AlphaBeta(2, 1)": (lrp.AlphaBeta(2, 1), None, None),
    "AlphaBeta(1, 0) = Zennit ZPlus": (lrp.AlphaBeta(1, 0), None, pr.zrules.ZPlus(pr.TINY)),
    "Flat() first": (EPS, lrp.Flat(), None),
    "WSquare() first": (EPS, lrp.WSquare(), None),
    "ZBox(-3, 3) first": (EPS, lrp.ZBox(-3.0, 3.0), None),
}


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("name", NETWORKS)
def test_conv_options_agree_with_zennit(name, setting):
    linear, first, zennit_linear = SETTINGS[setting]
    model, shape = network(name)
    x = np.random.default_rng(0).uniform(-3.0, 3.0, size=(2, *shape))
    net = from_torch(model)
    target = net.forward(x).argmax(axis=1)
    composite = pr.zennit_layer_map(zennit_linear or pr.zennit_rule(linear),
                                    None if first is None else pr.zennit_rule(first))
    expected, _ = pr.zennit_lrp(model, x, target, composite)
    rules = pr.by_kind(net, linear, first)
    e = net.explain(x, target=target, rule=lambda _: rules)
    pr.record(f"Zennit conv options {name}, {setting}", expected, e.relevance)
    assert_relevance_close(expected, e.relevance, rtol=RTOL)
