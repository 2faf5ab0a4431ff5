"""Every documented difference between lrp_ref and a peer, reproduced numerically.

One test per difference in DESIGN.md ("Known differences") and PEERS.md, on a
single layer with hand-chosen numbers: the peer's result equals the peer's
formula computed by hand in NumPy, lrp_ref's equals ours, and the two differ
where (and only where) the documentation says they do. docs/peers.md explains
each one. Peers: Zennit 0.5.1, Captum 0.9; iNNvestigate (TensorFlow) is not
installed, so its issue-273 example is computed by hand from its formula.

Tolerances: 1e-12 relative for a library against the same formula in another
summation order (float64 rounding, no ill-conditioned denominators in these
examples).
"""

import importlib.metadata

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref.interop.torch import from_torch
from lrp_ref.rules.canonize import merge_batchnorm
from lrp_ref.testing import assert_relevance_close, max_relative_difference

try:
    import peer_runs as pr
except ImportError as exc:
    pytest.skip(f"oracle extra not importable: {exc}", allow_module_level=True)

from torch_nets import randomize  # noqa: E402

torch, zennit, captum = pr.torch, pr.zennit, pr.captum
nn = torch.nn
zrules = pr.zrules
crules = captum.attr._utils.lrp_rules

#: The installed Zennit's version, e.g. (0, 5, 1): some differences are version's quirks.
ZENNIT_VERSION = tuple(int(p) for p in importlib.metadata.version("zennit").split(".")[:3])
RTOL = 1e-12

# one dense layer: torch's weight (out, in) = W, lrp_ref's (in, out) = W.T
W = np.array([[1.0, -2.0, 0.5], [0.5, 1.0, -1.0], [-0.75, 0.25, 1.5]])
B = np.array([1.0, -2.0, 0.5])
X = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]])
R = np.array([[1.0, 2.0, -0.5], [0.5, -1.0, 1.5]])
pos, neg = (lambda v: np.maximum(v, 0)), (lambda v: np.minimum(v, 0))


def linear_model(weight=W, bias=B):
    model = nn.Sequential(nn.Linear(weight.shape[1], weight.shape[0])).double().eval()
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(weight))
        model[0].bias.copy_(torch.from_numpy(bias))
    return model


def zennit_relevance(model, rule, x, relevance_out, types=(nn.Linear,)):
    """Zennit's input relevance of ``model`` with ``rule`` on ``types``, seeded with R."""
    composite = zennit.composites.LayerMapComposite([(types, rule)] if rule else [])
    inputs = torch.from_numpy(x).requires_grad_(True)
    with zennit.attribution.Gradient(model, composite) as attributor:
        _, relevance = attributor(inputs, torch.from_numpy(relevance_out))
    return relevance.detach().numpy()


def ours(rule, x=X, relevance_out=R, weight=W, bias=B):
    layer = lrp.Dense(weight.T, bias)
    layer.forward(x)
    return layer.relevance(relevance_out, rule)


def by_hand(numerator, denominator, relevance_out):
    """``R_i = sum_j numerator[b, i, j] / denominator[b, j] * R_j`` (0 where it is 0)."""
    share = np.divide(numerator, denominator[:, None, :], out=np.zeros_like(numerator),
                      where=denominator[:, None, :] != 0)
    return (share * relevance_out[:, None, :]).sum(axis=2)


def z_ij(x=X, weight=W):
    return x[:, :, None] * weight.T[None]          # (B, in, out)


# -- Zennit ----------------------------------------------------------------------------------


def test_zennit_wsquare_adds_the_squared_bias():
    """Zennit's WSquare: w_ij^2 / (sum_i w_ij^2 + b_j^2); ours (and iNNvestigate's) has no b^2."""
    w2 = np.broadcast_to((W.T ** 2)[None], (2, 3, 3))
    zennit_hand = by_hand(w2, w2.sum(axis=1) + B ** 2, R)
    ours_hand = by_hand(w2, w2.sum(axis=1), R)
    measured = zennit_relevance(linear_model(), zrules.WSquare(pr.TINY), X, R)
    assert_relevance_close(measured, zennit_hand, rtol=RTOL)
    assert_relevance_close(ours(lrp.WSquare()), ours_hand, rtol=RTOL)
    # the b^2 term keeps sum_j R_j b_j^2 / (sum_i w_ij^2 + b_j^2) from the inputs
    lost = (R * B ** 2 / (w2.sum(axis=1) + B ** 2)).sum(axis=1)
    np.testing.assert_allclose(R.sum(axis=1) - measured.sum(axis=1), lost, rtol=RTOL)
    assert max_relative_difference(measured, ours_hand) > 0.1
    assert_relevance_close(zennit_relevance(linear_model(), zrules.WSquare(
        pr.TINY, zero_params="bias"), X, R), ours(lrp.WSquare()), rtol=RTOL)


def test_zennit_zplus_is_our_alpha1_beta0_not_our_zplus():
    """Zennit's ZPlus keeps b+ in the denominator: our AlphaBeta(1, 0); our ZPlus drops it."""
    zp = pos(z_ij())
    zp_sum = zp.sum(axis=1)
    zennit_hand = by_hand(zp, zp_sum + pos(B), R)
    measured = zennit_relevance(linear_model(), zrules.ZPlus(pr.TINY), X, R)
    assert_relevance_close(measured, zennit_hand, rtol=RTOL)
    assert_relevance_close(ours(lrp.AlphaBeta(1, 0)), measured, rtol=RTOL)
    assert_relevance_close(ours(lrp.ZPlus()), by_hand(zp, zp_sum, R), rtol=RTOL)
    assert max_relative_difference(ours(lrp.ZPlus()), measured) > 0.1   # b+ = (1, 0, 0.5)


def zennit_gamma_by_hand(g, x, weight, bias, relevance_out):
    """Zennit 0.5.1's generalised Gamma (Andeol et al. 2021), read from its source:
    z_j > 0: (x+ (w + g w+) + x- (w + g w-)) / (same sum + b + g b+);
    z_j < 0: (x+ (w + g w-) + x- (w + g w+)) / (same sum + b + g b-);  z_j = 0: nothing."""
    w = weight.T[None]
    z = x @ weight.T + bias
    up = pos(x)[:, :, None] * (w + g * pos(w)) + neg(x)[:, :, None] * (w + g * neg(w))
    down = pos(x)[:, :, None] * (w + g * neg(w)) + neg(x)[:, :, None] * (w + g * pos(w))
    numerator = np.where(z[:, None, :] > 0, up, np.where(z[:, None, :] < 0, down, 0.0))
    denominator = np.where(z > 0, up.sum(axis=1) + bias + g * pos(bias),
                           down.sum(axis=1) + bias + g * neg(bias))
    return by_hand(numerator, denominator, relevance_out)


def test_zennit_gamma_on_negative_outputs():
    """Zennit's Gamma routes relevance at z_j < 0 through w + g w- (and drops it at z_j = 0):
    our GeneralizedGamma. Our Gamma keeps Montavon's single formula; with x >= 0 it agrees
    with Zennit's exactly where z_j > 0."""
    x = np.array([[0.5, 1.0, 2.0], [1.0, 1.0, 0.0]])          # x >= 0
    weight = np.array([[1.0, -2.0, 0.5], [1.0, -1.0, 0.5], [-0.75, 0.25, -1.5]])
    bias = np.array([0.25, 0.0, 0.5])
    z = x @ weight.T + bias
    assert (z[0] > 0).tolist() == [False, True, False] and z[1, 1] == 0   # 3 kinds of output
    g = 0.25
    model = linear_model(weight, bias)
    measured = zennit_relevance(model, zrules.Gamma(g, pr.TINY), x, R)
    assert_relevance_close(measured, zennit_gamma_by_hand(g, x, weight, bias, R), rtol=RTOL)
    assert_relevance_close(ours(lrp.GeneralizedGamma(g), x, R, weight, bias), measured,
                           rtol=RTOL)
    mine = ours(lrp.Gamma(g), x, R, weight, bias)
    w_g = weight.T + g * pos(weight.T)
    ours_hand = by_hand(x[:, :, None] * w_g[None], x @ w_g + bias + g * pos(bias), R)
    assert_relevance_close(mine, ours_hand, rtol=RTOL)
    for j in range(3):                 # output by output: equal iff z_j > 0 (both samples)
        only_j = np.zeros_like(R)
        only_j[:, j] = R[:, j]
        theirs_j = zennit_relevance(model, zrules.Gamma(g, pr.TINY), x, only_j)
        mine_j = ours(lrp.Gamma(g), x, only_j, weight, bias)
        for b in range(2):
            same = max_relative_difference(theirs_j[b:b + 1], mine_j[b:b + 1]) <= RTOL
            assert same == (z[b, j] > 0), (b, j, z[b, j])


def test_zennit_parameter_rules_leave_avgpool_unmodified():
    """Zennit's AlphaBeta on a parameterless AvgPool is the z-rule (Norm): our Epsilon(tiny).
    Our AlphaBeta(2, 1) on AvgPool with inputs >= 0 has no z- and gives exactly 2x that."""
    model = nn.Sequential(nn.AvgPool2d(2)).double().eval()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 4, 4))
    r = rng.standard_normal((2, 2, 2, 2))
    types = (nn.AvgPool2d,)
    alpha_beta = zennit_relevance(model, zrules.AlphaBeta(2, 1, pr.TINY), x, r, types)
    norm = zennit_relevance(model, zrules.Norm(pr.TINY), x, r, types)
    assert_relevance_close(alpha_beta, norm, rtol=RTOL)
    layer = lrp.AvgPool2d(2)
    layer.forward(x)
    assert_relevance_close(layer.relevance(r, lrp.Epsilon(pr.TINY)), norm, rtol=RTOL)
    x = np.abs(x)
    norm = zennit_relevance(model, zrules.AlphaBeta(2, 1, pr.TINY), x, r, types)
    layer.forward(x)
    assert_relevance_close(layer.relevance(r, lrp.AlphaBeta(2, 1)), 2 * norm, rtol=RTOL)


def test_zennit_stabilizer_in_every_rule():
    """Zennit adds stabilizer * sign(d_j) (default 1e-6) to every rule's denominator; our
    ZPlus, AlphaBeta, Gamma, ZBox, Flat, WSquare have none: the shares of output j differ
    by exactly the factor d_j / (d_j + 1e-6 sign(d_j))."""
    x = np.abs(X)
    d = pos(z_ij(x)).sum(axis=1) + pos(B)                   # Zennit ZPlus's denominator
    scaled = R * d / (d + 1e-6)                             # d > 0 here
    measured = zennit_relevance(linear_model(), zrules.ZPlus(), x, R)
    assert_relevance_close(measured, ours(lrp.AlphaBeta(1, 0), x, scaled), rtol=RTOL)
    difference = max_relative_difference(measured, ours(lrp.AlphaBeta(1, 0), x))
    assert 0.1 * 1e-6 / d.max() < difference < 10 * 1e-6 / d.min()


def test_zennit_merge_batchnorm_keeps_the_eps_of_the_identity_batchnorm():
    """A quirk of Zennit 0.5.1 (the oracle extra's pin), fixed in Zennit 1.0.0: after
    SequentialMergeBatchNorm the BatchNorm computes y / sqrt(1 + eps) (mean 0, var 1,
    weight 1, bias 0, but eps kept), so the canonized network's output is the original's
    / sqrt(1 + eps). Zennit 1.0.0 leaves the forward unchanged (measured with
    scripts/zennit_1_0_agreement.sh; docs/peers.md). Our merge_batchnorm removes the
    BatchNorm: its forward is unchanged (the agreement tests use eps = 1e-12)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3, eps=1e-3), nn.ReLU(),
                          nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    model = randomize(model, 0, bn_eps=1e-3)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 2, 6, 6)))
    with torch.no_grad():
        original = model(x).numpy()
        composite = zennit.composites.LayerMapComposite(
            [], canonizers=[zennit.canonizers.SequentialMergeBatchNorm()])
        with composite.context(model) as canonized:
            merged = canonized(x).numpy()
    # the first layer's output shrinks by 1/sqrt(1 + eps); through ReLU and the affine head
    # that is not a plain factor at the logits, so compare the conv+BN part
    with torch.no_grad(), composite.context(model) as canonized:
        bn_out = canonized[1](canonized[0](x)).numpy()
    with torch.no_grad():
        reference = model[1](model[0](x)).numpy()
    if ZENNIT_VERSION < (1, 0):
        assert_relevance_close(bn_out, reference / np.sqrt(1 + 1e-3), rtol=RTOL)
        assert max_relative_difference(merged, original) > 1e-5
    else:
        assert_relevance_close(bn_out, reference, rtol=RTOL)
        assert_relevance_close(merged, original, rtol=RTOL)
    assert_relevance_close(merge_batchnorm(from_torch(model)).forward(x.numpy()), original,
                           rtol=1e-12)


def test_max_pool_ties():
    """A window with two equal maxima: Zennit (the plain gradient) and Captum put all of R_j
    on the first maximum in row-major order; ours (mode='winner') splits it equally."""
    x = np.array([[[[1.0, 3.0], [3.0, 0.5]]]])
    r = np.array([[[[2.0]]]])
    model = nn.Sequential(nn.MaxPool2d(2)).double().eval()
    theirs = zennit_relevance(model, None, x, r)
    np.testing.assert_array_equal(theirs, [[[[0.0, 2.0], [0.0, 0.0]]]])
    layer = lrp.MaxPool2d(2)
    layer.forward(x)
    np.testing.assert_array_equal(layer.relevance(r), [[[[0.0, 1.0], [1.0, 0.0]]]])
    # Captum: EpsilonRule on the pool, relevance a_i * grad * R / (z + eps): the same element
    captum_model = nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1, 1)).double().eval()
    captum_model[0].rule = crules.EpsilonRule(pr.TINY)
    captum_model[1].rule = crules.EpsilonRule(pr.TINY)
    captum_model[2].rule = crules.EpsilonRule(pr.TINY)
    with torch.no_grad():
        captum_model[2].weight.fill_(1.0)
        captum_model[2].bias.fill_(0.0)
    relevance = captum.attr.LRP(captum_model).attribute(torch.from_numpy(x).requires_grad_(),
                                                         target=0)
    np.testing.assert_allclose(relevance.detach().numpy(), [[[[0.0, 3.0], [0.0, 0.0]]]],
                               rtol=RTOL)


# -- Captum ----------------------------------------------------------------------------------


def captum_relevance(model, rule, x, target):
    """Captum's LRP with ``rule`` on every Linear, seeded with the target logit."""
    return pr.captum_lrp(model, x, target, [(m, rule) for m in model.modules()
                                            if isinstance(m, nn.Linear)])


def seeded(x, target, weight=W, bias=B):
    """``onehot(target) * z``: the output relevance Captum seeds (the target logit)."""
    z = x @ weight.T + bias
    out = np.zeros_like(z)
    out[np.arange(len(target)), target] = z[np.arange(len(target)), target]
    return out


def factor(rule):
    rule.STABILITY_FACTOR = pr.TINY
    return rule


def test_captum_alpha1_beta0_does_not_split_inputs_and_keeps_the_full_bias():
    """Captum's Alpha1_Beta0_Rule: x_i w+_ij / (sum_i x_i w+_ij + b_j) (Captum issue 1234):
    negative inputs give negative shares and the whole bias is in the denominator.
    Ours: z+_ij = max(0, x_i w_ij) (a+ w+ and a- w-) over sum_i z+_ij + b+_j."""
    target = np.array([0, 2])
    r = seeded(X, target)
    measured = captum_relevance(linear_model(), factor(crules.Alpha1_Beta0_Rule()), X, target)
    w_plus = pos(W.T)[None]
    captum_hand = by_hand(X[:, :, None] * w_plus, X @ pos(W.T) + B, r)
    assert_relevance_close(measured, captum_hand, rtol=RTOL)
    assert_relevance_close(ours(lrp.AlphaBeta(1, 0), X, r),
                           by_hand(pos(z_ij()), pos(z_ij()).sum(axis=1) + pos(B), r), rtol=RTOL)
    assert max_relative_difference(measured, ours(lrp.AlphaBeta(1, 0), X, r)) > 0.1
    assert (measured < 0).any()         # negative inputs: negative relevance from w+ alone


def test_captum_gamma_leaves_the_bias_unmodified():
    """Captum's GammaRule: x (w + g w+) / (sum_i x (w + g w+) + b); ours adds g b+ to b
    (Montavon et al. 2019). Equal where b_j <= 0."""
    g, target = 0.25, np.array([0, 1])
    r = seeded(X, target)
    measured = captum_relevance(linear_model(), factor(crules.GammaRule(g)), X, target)
    w_g = W.T + g * pos(W.T)
    assert_relevance_close(measured, by_hand(X[:, :, None] * w_g[None], X @ w_g + B, r),
                           rtol=RTOL)
    mine = ours(lrp.Gamma(g), X, r)
    assert_relevance_close(mine, by_hand(X[:, :, None] * w_g[None], X @ w_g + B + g * pos(B), r),
                           rtol=RTOL)
    # sample 0 explains output 0 (b = 1 > 0): differs; sample 1 output 1 (b = -2): equal
    assert max_relative_difference(measured[:1], mine[:1]) > 1e-3
    assert max_relative_difference(measured[1:], mine[1:]) <= RTOL


def test_default_epsilons_captum_1e9_zennit_1e6():
    """Captum's EpsilonRule() is our Epsilon(1e-9); Zennit's Epsilon() our Epsilon() (1e-6).
    The defaults differ by about 1e-6 / |z_j| relative."""
    target = np.array([1, 2])
    r = seeded(X, target)
    captum_default = captum_relevance(linear_model(), crules.EpsilonRule(), X, target)
    assert_relevance_close(captum_default, ours(lrp.Epsilon(1e-9), X, r), rtol=RTOL)
    zennit_default = zennit_relevance(linear_model(), zrules.Epsilon(), X, r)
    assert_relevance_close(zennit_default, ours(lrp.Epsilon(), X, r), rtol=RTOL)
    z = np.abs(X @ W.T + B)[np.arange(2), target]
    difference = max_relative_difference(captum_default, zennit_default)
    assert 0.1 * 1e-6 / z.max() < difference < 10 * 1e-6 / z.min()


def test_captum_functional_addition_mixes_relevance_and_activation():
    """Observed in Captum 0.9: with a functional ``body(x) + x`` (no Addition_Module) the
    skip path is not a rule-carrying layer. Captum's hooks pass relevance, not gradients,
    between layers, so the relevance R arriving at the sum goes unchanged into both
    branches and, on the skip path, is multiplied by the activation x at the next hooked
    input: R_x = x * (W^T (R / s(z_body)) + R). PEERS.md's "copies the relevance into both
    branches" is the first half of this; the result is not conserved. Ours splits R by
    the branches' contributions (Residual; Captum's Addition_Module does the same)."""

    class FunctionalResidual(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.relu, self.out = nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2)

        def forward(self, x):
            return self.out(self.relu(self.body(x) + x))

    torch.manual_seed(0)
    model = FunctionalResidual().double().eval()
    x = np.random.default_rng(0).standard_normal((1, 3))
    target = np.array([0])
    measured = pr.captum_lrp(model, x, target, [(m, crules.EpsilonRule(pr.TINY)) for m in
                                                (model.body, model.out)])
    w1, b1 = (p.detach().numpy() for p in (model.body.weight, model.body.bias))
    w2, b2 = (p.detach().numpy() for p in (model.out.weight, model.out.bias))
    h = np.maximum(x @ w1.T + b1 + x, 0)
    r_top = seeded(h, target, w2, b2)
    r_sum = h * ((r_top / (h @ w2.T + b2)) @ w2)                 # relevance at the sum
    z_body = x @ w1.T + b1
    by_hand_captum = x * ((r_sum / z_body) @ w1 + r_sum)
    assert_relevance_close(measured, by_hand_captum, rtol=RTOL)
    body = lrp.Sequential([lrp.Dense(w1.T, b1)])
    net = lrp.Sequential([lrp.Residual(body, epsilon=pr.TINY), lrp.ReLU(), lrp.Dense(w2.T, b2)])
    e = net.explain(x, target=target, rule=lrp.Epsilon(pr.TINY))
    assert max_relative_difference(measured, e.relevance) > 0.1


# -- iNNvestigate (by hand) --------------------------------------------------------------------


def test_innvestigate_issue_273_by_hand():
    """iNNvestigate issue 273: W = (1, -1), b = -1, x = (1, 1), so z = -1 and R_out = z.

    Ours (derived by hand): z+_ij = (1, 0), z+_j = 1 + max(0, b) = 1; z-_ij = (0, -1),
    z-_j = -1 + min(0, b) = -2. AlphaBeta(1, 0): R = 1 * (1, 0)/1 * (-1) = (-1, 0).
    AlphaBeta(2, 1): 2 * (-1, 0) - 1 * (0, -1)/(-2) * (-1) = (-2, 0.5).
    iNNvestigate 2.1.2 puts the full bias into the positive denominator, 1 + (-1) = 0, and
    its safe_divide shifts an exact zero by 1e-7: R = (1, 0)/1e-7 * (-1) = (-1e7, 0).
    Zennit agrees with ours (b+ = 0)."""
    x, w, b = np.array([[1.0, 1.0]]), np.array([[1.0], [-1.0]]), np.array([-1.0])
    r = np.array([[-1.0]])
    layer = lrp.Dense(w, b)
    layer.forward(x)
    np.testing.assert_allclose(layer.relevance(r, lrp.AlphaBeta(1, 0)), [[-1.0, 0.0]])
    np.testing.assert_allclose(layer.relevance(r, lrp.AlphaBeta(2, 1)), [[-2.0, 0.5]])
    z_plus = np.maximum(x * w[:, 0], 0)
    denominator = z_plus.sum() + b[0]                 # iNNvestigate: the full bias
    assert denominator == 0
    innvestigate = z_plus / (denominator + 1e-7) * r[0, 0]      # safe_divide: 0 -> 1e-7
    np.testing.assert_allclose(innvestigate, [[-1e7, 0.0]])
    model = linear_model(w.T, b)
    for zennit_rule, ours_rule in ((zrules.AlphaBeta(1, 0, pr.TINY), lrp.AlphaBeta(1, 0)),
                                   (zrules.AlphaBeta(2, 1, pr.TINY), lrp.AlphaBeta(2, 1))):
        assert_relevance_close(zennit_relevance(model, zennit_rule, x, r),
                               layer.relevance(r, ours_rule), rtol=RTOL)
