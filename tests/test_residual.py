"""Residual blocks: forward, gradient, the relevance split, paths, rules and files."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.audit import per_sample_sum

RULES = [
    lrp.Zero(), lrp.Zero(bias=False), lrp.Epsilon(1e-6), lrp.Epsilon(0.5),
    lrp.Epsilon(0.25, bias=False), lrp.AlphaBeta(1, 0), lrp.AlphaBeta(2, 1),
    lrp.AlphaBeta(1.5, 0.5, bias=False), lrp.ZPlus(), lrp.Gamma(0.25), lrp.Flat(), lrp.WSquare(),
    lrp.ZBox(-1.0, 1.0),
]


def dense(rng: np.random.Generator, n_in: int, n_out: int, zeros: float = 0.0) -> lrp.Dense:
    w = rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)
    b = 0.3 * rng.standard_normal(n_out)
    return lrp.Dense(np.where(rng.random(w.shape) < zeros, 0.0, w),
                     np.where(rng.random(b.shape) < zeros, 0.0, b))


def batchnorm(rng: np.random.Generator, n: int) -> lrp.BatchNorm1d:
    return lrp.BatchNorm1d(1 + 0.3 * rng.standard_normal(n), 0.3 * rng.standard_normal(n),
                           0.3 * rng.standard_normal(n), rng.random(n) + 0.5)


def resnet_dense(rng: np.random.Generator, width: int, epsilon: float, zeros: float = 0.0):
    """Dense -> BN -> ReLU -> identity block -> projection block -> ReLU -> Dense.

    The identity block's body is a nested Sequential with a BatchNorm; the
    projection block changes the width and has a Dense+BN shortcut.
    """
    wide = width + 1
    return lrp.Sequential([
        dense(rng, width, width, zeros), batchnorm(rng, width), lrp.ReLU(),
        lrp.Residual(lrp.Sequential([dense(rng, width, width, zeros), batchnorm(rng, width),
                                     lrp.ReLU(), dense(rng, width, width, zeros)]),
                     epsilon=epsilon),
        lrp.ReLU(),
        lrp.Residual(lrp.Sequential([dense(rng, width, wide, zeros), lrp.ReLU(),
                                     dense(rng, wide, wide, zeros), batchnorm(rng, wide)]),
                     lrp.Sequential([dense(rng, width, wide, zeros), batchnorm(rng, wide)]),
                     epsilon=epsilon),
        lrp.ReLU(),
        dense(rng, wide, 3, zeros),
    ])


PATHS = ["0", "1", "2", "3", "3.body", "3.body.0", "3.body.1", "3.body.2", "3.body.3", "4",
         "5", "5.body", "5.body.0", "5.body.1", "5.body.2", "5.body.3", "5.shortcut",
         "5.shortcut.0", "5.shortcut.1", "6", "7"]


EPSILONS = st.sampled_from([0.0, 1e-6, 0.1])


@st.composite
def resnet_cases(draw, epsilon=EPSILONS):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    width, batch = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    zeros = draw(st.sampled_from([0.0, 0.0, 0.3]))
    net = resnet_dense(rng, width, draw(epsilon), zeros)
    return net, rng.standard_normal((batch, width))


# -- forward and backward ------------------------------------------------------------------


def test_forward_adds_the_branches():
    rng = np.random.default_rng(0)
    body, short = dense(rng, 3, 3), dense(rng, 3, 3)
    x = rng.standard_normal((2, 3))
    expected_identity = body.forward(x) + x
    expected_projection = body.forward(x) + short.forward(x)
    np.testing.assert_array_equal(lrp.Residual(body).forward(x), expected_identity)
    np.testing.assert_array_equal(lrp.Residual(body, short).forward(x), expected_projection)


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    net = resnet_dense(rng, 3, epsilon=1e-6)
    x = rng.standard_normal((1, 3))
    grad = net.gradient(x, target=1)
    h = 1e-6
    numeric = np.array([(net.forward(x + h * e)[0, 1] - net.forward(x - h * e)[0, 1]) / (2 * h)
                        for e in np.eye(3)])
    # piecewise linear network away from its kinks: central differences are exact
    # up to rounding, ~|f| 1e-16 / h = 1e-10
    np.testing.assert_allclose(grad[0], numeric, atol=1e-8)


# -- the split ------------------------------------------------------------------------------


def split_block(epsilon: float) -> lrp.Sequential:
    # body Dense diag(1, -1), identity shortcut: for x = (1, 2), z_body = (1, -2),
    # z_short = (1, 2), y = (2, 0); the Flatten only gives explain a 2-D output
    return lrp.Sequential([lrp.Residual(lrp.Dense([[1.0, 0.0], [0.0, -1.0]]), epsilon=epsilon),
                           lrp.Flatten()])


def test_split_by_hand_epsilon_zero():
    e = split_block(0.0).explain(np.array([[1.0, 2.0]]), rule=lrp.Zero(),
                                 output_relevance=np.array([[4.0, 5.0]]))
    # element 0: R_body = 1/2 * 4 = 2 and R_short = 1/2 * 4 = 2; the diagonal Dense passes
    # R_body on unchanged -> R_0 = 4. Element 1: y = 0 and epsilon = 0: nothing to split,
    # the 5 is dropped and R_1 = 0
    np.testing.assert_array_equal(e.relevance, [[4.0, 0.0]])
    np.testing.assert_array_equal(e.layer("0.body").relevance_out, [[2.0, 0.0]])
    assert e.layer("0").dropped[0] == 5.0
    assert e.layer("0").absorbed_stabilizer[0] == 0.0


def test_split_by_hand_with_stabilizer():
    e = split_block(0.5).explain(np.array([[1.0, 2.0]]), rule=lrp.Zero(),
                                 output_relevance=np.array([[4.0, 5.0]]))
    # element 0: s = 2 + 0.5 = 2.5: R_body = R_short = 1/2.5 * 4 = 1.6, stabilizer 0.5/2.5 * 4
    # element 1: y = 0, sign(0) := +1, s = 0.5: R_body = -2/0.5 * 5 = -20, R_short = +20,
    #   stabilizer 0.5/0.5 * 5 = 5: the branches cancel and the stabilizer keeps everything
    np.testing.assert_allclose(e.layer("0.body").relevance_out, [[1.6, -20.0]], rtol=1e-15)
    np.testing.assert_allclose(e.relevance, [[3.2, 0.0]], rtol=1e-15)
    np.testing.assert_allclose(e.layer("0").absorbed_stabilizer, [0.8 + 5.0], rtol=1e-15)
    assert e.layer("0").dropped[0] == 0.0


@given(resnet_cases(epsilon=st.just(0.0)))
def test_lrp0_equals_gradient_x_input(case):
    net, x = case
    out = net.forward(x)
    e = net.explain(x, rule=lrp.Zero())
    # LRP-0 == Gradient x Input holds where no denominator is 0 (there LRP drops);
    # the ledger then shows nothing dropped
    dropped = sum(np.abs(r.dropped) for r in e.layers if not r.container)
    gxi = net.gradient_x_input(x, e.target)
    mask = dropped == 0
    # both are sums of the same products in different orders: relative to the output and
    # the largest |gxi| the difference was <= 4e-16 over 4000 random cases; 1e-11 leaves
    # room for cancellation in the split's denominators
    scale = 1 + np.abs(out).max() + np.abs(gxi).max()
    np.testing.assert_allclose(e.relevance[mask], gxi[mask], rtol=0, atol=1e-11 * scale)


def test_default_epsilon_differs_from_gradient_x_input_slightly():
    rng = np.random.default_rng(0)   # a seed whose target has a nonzero gradient
    net = resnet_dense(rng, 4, epsilon=1e-6)
    x = rng.standard_normal((1, 4))
    lrp0 = net.explain(x, rule=lrp.Zero()).relevance
    gxi = net.gradient_x_input(x)
    relative = np.abs(lrp0 - gxi).max() / np.abs(gxi).max()
    # the stabilizer 1e-6 against block outputs of order 0.1 .. 1: ~1e-6 .. 1e-5, never 0
    assert 0 < relative < 1e-4


@given(resnet_cases(), st.sampled_from(RULES), st.sampled_from(["fast", "explicit"]))
def test_ledger_balances_for_every_rule(case, rule, method):
    net, x = case
    e = net.explain(x, rule=rule, method=method)
    assert [r.path for r in e.layers] == PATHS
    for r in e.layers:
        scale = 1 + per_sample_sum(np.abs(r.relevance_out)) + np.abs(r.ledger.total())
        # every record, containers included, balances to rounding
        assert np.all(np.abs(r.imbalance()) <= 1e-10 * scale), r.path
    # the top-level records cover everything (a Residual's record holds its split's share
    # and its children's terms): together they account for the target logit
    total = sum(r.ledger.total() for r in e.layers if "." not in r.path)
    target_logit = e.output[np.arange(len(x)), e.target]
    np.testing.assert_allclose(e.input_relevance_sum() + total, target_logit,
                               rtol=1e-10, atol=1e-10 * (1 + np.abs(total).max()))


@given(resnet_cases(), st.sampled_from(RULES))
def test_explicit_equals_fast(case, rule):
    net, x = case
    fast = net.explain(x, rule=rule)
    explicit = net.explain(x, rule=rule, method="explicit")
    # the same denominators at every layer; rounding differences of 1e-16 relative are
    # amplified by at most the depth and the conditioning of the split's denominators
    scale = 1 + np.abs(fast.relevance).max()
    np.testing.assert_allclose(explicit.relevance, fast.relevance, rtol=1e-9, atol=1e-9 * scale)


def test_container_ledger_books_the_split():
    rng = np.random.default_rng(3)
    net = resnet_dense(rng, 3, epsilon=0.1)
    x = rng.standard_normal((2, 3))
    e = net.explain(x, rule=lrp.Epsilon(0.01))
    block = e.layer("5")
    children = e.layer("5.body").ledger + e.layer("5.shortcut").ledger
    # the split's own share is the block's ledger minus its children's: only a stabilizer
    own_stabilizer = block.absorbed_stabilizer - children.absorbed_stabilizer
    np.testing.assert_allclose(block.absorbed_bias, children.absorbed_bias, rtol=1e-15)
    assert np.all(own_stabilizer != 0)
    # recompute the split's stabilizer share from the branch outputs
    net.forward(x)          # explain keeps nothing on the layers; a forward on its own does
    body, short = net[5].body.forward(net[5]._input), net[5].shortcut.forward(net[5]._input)
    y = body + short
    R = e.layer("5").relevance_out
    expected = (np.where(y >= 0, 0.1, -0.1) / (y + np.where(y >= 0, 0.1, -0.1)) * R).sum(axis=1)
    np.testing.assert_allclose(own_stabilizer, expected, rtol=1e-12)


# -- rules by path ---------------------------------------------------------------------------


def test_rule_list_with_body_shortcut_pair():
    rng = np.random.default_rng(4)
    net = resnet_dense(rng, 3, epsilon=0.0)
    z, e1, ab, p = lrp.Zero(), lrp.Epsilon(0.1), lrp.AlphaBeta(2, 1), lrp.Pass()
    spec = [z, p, None,
            [e1, p, None, ab],                 # the body's list alone is not a pair: error
            None,
            ([ab, None, z, p], [e1, z]),       # projection block: (body, shortcut)
            None, e1]
    with pytest.raises(ValueError, match=r"layer '3' \(Residual\): a rule entry must be a Rule "
                                         r"or a \(body, shortcut\) pair"):
        net.explain(np.ones((1, 3)), rule=spec)
    spec[3] = ([e1, p, None, ab], None)
    e = net.explain(np.ones((1, 3)), rule=spec)
    rules = e.rules()
    assert rules["3.body.0"] == e1 and rules["3.body.1"] == p and rules["3.body.3"] == ab
    assert rules["5.body.0"] == ab and rules["5.shortcut.0"] == e1
    assert rules["5.shortcut.1"] == z and rules["7"] == e1
    # a single Rule for a block applies to every rule-taking layer inside it
    spec[5] = z
    assert net.explain(np.ones((1, 3)), rule=spec).rules()["5.shortcut.1"] == z


def test_rule_list_errors_name_the_path():
    net = lrp.Sequential([lrp.Residual(lrp.Dense(np.eye(2))), lrp.Dense(np.ones((2, 1)))])
    with pytest.raises(ValueError, match="identity branch, which takes no rule"):
        net.explain(np.ones((1, 2)), rule=[(lrp.Zero(), lrp.Zero()), lrp.Zero()])
    with pytest.raises(ValueError, match=r"layer '0.body' \(Dense\) needs a rule, got None"):
        net.explain(np.ones((1, 2)), rule=[(None, None), lrp.Zero()])
    e = net.explain(np.ones((1, 2)), rule=[(lrp.Epsilon(0.1), None), lrp.Zero()])
    # rules() lists the rule-applying layers (containers have no rule of their own)
    assert e.rules() == {"0.body": lrp.Epsilon(0.1), "1": lrp.Zero()}


def test_composite_addresses_layers_inside_blocks():
    rng = np.random.default_rng(5)
    net = resnet_dense(rng, 3, epsilon=0.0)
    seen = []

    def composite(network):
        # Pass for every BatchNorm, AlphaBeta in the shortcut, Epsilon elsewhere
        seen.append([path for path, _ in network.named_layers()])
        out = {}
        for path, layer in network.named_layers():
            if isinstance(layer, lrp.BatchNorm1d):
                out[path] = lrp.Pass()
            elif isinstance(layer, lrp.Dense):
                out[path] = lrp.AlphaBeta(1, 0) if ".shortcut" in path else lrp.Epsilon(0.1)
        return out

    e = net.explain(rng.standard_normal((2, 3)), rule=composite)
    assert seen == [PATHS]
    rules = e.rules()
    assert rules["5.shortcut.0"] == lrp.AlphaBeta(1, 0)
    assert rules["5.shortcut.1"] == rules["3.body.1"] == rules["1"] == lrp.Pass()
    assert rules["5.body.2"] == rules["0"] == lrp.Epsilon(0.1)
    assert e.layer("5.shortcut.1").relevance_in is not None
    with pytest.raises(ValueError, match=r"unknown layer path\(s\) \['5.shortcut.7'\]"):
        net.explain(np.ones((1, 3)), rule=lambda n: {**composite(n), "5.shortcut.7": lrp.Zero()})


# -- construction errors, standalone use and files ------------------------------------------


def test_construction_errors():
    d = lrp.Dense(np.eye(2))
    with pytest.raises(ValueError, match="share a layer object"):
        lrp.Residual(d, d)
    with pytest.raises(TypeError, match="body must be a Layer"):
        lrp.Residual(None)
    with pytest.raises(ValueError, match="epsilon must be a finite number >= 0"):
        lrp.Residual(d, epsilon=-1.0)
    block = lrp.Residual(lrp.Dense(np.ones((2, 3))))
    net = lrp.Sequential([lrp.Dense(np.eye(2)), block])
    with pytest.raises(ValueError, match=r"layer '1' \(Residual\): body output \(1, 3\) and "
                                         r"shortcut output \(1, 2\)"):
        net.forward(np.ones((1, 2)))


def test_standalone_residual_relevance():
    rng = np.random.default_rng(6)
    block = lrp.Residual(lrp.Sequential([dense(rng, 3, 3), lrp.ReLU()]), dense(rng, 3, 3), 0.0)
    assert [path for path, _ in block.named_layers()] == ["body", "body.0", "body.1", "shortcut"]
    x = rng.standard_normal((2, 3))
    y = block.forward(x)
    # R = y g with g = 1: LRP-0 gives Gradient x Input of sum(y)
    R_in = block.relevance(y, lrp.Zero())
    np.testing.assert_allclose(R_in, x * block.backward(np.ones_like(y)), rtol=1e-12, atol=1e-12)


def test_save_load_and_astype_round_trip(tmp_path):
    rng = np.random.default_rng(7)
    net = resnet_dense(rng, 3, epsilon=0.25)
    x = rng.standard_normal((2, 3))
    lrp.save(net, tmp_path / "resnet.npz")
    loaded = lrp.load(tmp_path / "resnet.npz")
    assert [p for p, _ in loaded.named_layers()] == PATHS
    assert loaded[3].shortcut is None and loaded[5].epsilon == 0.25
    assert set(loaded.state()) == set(net.state())
    assert "5.shortcut.1.running_var" in net.state()
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))
    rule = lrp.Epsilon(0.1)
    np.testing.assert_array_equal(loaded.explain(x, rule=rule).relevance,
                                  net.explain(x, rule=rule).relevance)
    single = net.astype(np.float32)
    assert single[5].shortcut[1].gamma.dtype == np.float32
    assert single.explain(x, rule=rule).relevance.dtype == np.float32
