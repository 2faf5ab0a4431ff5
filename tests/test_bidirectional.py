"""Bidirectional LSTM: the two directions composed by hand, gradients, records, rules."""

import numpy as np
import pytest

import lrp_ref as lrp


def random_lstm(rng, F, H, return_sequences):
    return lrp.LSTM(rng.standard_normal((4 * H, F)), rng.standard_normal((4 * H, H)),
                    rng.standard_normal(4 * H), rng.standard_normal(4 * H),
                    return_sequences=return_sequences)


def pair(seed, return_sequences, F=3, H=2):
    rng = np.random.default_rng(seed)
    return random_lstm(rng, F, H, return_sequences), random_lstm(rng, F, H, return_sequences)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_forward_concatenates_the_two_directions(return_sequences):
    fwd, bwd = pair(0, return_sequences)
    ref_fwd, ref_bwd = pair(0, return_sequences)
    x = np.random.default_rng(1).standard_normal((2, 5, 3))
    y_bwd = ref_bwd.forward(x[:, ::-1].copy())
    if return_sequences:
        y_bwd = y_bwd[:, ::-1]
    expected = np.concatenate([ref_fwd.forward(x), y_bwd], axis=-1)
    np.testing.assert_array_equal(lrp.Bidirectional(fwd, bwd).forward(x), expected)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_relevance_is_the_sum_of_both_directions(return_sequences):
    fwd, bwd = pair(2, return_sequences)
    ref_fwd, ref_bwd = pair(2, return_sequences)
    layer = lrp.Bidirectional(fwd, bwd)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 3))
    R = rng.standard_normal(layer.forward(x).shape)
    ref_fwd.forward(x)
    ref_bwd.forward(x[:, ::-1].copy())
    R_bwd = R[..., 2:][:, ::-1] if return_sequences else R[..., 2:]
    expected = (ref_fwd.relevance(R[..., :2], lrp.Epsilon(0.01))
                + ref_bwd.relevance(R_bwd, lrp.Epsilon(0.01))[:, ::-1])
    # the same operations on the same arrays
    np.testing.assert_allclose(layer.relevance(R, lrp.Epsilon(0.01)), expected, rtol=1e-14)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_gradient_matches_finite_differences(return_sequences):
    layer = lrp.Bidirectional(*pair(4, return_sequences, F=2))
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 3, 2))
    r = rng.standard_normal(layer.forward(x).shape)
    grad = layer.backward(r)
    h = 1e-6
    fd = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[k] = h
        fd[k] = ((layer.forward(x + e) * r).sum() - (layer.forward(x - e) * r).sum()) / (2 * h)
    # central differences: O(h^2) truncation + 1e-16/h rounding ~ 1e-10
    np.testing.assert_allclose(grad, fd, rtol=0, atol=1e-8)


def test_records_paths_and_rule_pairs():
    rng = np.random.default_rng(6)
    net = lrp.Sequential([lrp.Embedding(rng.standard_normal((5, 3))),
                          lrp.Bidirectional(*pair(7, False)),
                          lrp.Dense(rng.standard_normal((4, 2)))])
    ids = rng.integers(0, 5, (3, 4))
    e = net.explain(ids, rule=[None, (lrp.Zero(), lrp.Epsilon(0.1)), lrp.Epsilon()])
    assert [r.path for r in e.layers] == ["0", "1", "1.fwd", "1.bwd", "2"]
    assert e.rules()["1.fwd"] == lrp.Zero() and e.rules()["1.bwd"] == lrp.Epsilon(0.1)
    for record in e.layers:
        scale = np.abs(record.relevance_out).sum() + np.abs(record.relevance_in).sum()
        np.testing.assert_allclose(record.imbalance(), 0, atol=1e-10 * scale)
    with pytest.raises(ValueError, match=r"layer '1.fwd' \(LSTM\) cannot apply AlphaBeta"):
        net.explain(ids, rule=lrp.AlphaBeta(2, 1))
    with pytest.raises(ValueError, match=r"a Rule or a \(fwd, bwd\) pair"):
        net.explain(ids, rule=[None, [lrp.Zero()], lrp.Zero()])


def test_construction_errors():
    fwd, bwd = pair(8, False)
    with pytest.raises(TypeError, match="lstm_bwd must be an LSTM"):
        lrp.Bidirectional(fwd, lrp.Dense(np.ones((2, 2))))
    with pytest.raises(ValueError, match="separate LSTM objects"):
        lrp.Bidirectional(fwd, fwd)
    with pytest.raises(ValueError, match="same input size and return_sequences"):
        lrp.Bidirectional(fwd, pair(8, True)[1])
