"""lrp_ref agrees with Zennit 0.5.1 in float64 wherever their conventions coincide.

Every comparison runs the same torch network through Zennit and, converted with
``from_torch``, through lrp_ref, and asserts ``assert_relevance_close(...,
rtol=1e-8)`` (scale-relative per sample, the issue's bound). The largest
difference measured per comparison is printed at the end of the session
(``peer_runs.AGREEMENT``; docs/peers.md quotes it): 1e-15 to 2e-9, float
rounding amplified where a denominator is small against its terms (LRP-0
without bias on random networks is the worst case).

Stabilizers (see peer_runs): Zennit's rules other than Epsilon get 1e-30, so
that the comparison measures the rules, not Zennit's stabilizer; the residual
split and AvgPool's Norm likewise. The difference the default 1e-6 makes is
measured in test_peer_differences.py.

BatchNorm eps: Zennit 0.5.1's MergeBatchNorm leaves the merged BatchNorm with
its eps, so the canonized network scales by ``1/sqrt(1 + eps)`` (documented in
test_peer_differences.py). The networks compared after merging use
``eps = 1e-12``, which makes that factor 1 to within 5e-13.

Example counts: each hypothesis example builds a torch network and runs
Zennit's hooked backward pass (~20-40 ms on the 2-core CI machine, versus
~1 ms for lrp_ref alone), and there are 18 rule settings; 20 random networks
per setting (360 Zennit runs) keep this file near a minute. The suite's
default of 200 would take ~10 minutes for no new kind of network. The draws
are deterministic (``derandomize=True``): LRP-0 is ill-conditioned where a
``z_j`` is nearly 0 (rounding in another summation order is amplified by
``1/z_j``), so a fresh random network could, rarely, exceed 1e-8 for a reason
that has nothing to do with the rules; CI reruns the same networks.
"""

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.interop.torch import from_torch
from lrp_ref.rules.canonize import merge_batchnorm
from lrp_ref.testing import assert_relevance_close

try:
    import peer_runs as pr
except ImportError as exc:
    pytest.skip(f"oracle extra not importable: {exc}", allow_module_level=True)

from torch_nets import randomize, resnet_style, torch_cnns, vgg_style  # noqa: E402

torch, zennit = pr.torch, pr.zennit
nn = torch.nn

#: The bound the issue sets; the measured differences are ~1e-15 (module docstring).
RTOL = 1e-8
#: BatchNorm eps of networks compared after merging (module docstring).
BN_EPS = 1e-12
#: Random networks per rule setting (module docstring).
EXAMPLES = 20
SEEDS = st.integers(0, 2**31 - 1)


def inputs(seed, shape, batch=2, low=None, high=None, nonnegative=False):
    rng = np.random.default_rng(seed)
    if low is not None:
        return rng.uniform(low, high, size=(batch, *shape))
    x = rng.standard_normal((batch, *shape))
    return np.abs(x) if nonnegative else x


@dataclass(frozen=True)
class Setting:
    """One rule setting: lrp_ref's rules by layer kind and the Zennit rules that match them.

    ``zennit_linear`` overrides the translated Zennit rule (to compare Zennit's
    own rule under another lrp_ref name, e.g. Zennit's ZPlus = our AlphaBeta(1, 0)).
    ``residual=False`` keeps residual blocks out: a block's last convolution
    feeds the sum, not a ReLU, so it has relevance at negative outputs.
    """

    name: str
    linear: lrp.Rule
    first: lrp.Rule | None = None
    last: lrp.Rule | None = None
    merge: bool = True
    batchnorm: lrp.Rule | None = None
    nonnegative: bool = False
    box: tuple[float, float] | None = None
    zennit_linear: object = None
    residual: bool = True

    def zennit(self, model):
        linear = self.zennit_linear or pr.zennit_rule(self.linear)
        first = None if self.first is None else pr.zennit_rule(self.first)
        last = (None if self.last is None
                else (pr.last_linear_name(model), pr.zennit_rule(self.last)))
        batchnorm = None if self.batchnorm is None else pr.zennit_rule(self.batchnorm)
        return pr.zennit_layer_map(linear, first, last, batchnorm=batchnorm,
                                   canonize=self.merge)

    def ours(self, net):
        return pr.by_kind(net, self.linear, self.first, self.last, batchnorm=self.batchnorm)


EPS = lrp.Epsilon(1e-6)
SETTINGS = [
    Setting("Epsilon(1e-6)", lrp.Epsilon(1e-6)),
    Setting("Epsilon(0.25)", lrp.Epsilon(0.25)),
    Setting("Epsilon(0.25, bias=False)", lrp.Epsilon(0.25, bias=False)),
    Setting("Zero()", lrp.Zero()),
    Setting("Zero(bias=False)", lrp.Zero(bias=False)),
    Setting("AlphaBeta(2, 1)", lrp.AlphaBeta(2, 1)),
    Setting("AlphaBeta(2, 1, bias=False)", lrp.AlphaBeta(2, 1, bias=False)),
    Setting("AlphaBeta(1, 0) = Zennit ZPlus", lrp.AlphaBeta(1, 0),
            zennit_linear=pr.zrules.ZPlus(pr.TINY)),
    Setting("ZPlus() = Zennit ZPlus(zero_params='bias')", lrp.ZPlus()),
    # Gamma: inputs >= 0 and relevance only at outputs z_j > 0 (every Gamma layer is
    # followed by a ReLU; the logits get Epsilon), where Zennit's generalised Gamma is ours
    Setting("Gamma(0.25)", lrp.Gamma(0.25), last=EPS, nonnegative=True, residual=False),
    Setting("Gamma(1.0, bias=False)", lrp.Gamma(1.0, bias=False), last=EPS, nonnegative=True,
            residual=False),
    # GeneralizedGamma is Zennit's Gamma: inputs of any sign, residual blocks included
    Setting("GeneralizedGamma(0.25) = Zennit Gamma", lrp.GeneralizedGamma(0.25)),
    Setting("GeneralizedGamma(1.0, bias=False) = Zennit Gamma(zero_params='bias')",
            lrp.GeneralizedGamma(1.0, bias=False)),
    Setting("ZBox(-1, 2) first", EPS, first=lrp.ZBox(-1.0, 2.0), box=(-1.0, 2.0)),
    Setting("Flat() first", EPS, first=lrp.Flat()),
    Setting("WSquare() first = Zennit WSquare(zero_params='bias')", EPS, first=lrp.WSquare()),
    Setting("BatchNorm Pass() (not merged)", lrp.Epsilon(0.25), merge=False,
            batchnorm=lrp.Pass()),
    Setting("BatchNorm Epsilon(0.25) (affine, not merged)", lrp.Epsilon(0.25), merge=False,
            batchnorm=lrp.Epsilon(0.25)),
]


def compare(setting, model, x, target, per_layer):
    """Run both sides; assert and record input (and per-layer) agreement."""
    net = from_torch(model, residual_epsilon=pr.TINY)
    if setting.merge:
        net = merge_batchnorm(net)
    zennit_relevance, captured = pr.zennit_lrp(model, x, target, setting.zennit(model))
    rules = setting.ours(net)
    e = net.explain(x, target=target, rule=lambda _: rules)
    pr.record(f"Zennit {setting.name}", zennit_relevance, e.relevance)
    assert_relevance_close(zennit_relevance, e.relevance, rtol=RTOL)
    if per_layer:  # paths equal torch's names as long as no BatchNorm was merged away
        net.forward(x)      # explain keeps nothing on the layers: below_tied_maxpools reads this
        for record in e.layers[below_tied_maxpools(net, e):]:
            pr.record(f"Zennit {setting.name}, per layer", captured[record.path],
                      record.relevance_out)
            assert_relevance_close(captured[record.path], record.relevance_out, rtol=RTOL)


def below_tied_maxpools(net, e):
    """The index of the first record not below a MaxPool2d with a tied window maximum.

    A ReLU can zero every input of several conv outputs, which then all equal
    the bias: tied maxima. Relevance below such a pool differs by convention
    (we split ties, Zennit's gradient picks one element;
    test_peer_differences.py::test_max_pool_ties); above it, and at the input
    when the tied elements' own inputs are 0, the two agree.
    """
    layers = dict(net.named_layers())
    cut = 0
    for k, record in enumerate(e.layers):
        layer = layers[record.path]
        if isinstance(layer, lrp.MaxPool2d):
            windows = np.lib.stride_tricks.sliding_window_view(
                layer._input, layer.window.kernel, axis=(2, 3))[
                    :, :, ::layer.window.stride[0], ::layer.window.stride[1]]
            maxima = (windows == windows.max(axis=(4, 5), keepdims=True)).sum(axis=(4, 5))
            if np.any((maxima > 1) & (record.relevance_out != 0)):
                cut = k
    return cut


@pytest.mark.parametrize("setting", SETTINGS, ids=[s.name for s in SETTINGS])
@settings(max_examples=EXAMPLES, derandomize=True)
@given(st.data())
def test_random_cnns(setting, data):
    model, shape = data.draw(torch_cnns(bn_eps=BN_EPS if setting.merge else 1e-5,
                                        residual=setting.residual))
    low, high = setting.box or (None, None)
    x = inputs(data.draw(SEEDS), shape, low=low, high=high, nonnegative=setting.nonnegative)
    target = np.array([0, 1])
    compare(setting, model, x, target, per_layer=not setting.merge)


@pytest.mark.parametrize("setting", SETTINGS, ids=[s.name for s in SETTINGS])
def test_vgg_and_resnet_style(setting):
    networks = [(vgg_style(batchnorm=True, bn_eps=BN_EPS), (3, 16, 16))]
    if setting.residual:
        networks.append((resnet_style(bn_eps=BN_EPS), (3, 12, 12)))
    for model, shape in networks:
        low, high = setting.box or (None, None)
        x = inputs(1, shape, low=low, high=high, nonnegative=setting.nonnegative)
        compare(setting, model, x, np.array([3, 7]), per_layer=not setting.merge)


# -- Zennit's named composites against lrp_ref.composites ----------------------------------


def zennit_composites(low, high):
    """``(name, Zennit composite class with its arguments, lrp_ref composite)``."""
    c, z = lrp.composites, pr.zennit.composites
    tiny = {"stabilizer": pr.TINY}
    return [
        ("EpsilonPlus", lambda **k: z.EpsilonPlus(epsilon=1e-6, **tiny, **k),
         c.epsilon_plus(1e-6, pr.TINY)),
        ("EpsilonPlusFlat", lambda **k: z.EpsilonPlusFlat(epsilon=0.25, **tiny, **k),
         c.epsilon_plus_flat(0.25, pr.TINY)),
        ("EpsilonAlpha2Beta1", lambda **k: z.EpsilonAlpha2Beta1(epsilon=1e-6, **tiny, **k),
         c.epsilon_alpha2_beta1(1e-6, pr.TINY)),
        ("EpsilonAlpha2Beta1Flat",
         lambda **k: z.EpsilonAlpha2Beta1Flat(epsilon=0.25, **tiny, **k),
         c.epsilon_alpha2_beta1_flat(0.25, pr.TINY)),
        ("EpsilonGammaBox", lambda **k: z.EpsilonGammaBox(
            torch.as_tensor(low), torch.as_tensor(high), epsilon=1e-6, gamma=0.25, **tiny, **k),
         c.epsilon_gamma_box(low, high, 0.25, 1e-6, pr.TINY)),
    ]


BOX_LOW = np.array([-1.0, -0.5, 0.0]).reshape(1, 3, 1, 1)   # per channel, (1, C, 1, 1)
BOX_HIGH = np.array([1.0, 2.0, 1.5]).reshape(1, 3, 1, 1)


@pytest.mark.parametrize("name, zennit_composite, ours", zennit_composites(BOX_LOW, BOX_HIGH),
                         ids=[n for n, _, _ in zennit_composites(BOX_LOW, BOX_HIGH)])
@pytest.mark.parametrize("network", ["vgg", "resnet"])
def test_named_composites(name, zennit_composite, ours, network):
    model = (vgg_style(batchnorm=True, bn_eps=BN_EPS) if network == "vgg"
             else resnet_style(bn_eps=BN_EPS))
    shape = (3, 16, 16) if network == "vgg" else (3, 12, 12)
    rng = np.random.default_rng(2)
    x = rng.uniform(BOX_LOW, BOX_HIGH, size=(2, *shape))
    composite = zennit_composite(
        canonizers=[pr.zennit.canonizers.SequentialMergeBatchNorm()],
        layer_map=[(pr.BranchSum, pr.zrules.Norm(pr.TINY))])
    zennit_relevance, _ = pr.zennit_lrp(model, x, np.array([1, 4]), composite)
    net = merge_batchnorm(from_torch(model, residual_epsilon=pr.TINY))
    e = net.explain(x, target=np.array([1, 4]), rule=ours)
    pr.record(f"Zennit {name} (canonized)", zennit_relevance, e.relevance)
    assert_relevance_close(zennit_relevance, e.relevance, rtol=RTOL)


def test_montavon2019_through_a_name_map():
    """Zennit has no montavon2019 composite: its assignment, translated name by name."""
    model = vgg_style(batchnorm=False)
    net = from_torch(model)
    x = np.random.default_rng(3).uniform(BOX_LOW, BOX_HIGH, size=(2, 3, 16, 16))
    composite = lrp.composites.montavon2019(BOX_LOW, BOX_HIGH)
    assignment = composite(net)
    assert {type(r).__name__ for r in assignment.values()} == {"ZBox", "Gamma", "Epsilon",
                                                               "Zero"}
    zennit_relevance, captured = pr.zennit_lrp(model, x, np.array([0, 9]),
                                               pr.zennit_name_map(net, assignment))
    e = net.explain(x, target=np.array([0, 9]), rule=composite)
    pr.record("Zennit montavon2019 (name map)", zennit_relevance, e.relevance)
    assert_relevance_close(zennit_relevance, e.relevance, rtol=RTOL)
    for record in e.layers:
        assert_relevance_close(captured[record.path], record.relevance_out, rtol=RTOL)


def test_torchvision_basic_blocks_with_resnet_canonizer():
    """Zennit's ResNetCanonizer (Sum + Norm on torchvision's BasicBlock) = our Residual, with
    all five named composites (EpsilonGammaBox: the block convolutions feed the sum)."""
    from torchvision.models.resnet import BasicBlock

    torch.manual_seed(5)
    downsample = nn.Sequential(nn.Conv2d(8, 16, 1, stride=2), nn.BatchNorm2d(16))
    blocks = [BasicBlock(8, 8), BasicBlock(8, 16, stride=2, downsample=downsample)]
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), *blocks,
                          nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16 * 3 * 3, 5))
    model = randomize(model, 5, 0.1, BN_EPS)

    def residual(block):
        body = from_torch(nn.Sequential(block.conv1, block.bn1, nn.ReLU(), block.conv2,
                                        block.bn2).eval())
        shortcut = None if block.downsample is None else from_torch(block.downsample)
        return [lrp.Residual(body, shortcut, epsilon=pr.TINY), lrp.ReLU()]

    head = from_torch(nn.Sequential(*model[:3]).eval())
    tail = from_torch(nn.Sequential(*model[5:]).eval())
    net = merge_batchnorm(lrp.Sequential([*head.layers, *residual(model[3]),
                                          *residual(model[4]), *tail.layers]))
    x = np.random.default_rng(5).standard_normal((2, 3, 12, 12))
    for name, zennit_composite, ours in zennit_composites(BOX_LOW, BOX_HIGH):
        composite = zennit_composite(canonizers=[pr.zennit.torchvision.ResNetCanonizer()])
        zennit_relevance, _ = pr.zennit_lrp(model, x, np.array([2, 0]), composite)
        e = net.explain(x, target=np.array([2, 0]), rule=ours)
        pr.record(f"Zennit {name} + ResNetCanonizer (torchvision BasicBlock)",
                  zennit_relevance, e.relevance)
        assert_relevance_close(zennit_relevance, e.relevance, rtol=RTOL)
