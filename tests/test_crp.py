"""Concept Relevance Propagation: explain(..., conditions=...) and top_channels."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.audit import per_sample_sum
from lrp_ref.extensions.crp import top_channels

from strategies import RULES, relu_networks


def hand_net() -> lrp.Sequential:
    """x = (1, 1): z = (x0 + x1, 2 x1) = (2, 2); y = 1*2 + 3*2 = 8 (worked below)."""
    return lrp.Sequential([lrp.Dense([[1.0, 0.0], [1.0, 2.0]]), lrp.ReLU(),
                           lrp.Dense([[1.0], [3.0]])])


def test_hand_worked_conditions():
    # LRP-0: R at the hidden layer = (2, 6) (z_j / y * y). Channel 0 keeps (2, 0):
    # z_0 = x0 + x1 splits it (1, 1). Channel 1 keeps (0, 6): z_1 = 0 x0 + 2 x1 -> (0, 6).
    net, x = hand_net(), np.ones((1, 2))
    plain = net.explain(x, rule=lrp.Zero())
    np.testing.assert_array_equal(plain.relevance, [[1, 7]])
    c0 = net.explain(x, rule=lrp.Zero(), conditions={0: 0})
    c1 = net.explain(x, rule=lrp.Zero(), conditions={"0": [1]})
    np.testing.assert_array_equal(c0.relevance, [[1, 1]])
    np.testing.assert_array_equal(c1.relevance, [[0, 6]])
    # the record keeps the arriving relevance and books the removed 6 (resp. 2)
    np.testing.assert_array_equal(c0.layer("0").relevance_out, [[2, 6]])
    np.testing.assert_array_equal(c0.layer("0").conditioned, [6])
    np.testing.assert_array_equal(c1.layer("0").conditioned, [2])
    np.testing.assert_array_equal(c1.layer("2").conditioned, [0])
    # conditioning the ReLU's output (index 1, or -2) is the same concept
    np.testing.assert_array_equal(net.explain(x, rule=lrp.Zero(), conditions={-2: 1}).relevance,
                                  c1.relevance)
    assert "conditioned" in c0.ledger().splitlines()[0]


def relative_to(expected: np.ndarray) -> float:
    return float(np.abs(expected).max(initial=0.0)) + 1e-300


@pytest.mark.parametrize("rule", RULES, ids=lrp.rules.describe)
@given(case=relu_networks(), pick=st.integers(0, 2**16))
def test_channels_sum_to_the_unconditional_relevance(rule, case, pick):
    """CRP linearity: every rule is linear in R (denominators come from the forward
    pass), so the heatmaps of all channels of a layer add up to the plain one.
    1e-10 relative to the largest entry of what is summed (sum_c |R_c|, which
    can exceed |R| when channels cancel): the same sums in a different order,
    through up to four layers (as the ledger tolerance)."""
    net, x = case
    path = str(pick % len(net))
    e = net.explain(x, rule=rule)
    channels = e.layer(path).relevance_out.shape[1]
    parts = [net.explain(x, target=e.target, rule=rule, conditions={path: [c]}).relevance
             for c in range(channels)]
    scale = relative_to(sum(np.abs(p) for p in parts) + np.abs(e.relevance))
    np.testing.assert_allclose(sum(parts), e.relevance, rtol=0, atol=1e-10 * scale)


@pytest.mark.parametrize("rule", RULES, ids=lrp.rules.describe)
@given(case=relu_networks(), pick=st.integers(0, 2**16), keep=st.integers(0, 2**16))
def test_ledger_balances_with_conditions(rule, case, pick, keep):
    """Every record still balances (1e-10, the ledger tolerance); the conditioned term
    is the arriving relevance of the dropped channels; and the input relevance plus
    every ledger term gives back the seeded output relevance."""
    net, x = case
    path = str(pick % len(net))
    channels = net.explain(x, rule=rule).layer(path).relevance_out.shape[1]
    kept = [c for c in range(channels) if (keep >> c) & 1] or [0]
    e = net.explain(x, rule=rule, conditions={path: kept})
    for record in e.layers:
        scale = np.abs(record.relevance_out).sum() + np.abs(record.relevance_in).sum() + 1e-300
        np.testing.assert_allclose(record.imbalance(), 0, atol=1e-10 * scale)
    R_out = e.layer(path).relevance_out
    dropped = np.delete(R_out, kept, axis=1)
    np.testing.assert_array_equal(e.layer(path).conditioned, per_sample_sum(dropped))
    seeded = per_sample_sum(e.layers[-1].relevance_out)
    booked = sum(r.ledger.total() for r in e.layers)
    scale = sum(np.abs(r.relevance_out).sum() for r in e.layers) + 1e-300
    np.testing.assert_allclose(per_sample_sum(e.relevance) + booked, seeded, atol=1e-10 * scale)


def image_net(rng: np.random.Generator) -> lrp.Sequential:
    """BatchNorm2d (4-D output, channels on axis 1), a residual block and a Dense head."""
    c = 3
    bn = lrp.BatchNorm2d(rng.random(c) + 0.5, rng.standard_normal(c), rng.standard_normal(c),
                         rng.random(c) + 0.5)
    block = lrp.Residual(lrp.Sequential([lrp.BatchNorm2d(rng.random(c) + 0.5,
                                                         rng.standard_normal(c),
                                                         rng.standard_normal(c),
                                                         rng.random(c) + 0.5), lrp.ReLU()]))
    return lrp.Sequential([bn, lrp.ReLU(), block, lrp.Flatten(),
                           lrp.Dense(rng.standard_normal((c * 16, 4)), rng.standard_normal(4))])


@pytest.mark.parametrize("path", ["0", "1", "2", "2.body", "2.body.0", "2.body.1"])
def test_image_channels_and_nested_paths(path):
    """Inside a residual body a condition filters only the relevance through that
    layer; the skip connection's share is untouched and comes back in every
    channel's heatmap. With R(x | none) that share (an all-False mask):
    sum_c R(x | c) = R + (C - 1) R(x | none). 1e-10 relative, as above."""
    rng = np.random.default_rng(5)
    net, x = image_net(rng), rng.standard_normal((2, 3, 4, 4))
    rule = lrp.Epsilon(1e-6)
    e = net.explain(x, rule=rule)
    parts = [net.explain(x, rule=rule, conditions={path: c}) for c in range(3)]
    bypass = net.explain(x, rule=rule, conditions={path: np.zeros((2, 3), bool)}).relevance
    if not path.startswith("2.body"):
        np.testing.assert_array_equal(bypass, 0)
    np.testing.assert_allclose(sum(p.relevance for p in parts), e.relevance + 2 * bypass,
                               rtol=0, atol=1e-10 * relative_to(e.relevance))
    for part in parts:
        for record in part.layers:
            scale = np.abs(record.relevance_out).sum() + 1e-300
            np.testing.assert_allclose(record.imbalance(), 0, atol=1e-10 * scale)
        # the container record around a conditioned child books the child's removal too
        assert np.all(part.layer("2").conditioned == (part.layer(path).conditioned
                                                      if path.startswith("2") else 0))


def test_conv_channels_sum_to_the_unconditional_relevance():
    rng = np.random.default_rng(6)
    net = lrp.Sequential([lrp.Conv2d(rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4),
                                     padding=1), lrp.ReLU(), lrp.MaxPool2d(2), lrp.Flatten(),
                          lrp.Dense(rng.standard_normal((16, 3)), rng.standard_normal(3))])
    x = rng.standard_normal((2, 2, 4, 4))
    for rule in (lrp.Epsilon(1e-6), lrp.AlphaBeta(2, 1)):
        e = net.explain(x, rule=rule)
        for path in ("0", "2"):
            total = sum(net.explain(x, rule=rule, conditions={path: c}).relevance
                        for c in range(4))
            np.testing.assert_allclose(total, e.relevance, rtol=0,
                                       atol=1e-10 * relative_to(e.relevance))


def test_all_channels_and_output_conditions():
    rng = np.random.default_rng(7)
    net, x = image_net(rng), rng.standard_normal((3, 3, 4, 4))
    e = net.explain(x, rule=lrp.Zero(), target=1)
    np.testing.assert_array_equal(
        net.explain(x, rule=lrp.Zero(), target=1, conditions={0: [0, 1, 2]}).relevance,
        e.relevance)
    # conditioning the output on another class removes the whole seeded logit
    off = net.explain(x, rule=lrp.Zero(), target=1, conditions={4: [0, 2, 3]})
    np.testing.assert_array_equal(off.relevance, 0)
    np.testing.assert_array_equal(off.layer("4").conditioned, e.output[:, 1])


def test_per_sample_masks_equal_separate_explanations():
    rng = np.random.default_rng(8)
    net, x = image_net(rng), rng.standard_normal((2, 3, 4, 4))
    masks = np.array([[True, False, True], [False, True, False]])
    both = net.explain(x, rule=lrp.Epsilon(), conditions={"2.body.1": masks})
    for b, channels in enumerate(([0, 2], [1])):
        one = net.explain(x[b:b + 1], rule=lrp.Epsilon(), target=both.target[b:b + 1],
                          conditions={"2.body.1": channels})
        np.testing.assert_allclose(both.relevance[b:b + 1], one.relevance, rtol=1e-13, atol=0)


@pytest.mark.parametrize("conditions, error, message", [
    ({"9": 0}, ValueError, "no layer '9'"),
    ({"": 0}, ValueError, "no layer ''"),
    ({5: 0}, ValueError, "out of range"),
    ({-6: 0}, ValueError, "out of range"),
    ({0: 3}, ValueError, r"channel\(s\) \[3\] do not exist"),
    ({0: -1}, ValueError, ">= 0"),
    ({0: [1, 1]}, ValueError, "repeat"),
    ({0: []}, ValueError, "no channels"),
    ({0: 1.0}, TypeError, "must be an int"),
    ({0: True}, TypeError, "must be an int"),
    ({0: [[0, 1]]}, TypeError, "must be an int"),
    ({0: np.ones((2, 2), bool)}, ValueError, r"must have shape \(2, 3\)"),
    ({0: np.ones(3, bool)}, ValueError, r"\(batch, channels\)"),
    ({0: 0, "0": 1}, ValueError, "named twice"),
    ([0], TypeError, "dict"),
])
def test_condition_errors(conditions, error, message):
    rng = np.random.default_rng(9)
    net, x = image_net(rng), rng.standard_normal((2, 3, 4, 4))
    with pytest.raises(error, match=message):
        net.explain(x, rule=lrp.Epsilon(), conditions=conditions)


def test_bad_paths_are_refused_before_the_forward_pass():
    net = hand_net()
    with pytest.raises(ValueError, match="paths"):
        net.explain(np.ones((1, 2)), rule=lrp.Zero(), conditions={"0.1": 0})
    assert all(layer._input is None for layer in net.layers)


def test_top_channels():
    rng = np.random.default_rng(10)
    net, x = image_net(rng), rng.standard_normal((3, 3, 4, 4))
    rule = lrp.Epsilon()
    top = top_channels(net, x, "2.body.0", 2, rule=rule)
    e = net.explain(x, rule=rule)
    R_c = e.layer("2.body.0").relevance_out.sum(axis=(2, 3))
    assert top.path == "2.body.0" and top.channels.shape == (3, 2)
    assert top.heatmaps.shape == (3, 2, 3, 4, 4)
    for b in range(3):
        expected = sorted(range(3), key=lambda c: -R_c[b, c])[:2]      # stable: lower c first
        assert top.channels[b].tolist() == expected
        np.testing.assert_allclose(top.relevance[b], R_c[b, expected], rtol=1e-13, atol=0)
        for r, c in enumerate(expected):
            one = net.explain(x[b:b + 1], rule=rule, target=e.target[b:b + 1],
                              conditions={"2.body.0": c})
            np.testing.assert_allclose(top.heatmaps[b, r], one.relevance[0], rtol=1e-12,
                                       atol=1e-14)
    with pytest.raises(ValueError, match="k must be"):
        top_channels(net, x, 0, 0, rule=rule)
    with pytest.raises(ValueError, match="at least k channels"):
        top_channels(net, x, 0, 4, rule=rule)
    with pytest.raises(ValueError, match="no layer"):
        top_channels(net, x, "7", 1, rule=rule)
