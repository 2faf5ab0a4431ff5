"""torchvision's densenet121, vgg16_bn and alexnet against Zennit 0.5.1's composites
EpsilonPlus, EpsilonPlusFlat, EpsilonAlpha2Beta1 and EpsilonGammaBox (float64, random weights
and BatchNorm statistics, eval mode, 64x64, two samples; issue 17, point 6).

VGG and AlexNet: Zennit's VGGCanonizer (its SequentialMergeBatchNorm) is lrp_ref's
merge_batchnorm, and the two agree per sample and at every module by name.

DenseNet (docs/peers.md, differences 17 and 18):

* Zennit's SequentialMergeBatchNorm cannot canonize it: it pairs BatchNorms with the linear
  module before them *in module order*, and each dense layer's ``conv2`` sits right before
  the next layer's ``norm1``, which reads a concatenation. Zennit offers NamedMergeBatchNorm
  with explicit pairs: the stem's ``(conv0, norm0)`` and every dense layer's ``(conv1,
  norm2)``, the BatchNorms merge_batchnorm folds. The other BatchNorms (BN -> ReLU -> Conv
  after a concatenation or pooling) stay, and both sides give them ``Pass()``.
* DenseNet's head is ``F.relu`` and ``F.adaptive_avg_pool2d`` in ``forward``: no modules, so
  Zennit propagates their gradient, ``[y > 0] R_c / (H W)`` at the output ``y`` of
  ``features.norm5``, where lrp_ref's ReLU and AdaptiveAvgPool2d nodes take the composite's
  rules (pass, and ``Epsilon(stabilizer)``: Zennit's ``Norm``). Given a module head, Zennit
  agrees with lrp_ref on the unchanged model; on the stock model, lrp_ref's explanation of
  ``features`` from the gradient's relevance at ``y`` reproduces Zennit.

The DenseNet agreement tests shift ``features.norm0``'s bias by +3 so that no window of the
stem's max-pool ties (difference 7: with the random statistics of seed 1, 1772 of its windows
have several equal maxima, all zeros of ``relu0``, and the unmerged ``norm1`` after the pool
passes relevance to them whatever their value; the last test shows what the ties move).
"""

from functools import lru_cache
from importlib import metadata

import numpy as np
import pytest
from test_torchvision_models import (
    BOX_HIGH,
    BOX_LOW,
    RTOL,
    batchnorms_after_a_conv,
    model,
    zennit_composites,
)

import lrp_ref as lrp
from lrp_ref.interop.torch import from_torch
from lrp_ref.rules.canonize import UnfoldedBatchNormWarning, merge_batchnorm
from lrp_ref.testing import assert_relevance_close, max_relative_difference

import peer_runs as pr

torch, zennit = pr.torch, pr.zennit
nn = torch.nn
pytest.importorskip("torchvision")

COMPOSITES = ["EpsilonPlus", "EpsilonPlusFlat", "EpsilonAlpha2Beta1", "EpsilonGammaBox"]
TARGET = np.array([3, 600])
#: Per node in DenseNet: its transition pools give the z-rule (Zennit's Norm) to a 2x2 window
#: of the transition conv's outputs, of both signs (no ReLU between). Where a window nearly
#: cancels (|z_j| / sum_i |a_i| down to 2.3e-4 at seed 1) the share a_i / z_j multiplies the
#: rounding differences (~1e-12 relative) of the relevance arriving there by up to 4e3: the
#: nodes below the pools agree to 1.3e-8 at worst (measured), the input to 2.7e-9. 1e-7
#: bounds the nodes; the input is held to RTOL.
NODE_RTOL = 1e-7


def inputs(composite, size=64):
    """Two samples; in EpsilonGammaBox's box for that composite (ZBox's input lies in it)."""
    rng = np.random.default_rng(1)
    if composite == "EpsilonGammaBox":
        return rng.uniform(BOX_LOW, BOX_HIGH, size=(2, 3, size, size))
    return rng.standard_normal((2, 3, size, size))


def assert_nodes_agree(explanation, captured, rtol):
    """Every rule-level node whose torch module Zennit exposes agrees; returns their number."""
    compared = 0
    for record in explanation.layers:
        if not record.container and record.path in captured:
            assert_relevance_close(captured[record.path], record.relevance_out, rtol=rtol)
            compared += 1
    return compared


# -- VGG and AlexNet -------------------------------------------------------------------------

#: vgg16 (vgg16_bn without BatchNorm) with EpsilonPlus is test_torchvision_pooling.py's.
VGG_CASES = [(name, composite) for name in ("vgg16_bn", "alexnet") for composite in COMPOSITES]


@lru_cache(maxsize=1)
def vgg_like(name):
    """The torch model and lrp_ref's merged conversion (one model kept at a time)."""
    m = model(name, seed=1)
    return m, merge_batchnorm(from_torch(m))


@pytest.mark.parametrize("name, composite", VGG_CASES, ids=[f"{m}-{c}" for m, c in VGG_CASES])
def test_vgg_and_alexnet_agree_with_zennit(name, composite):
    """VGGCanonizer (vgg16_bn) and merge_batchnorm; the adaptive pool (a module) takes Norm on
    Zennit's side and Epsilon(stabilizer) on ours, Dropout is the identity for both."""
    m, net = vgg_like(name)
    x = inputs(composite)
    zennit_composite, ours = zennit_composites()[composite]
    canonizers = [zennit.torchvision.VGGCanonizer()] if name.endswith("_bn") else []
    zennit_relevance, captured = pr.zennit_lrp(m, x, TARGET,
                                               zennit_composite(canonizers=canonizers))
    e = net.explain(x, target=TARGET, rule=ours)
    pr.record(f"Zennit {composite} (torchvision {name})", zennit_relevance, e.relevance)
    assert_relevance_close(zennit_relevance, e.relevance, rtol=RTOL)
    # every Conv2d, ReLU, MaxPool2d, the adaptive pool and the classifier's Linears
    assert assert_nodes_agree(e, captured, RTOL) >= 20


# -- DenseNet --------------------------------------------------------------------------------


class ModuleHead(nn.Module):
    """densenet121 with its functional head as modules (``nn.ReLU``, ``nn.AdaptiveAvgPool2d``),
    which Zennit's composites give ``Pass`` and ``Norm``; the same forward."""

    def __init__(self, densenet):
        super().__init__()
        self.features, self.classifier = densenet.features, densenet.classifier
        self.relu, self.avgpool = nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.relu(self.features(x))), 1))


class Features(nn.Module):
    """densenet121 up to ``features.norm5`` (module names as in the whole model)."""

    def __init__(self, densenet):
        super().__init__()
        self.features = densenet.features

    def forward(self, x):
        return self.features(x)


def merge_pairs(m):
    """The (Conv2d, BatchNorm2d) pairs of densenet121 whose BatchNorm reads only that conv:
    the stem's and every dense layer's bottleneck (``conv1 -> norm2``)."""
    layers = [name.removesuffix(".conv1") for name, _ in m.named_modules()
              if name.endswith(".conv1")]
    return [("features.conv0", "features.norm0")] + [(f"{n}.conv1", f"{n}.norm2") for n in layers]


def named_merge(m):
    """Zennit's NamedMergeBatchNorm over :func:`merge_pairs`."""
    return zennit.canonizers.NamedMergeBatchNorm([((conv,), bn) for conv, bn in merge_pairs(m)])


def merged(module):
    """lrp_ref's conversion with merge_batchnorm (which leaves DenseNet's BN -> ReLU -> Conv)."""
    with pytest.warns(UnfoldedBatchNormWarning):
        return merge_batchnorm(from_torch(module))


def tied_windows(m, x):
    """How many windows of the stem's max-pool (3x3, stride 2, padding 1) have several maxima."""
    with torch.no_grad():
        a = m.features[:3](torch.from_numpy(x))        # conv0, norm0, relu0
    padded = nn.functional.pad(a, (1, 1, 1, 1), value=-np.inf)
    windows = nn.functional.unfold(padded.reshape(-1, 1, *padded.shape[2:]), 3, stride=2)
    return int(((windows == windows.max(1, keepdim=True).values).sum(1) > 1).sum())


@lru_cache(maxsize=1)
def densenet(shift=3.0):
    """densenet121 (seed 1), ``features.norm0``'s bias + ``shift`` (module docstring), and
    lrp_ref's merged conversion of it."""
    m = model("densenet121", seed=1)
    with torch.no_grad():
        m.features.norm0.bias += shift
    return m, merged(m)


def test_zennit_sequential_merge_batchnorm_breaks_on_densenet121():
    """Difference 17. SequentialMergeBatchNorm pairs denselayer1.conv2 (32 outputs) with
    denselayer2.norm1 (96 channels, it reads the concatenation) and fails; what it changed
    before failing stays: norm0 merged into conv0, and conv2 (bias=False) given a one-element
    bias, so the model's forward raises. NamedMergeBatchNorm with the pairs merge_batchnorm
    folds keeps the forward (to the 1/sqrt(1 + eps) of difference 6)."""
    m = model("densenet121", seed=1)
    pairs = merge_pairs(m)
    assert len(pairs) == 1 + 6 + 12 + 24 + 16                  # the stem and 58 dense layers
    assert sorted(batchnorms_after_a_conv(from_torch(m))) == sorted(bn for _, bn in pairs)
    x = torch.from_numpy(inputs("EpsilonPlus"))
    with torch.no_grad():
        expected = m(x)
    composite = zennit.composites.EpsilonPlus(
        canonizers=[zennit.canonizers.SequentialMergeBatchNorm()])
    with pytest.raises(RuntimeError, match=r"size of tensor a \(32\) must match the size of "
                                           r"tensor b \(96\)"):
        composite.register(m)
    norm0 = m.features.norm0                  # merged before the failure, never restored
    assert torch.equal(norm0.running_var, torch.ones_like(norm0.running_var))
    conv2 = m.features.denseblock1.denselayer1.conv2     # given a bias before the failure
    # the bias left behind: one element under Zennit 0.5.1, 96 (norm1's) under 1.0.0
    # (scripts/zennit_1_0_agreement.sh); either way not conv2's 32 outputs
    one_point_zero = metadata.version("zennit").startswith("1.")
    assert conv2.bias.shape == ((96,) if one_point_zero else (1,))
    with pytest.raises(RuntimeError, match="expected bias to be 1-dimensional with 32"):
        m(x)

    m = model("densenet121", seed=1)
    composite = zennit.composites.EpsilonPlus(canonizers=[named_merge(m)])
    composite.register(m)
    with torch.no_grad():
        canonized = m(x)
    composite.remove()
    assert_relevance_close(canonized, expected, rtol=1e-10)


@pytest.mark.parametrize("composite", COMPOSITES)
def test_densenet121_agrees_with_zennit_given_a_module_head(composite):
    """Zennit on densenet121 with its head as modules and NamedMergeBatchNorm; lrp_ref on the
    unchanged model (from_torch converts the functional head into nodes). Per sample, and at
    every Conv2d, unmerged BatchNorm (Pass on both sides), ReLU, AvgPool2d and the Linear."""
    m, net = densenet()
    x = inputs(composite)
    assert tied_windows(m, x) == 0
    zennit_composite, ours = zennit_composites()[composite]
    zennit_relevance, captured = pr.zennit_lrp(ModuleHead(m).eval(), x, TARGET,
                                               zennit_composite(canonizers=[named_merge(m)]))
    batchnorms = [n.name for n in net.nodes if isinstance(n.layer, lrp.BatchNorm2d)]
    assert len(batchnorms) == 58 + 3 + 1          # norm1 of every dense layer, transitions, norm5
    assert {type(ours(net)[path]) for path in batchnorms} == {lrp.Pass}
    e = net.explain(x, target=TARGET, rule=ours)
    pr.record(f"Zennit {composite} + NamedMergeBatchNorm (torchvision densenet121, "
              "head as modules)", zennit_relevance, e.relevance)
    assert_relevance_close(zennit_relevance, e.relevance, rtol=RTOL)
    assert assert_nodes_agree(e, captured, NODE_RTOL) >= 300


@pytest.mark.parametrize("composite", ["EpsilonPlus", "EpsilonGammaBox"])
def test_zennit_takes_the_gradient_through_densenets_functional_head(composite):
    """Difference 18. Stock densenet121: Zennit's relevance at features.norm5's output y is the
    gradient of F.adaptive_avg_pool2d and F.relu applied to the relevance R_c at the pool's
    output, [y > 0] R_c / (H W); what arrives at y <= 0 is lost. lrp_ref's explanation of
    ``features`` from that relevance reproduces Zennit, at the input and at every node."""
    m, net = densenet()
    x = inputs(composite)
    assert tied_windows(m, x) == 0
    zennit_composite, ours = zennit_composites()[composite]
    zennit_relevance, captured = pr.zennit_lrp(m, x, TARGET,
                                               zennit_composite(canonizers=[named_merge(m)]))
    e = net.explain(x, target=TARGET, rule=ours)
    differs = pr.record(f"stock Zennit {composite} vs lrp_ref (torchvision densenet121)",
                        zennit_relevance, e.relevance)
    assert differs > 0.1                                    # measured 0.36 to 0.46

    features = merged(Features(m).eval())
    y = features.forward(x)
    R_pool = e.layer("adaptive_avg_pool2d").relevance_out   # (2, 1024, 1, 1), from the Linear
    R_y = (y > 0) * R_pool / (y.shape[2] * y.shape[3])
    assert_relevance_close(captured["features.norm5"], R_y, rtol=RTOL)
    lost = 1 - R_y.sum((1, 2, 3)) / R_pool.sum((1, 2, 3))
    assert np.all(lost > 0.05)                             # measured 6% to 11%
    reproduced = features.explain(x, output_relevance=R_y, rule=ours)
    pr.record(f"stock Zennit {composite} (torchvision densenet121), lrp_ref's features "
              "from the gradient's relevance", zennit_relevance, reproduced.relevance)
    assert_relevance_close(zennit_relevance, reproduced.relevance, rtol=RTOL)
    assert assert_nodes_agree(reproduced, captured, NODE_RTOL) >= 300


def test_stem_max_pool_ties_move_densenets_relevance_below_the_pool():
    """Difference 7 on densenet121 (docs/peers.md, difference 17): without the bias shift,
    windows of the stem's max-pool tie (zeros of relu0); the unmerged norm1 after the pool
    gives them relevance (Pass), which Zennit's gradient puts on the first maximum and
    lrp_ref splits. Everything above the pool agrees; relu0, conv0 and the input do not."""
    m, net = densenet(shift=0.0)
    x = inputs("EpsilonPlus")
    assert tied_windows(m, x) == 1772
    zennit_composite, ours = zennit_composites()["EpsilonPlus"]
    zennit_relevance, captured = pr.zennit_lrp(ModuleHead(m).eval(), x, TARGET,
                                               zennit_composite(canonizers=[named_merge(m)]))
    e = net.explain(x, target=TARGET, rule=ours)
    below = ("features.relu0", "features.conv0")
    above = {path: relevance for path, relevance in captured.items() if path not in below}
    assert assert_nodes_agree(e, above, NODE_RTOL) >= 300
    for path in below:
        assert max_relative_difference(captured[path], e.layer(path).relevance_out) > 1e-3
    differs = pr.record("Zennit EpsilonPlus (torchvision densenet121, head as modules, "
                        "pool0 ties)", zennit_relevance, e.relevance)
    assert differs > 1e-3                                   # measured 3.0e-3
