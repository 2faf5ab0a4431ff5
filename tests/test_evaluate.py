"""lrp_ref.evaluate: pixel flipping / AOPC and relevance mass / rank accuracy.

Expected values are worked out by hand in the comments; the property test
compares with the closed form of flipping a linear model.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.evaluation import (
    aopc,
    perturbation,
    pixel_flipping,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    token_flipping,
)


def linear_model(weight: np.ndarray, bias: float = 0.0) -> lrp.Sequential:
    """f(x) = sum_{c,y,x} weight[c,y,x] x[c,y,x] + bias, one output class."""
    return lrp.Sequential([lrp.Flatten(), lrp.Dense(weight.reshape(-1, 1), [bias])])


# x = [[1, 2], [3, 4]], f = sum of pixels = 10; Gradient x Input R = x.
X = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
SUM = linear_model(np.ones((1, 2, 2)))


# -- pixel flipping ------------------------------------------------------------------------


def test_morf_and_lerf_by_hand():
    # MoRF removes 4, 3, 2, 1: 10, 6, 3, 1, 0.  LeRF removes 1, 2, 3, 4: 10, 9, 7, 4, 0.
    np.testing.assert_array_equal(pixel_flipping(SUM, X, X, 0), [[10, 6, 3, 1, 0]])
    np.testing.assert_array_equal(pixel_flipping(SUM, X, X, 0, order="lerf"), [[10, 9, 7, 4, 0]])


def test_aopc_by_hand():
    # AOPC = mean over k of f(x_0) - f(x_k): MoRF (0+4+7+9+10)/5 = 6, LeRF (0+1+3+6+10)/5 = 4
    assert aopc(np.array([[10.0, 6, 3, 1, 0]])) == pytest.approx([6.0], abs=1e-15)
    assert aopc(np.array([10.0, 9, 7, 4, 0])) == pytest.approx(4.0, abs=1e-15)
    assert aopc(np.array([[3.0]])) == pytest.approx([0.0])


def test_steps_round_half_up():
    # n = 4 patches. L = 3: k*4/3 = 0, 1.33, 2.67, 4 -> 0, 1, 3, 4 patches: 10, 6, 1, 0.
    np.testing.assert_array_equal(pixel_flipping(SUM, X, X, 0, steps=3), [[10, 6, 1, 0]])
    # L = 8: k/2 = 0, .5, 1, 1.5, 2, 2.5, 3, 3.5, 4 -> 0, 1, 1, 2, 2, 3, 3, 4, 4 (half up).
    np.testing.assert_array_equal(pixel_flipping(SUM, X, X, 0, steps=8),
                                  [[10, 6, 6, 3, 3, 1, 1, 0, 0]])
    # L = 1: everything at once.
    np.testing.assert_array_equal(pixel_flipping(SUM, X, X, 0, steps=1), [[10, 0]])


def test_ties_are_broken_by_reading_order_in_both_orders():
    # a zero map ranks pixels (0,0), (0,1), (1,0), (1,1) in either order: 10, 9, 7, 4, 0
    zero = np.zeros_like(X)
    for order in ("morf", "lerf"):
        np.testing.assert_array_equal(pixel_flipping(SUM, X, zero, 0, order=order),
                                      [[10, 9, 7, 4, 0]])
    # equal scores 5 at (0,1) and (1,0): MoRF takes (0,1) first
    R = np.array([[[[0.0, 5.0], [5.0, 1.0]]]])
    np.testing.assert_array_equal(pixel_flipping(SUM, X, R, 0), [[10, 8, 5, 1, 0]])


def test_constant_model_gives_a_flat_curve():
    rng = np.random.default_rng(0)
    x = rng.random((3, 2, 4, 4))
    net = linear_model(np.zeros((2, 4, 4)), bias=1.5)
    for fill in perturbation.FILLS:
        curve = pixel_flipping(net, x, rng.standard_normal(x.shape), 0, fill=fill, seed=1)
        np.testing.assert_array_equal(curve, np.full((3, 17), 1.5))
        np.testing.assert_array_equal(aopc(curve), np.zeros(3))


def test_mean_fill_by_hand():
    # mean 2.5 replaces 4, 3, 2, 1 in turn: 10 - 1.5 = 8.5, 8.5 - 0.5 = 8, 8 + 0.5 = 8.5, 10
    np.testing.assert_array_equal(pixel_flipping(SUM, X, X, 0, fill="mean"),
                                  [[10, 8.5, 8, 8.5, 10]])


def test_patches_are_ranked_by_summed_relevance_and_replace_all_channels():
    # 2 channels of 4x4, patch 2: four 2x2 patches. Patch scores (summed over both
    # channels): top-left 1, top-right 3, bottom-left 2, bottom-right 0.
    x = np.ones((1, 2, 4, 4))
    R = np.zeros((1, 2, 4, 4))
    R[0, 0, 0, 0], R[0, 1, 0, 2], R[0, 0, 3, 1], R[0, 1, 2, 0] = 1, 3, 1, 1
    # f counts the pixels still 1 in channel 0, plus 10x those in channel 1 (each patch: 4 + 40)
    weight = np.stack([np.ones((4, 4)), 10 * np.ones((4, 4))])
    curve = pixel_flipping(linear_model(weight), x, R, 0, patch=2)
    np.testing.assert_array_equal(curve, [[176, 132, 88, 44, 0]])
    # relevance given as (B, H, W) or (B, 1, H, W): the channel sum, same ranking
    np.testing.assert_array_equal(pixel_flipping(linear_model(weight), x, R.sum(1), 0, patch=2),
                                  curve)
    # top-right is removed first: its pixels are 0 in both channels at step 1
    seen = []
    pixel_flipping(lambda images: seen.append(images.copy()) or np.zeros((len(images), 1)),
                   x, R, 0, patch=2, steps=1)
    np.testing.assert_array_equal(seen[-1][0, :, :2, 2:], 0)
    np.testing.assert_array_equal(seen[-1][0, :, 2:, 2:], 0)   # and the last step removes all


def test_noise_fill_is_seeded_in_range_and_kept():
    rng = np.random.default_rng(3)
    x = rng.random((2, 3, 4, 4))
    R = rng.standard_normal(x.shape)
    images = []

    def record(batch):
        images.append(batch.copy())
        return batch.reshape(len(batch), -1)[:, :2]

    a = pixel_flipping(record, x, R, 0, fill="noise", seed=7)
    final = images[-1][-2:]                      # the last step: every pixel replaced
    low, high = x.min(axis=(2, 3), keepdims=True), x.max(axis=(2, 3), keepdims=True)
    assert np.all((final >= low) & (final <= high))
    assert not np.allclose(final, x)
    np.testing.assert_array_equal(pixel_flipping(record, x, R, 0, fill="noise", seed=7), a)
    assert not np.array_equal(pixel_flipping(record, x, R, 0, fill="noise", seed=8), a)
    # f reads pixel (0, 0, 0); rank it first: once replaced it keeps its value
    R0 = np.zeros_like(x)
    R0[:, 0, 0, 0] = 1
    curve = pixel_flipping(record, x, R0, 0, fill="noise", seed=7)
    np.testing.assert_array_equal(curve[:, 1:], np.repeat(curve[:, 1:2], 16, axis=1))


def linear_closed_form(w, x, R, order):
    """Flipping f = sum w x with zero fill removes sum_c w_c x_c at each pixel, in the
    order of the relevance (stable argsort, as the ranking is specified)."""
    contribution = (w * x).sum(axis=1).reshape(len(x), -1)      # per pixel, summed over c
    key = -R.reshape(len(x), -1) if order == "morf" else R.reshape(len(x), -1)
    ranking = np.argsort(key, axis=1, kind="stable")
    removed = np.cumsum(np.take_along_axis(contribution, ranking, axis=1), axis=1)
    f0 = contribution.sum(axis=1, keepdims=True)
    return np.concatenate([f0, f0 - removed], axis=1)


@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 3), channels=st.integers(1, 2),
       size=st.integers(1, 4), order=st.sampled_from(perturbation.ORDERS))
def test_linear_model_matches_the_closed_form(seed, batch, channels, size, order):
    """Single-pixel flipping of a linear model with zero fill: f(x_k) = f(x_0) - the
    k first contributions in ranking order. Both sides sum the same terms in a
    different order: 1e-12 relative to the sum of |terms|."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, channels, size, size))
    w = rng.standard_normal((1, channels, size, size))
    R = np.round(rng.standard_normal((batch, 1, size, size)), 1)     # rounding makes ties
    curve = pixel_flipping(linear_model(w[0]), x, R, 0, order=order)
    scale = np.abs(w * x).sum() + 1e-300
    np.testing.assert_allclose(curve, linear_closed_form(w, x, R, order), rtol=0,
                               atol=1e-12 * scale)
    # and with Gradient x Input as relevance MoRF falls fastest: AOPC MoRF >= AOPC LeRF
    gxi = w * x
    morf = aopc(pixel_flipping(linear_model(w[0]), x, gxi, 0, order="morf"))
    lerf = aopc(pixel_flipping(linear_model(w[0]), x, gxi, 0, order="lerf"))
    assert np.all(morf >= lerf - 1e-12 * (np.abs(gxi).sum() + 1e-300))


def test_batch_equals_one_by_one_and_chunking_changes_nothing(monkeypatch):
    rng = np.random.default_rng(1)
    x = rng.random((3, 2, 4, 4))
    R = rng.standard_normal(x.shape)
    net = lrp.Sequential([lrp.Flatten(), lrp.Dense(rng.standard_normal((32, 3)), np.zeros(3)),
                          lrp.ReLU(), lrp.Dense(rng.standard_normal((3, 4)), np.zeros(4))])
    target = np.array([0, 3, 1])
    batched = pixel_flipping(net, x, R, target, patch=2, fill="mean")
    for b in range(3):
        one = pixel_flipping(net, x[b:b + 1], R[b:b + 1], int(target[b]), patch=2, fill="mean")
        np.testing.assert_allclose(batched[b:b + 1], one, rtol=1e-13, atol=0)
    monkeypatch.setattr(perturbation, "FLIP_CHUNK_ELEMENTS", 1)      # one step per model call
    np.testing.assert_allclose(pixel_flipping(net, x, R, target, patch=2, fill="mean"), batched,
                               rtol=1e-13, atol=0)
    # target=None follows the argmax at step 0
    top = np.argmax(net.forward(x), axis=1)
    np.testing.assert_array_equal(pixel_flipping(net, x, R, None, patch=2),
                                  pixel_flipping(net, x, R, top, patch=2))


@pytest.mark.parametrize("kwargs, message", [
    ({"patch": 3}, "patch"),
    ({"patch": 0}, "patch"),
    ({"steps": 0}, "steps"),
    ({"steps": 2.0}, "steps"),
    ({"order": "random"}, "order"),
    ({"fill": "blur"}, "fill"),
    ({"target": 5}, "target"),
    ({"target": [0, 0]}, "target"),
])
def test_flipping_errors(kwargs, message):
    args = {"target": 0, **kwargs}
    with pytest.raises((ValueError, TypeError), match=message):
        pixel_flipping(SUM, X, X, **args)


def test_flipping_shape_and_value_errors():
    with pytest.raises(ValueError, match="relevance must have shape"):
        pixel_flipping(SUM, X, np.ones((1, 2, 2, 2)), 0)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        pixel_flipping(SUM, X[0], X[0], 0)
    with pytest.raises(ValueError, match="NaN"):
        pixel_flipping(SUM, X, np.full_like(X, np.nan), 0)
    with pytest.raises(TypeError, match="callable"):
        pixel_flipping(3, X, X, 0)
    with pytest.raises(ValueError, match="logits"):
        pixel_flipping(lambda images: np.zeros(len(images)), X, X, 0)


# -- relevance mass and rank accuracy ------------------------------------------------------


MASK = np.array([[[True, True, False], [False, False, False]]])     # (1, 2, 3)


def test_mass_accuracy_by_hand():
    inside = np.array([[[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]]])
    assert relevance_mass_accuracy(inside, MASK) == pytest.approx([1.0])
    # positive 3 inside, 1 outside; negative relevance is ignored: 3 / 4
    mixed = np.array([[[2.0, 1.0, -5.0], [1.0, 0.0, -1.0]]])
    assert relevance_mass_accuracy(mixed, MASK) == pytest.approx([0.75], abs=1e-15)
    # channels are summed before the positive part: +4 and -4 cancel at (0, 0)
    channels = np.stack([mixed, mixed], axis=1)
    channels[0, 0, 0, 0], channels[0, 1, 0, 0] = 4.0, -4.0
    assert relevance_mass_accuracy(channels, MASK) == pytest.approx([0.5], abs=1e-15)
    # no positive relevance at all: 0
    assert relevance_mass_accuracy(-np.abs(mixed), MASK) == pytest.approx([0.0])


def test_rank_accuracy_by_hand():
    # K = 2; a perfect ranking puts both mask pixels on top
    perfect = np.array([[[5.0, 4.0, 1.0], [2.0, 0.0, 0.0]]])
    assert relevance_rank_accuracy(perfect, MASK) == pytest.approx([1.0])
    # top-2 = (1, 0) and (0, 1): one of two in the mask
    half = np.array([[[0.0, 4.0, 1.0], [5.0, 0.0, 0.0]]])
    assert relevance_rank_accuracy(half, MASK) == pytest.approx([0.5])
    # no positive relevance: ties broken by reading order, top-2 = (0, 0), (0, 1)
    assert relevance_rank_accuracy(-np.ones((1, 2, 3)), MASK) == pytest.approx([1.0])
    # reading order with the mask at the end: 0
    late = np.array([[[False, False, False], [False, True, True]]])
    assert relevance_rank_accuracy(np.zeros((1, 2, 3)), late) == pytest.approx([0.0])
    # a tie at the border of the top-K: (0, 2) and (1, 0) both 3, (0, 2) comes first
    tie = np.array([[[9.0, 0.0, 3.0], [3.0, 0.0, 0.0]]])
    mask = np.array([[[False, False, False], [True, True, False]]])
    assert relevance_rank_accuracy(tie, mask) == pytest.approx([0.0])


def test_metrics_are_per_sample_and_accept_every_mask_shape():
    rng = np.random.default_rng(2)
    R = rng.standard_normal((4, 3, 5, 5))
    masks = rng.random((4, 5, 5)) < 0.4
    masks[:, 0, 0] = True
    for metric in (relevance_mass_accuracy, relevance_rank_accuracy):
        batched = metric(R, masks)
        one_by_one = np.concatenate([metric(R[b:b + 1], masks[b:b + 1]) for b in range(4)])
        np.testing.assert_array_equal(batched, one_by_one)
        np.testing.assert_array_equal(metric(R, masks[:, None]), batched)
        np.testing.assert_array_equal(metric(R, np.repeat(masks[:, None], 3, axis=1)), batched)
        np.testing.assert_array_equal(metric(R, masks.astype(float)), batched)
        np.testing.assert_array_equal(metric(R.sum(axis=1), masks), batched)
        assert np.all((batched >= 0) & (batched <= 1))


def test_metric_errors():
    R = np.ones((1, 2, 3))
    with pytest.raises(ValueError, match="empty"):
        relevance_rank_accuracy(R, np.zeros((1, 2, 3), bool))
    with pytest.raises(ValueError, match="0 and 1"):
        relevance_mass_accuracy(R, np.full((1, 2, 3), 0.5))
    with pytest.raises(ValueError, match="mask must have shape"):
        relevance_mass_accuracy(R, np.ones((1, 3, 2), bool))
    with pytest.raises(ValueError, match="every channel"):
        varying = np.ones((1, 2, 2, 3), bool)
        varying[0, 1, 0, 0] = False
        relevance_mass_accuracy(np.ones((1, 2, 2, 3)), varying)
    with pytest.raises(ValueError, match="NaN"):
        relevance_mass_accuracy(np.full((1, 2, 3), np.inf), MASK)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        relevance_rank_accuracy(np.ones((6,)), MASK)


# -- tokens: flipping by a blank token, ground truth on (B, T) ------------------------------


def bag_of_words(values):
    """f(ids) = sum_t values[ids_t]: an Embedding (dim 1) whose vectors are summed."""
    return lrp.Sequential([lrp.Embedding(np.asarray(values, float)[:, None]), lrp.Flatten(),
                           lrp.Dense(np.ones((3, 1)))])


def test_token_flipping_by_hand():
    # vocabulary values (0, 1, 2, 5); token 0 is the blank (value 0). ids (3, 1, 2): f = 8.
    # MoRF by R = (5, 1, 2) removes 3, 2, 1: 8, 3, 1, 0; LeRF removes 1, 2, 3: 8, 7, 5, 0
    net, ids, R = bag_of_words([0, 1, 2, 5]), np.array([[3, 1, 2]]), np.array([[5.0, 1, 2]])
    np.testing.assert_array_equal(token_flipping(net, ids, R, fill=0, target=0),
                                  [[8, 3, 1, 0]])
    np.testing.assert_array_equal(token_flipping(net, ids, R, fill=0, target=0,
                                                                order="lerf"), [[8, 7, 5, 0]])
    # steps: the same rounding as pixel flipping (L = 2: 0, 1.5 -> 2, 3 tokens): 8, 1, 0
    np.testing.assert_array_equal(token_flipping(net, ids, R, fill=0, target=0,
                                                                steps=2), [[8, 1, 0]])
    # ties broken by position: a zero map removes the tokens left to right: 8, 3, 2, 0
    np.testing.assert_array_equal(
        token_flipping(net, ids, np.zeros((1, 3)), fill=0, target=0),
        [[8, 3, 2, 0]])


def test_token_flipping_errors():
    net, ids = bag_of_words([0, 1, 2, 5]), np.array([[3, 1, 2]])
    with pytest.raises(ValueError, match=r"relevance must have shape \(1, 3\)"):
        token_flipping(net, ids, np.ones((1, 4)), fill=0)
    with pytest.raises(TypeError, match="ids must be integer token ids"):
        token_flipping(net, ids.astype(float), np.ones((1, 3)), fill=0)
    with pytest.raises(TypeError, match="fill must be a token id"):
        token_flipping(net, ids, np.ones((1, 3)), fill=0.5)


def test_ground_truth_measures_take_token_relevance():
    # R = (3, -1, 1, 0), deciding tokens 0 and 1: positive mass 3 of 4; the top K = 2
    # tokens by max(0, R) are 0 and 2 (ties in reading order): rank accuracy 1/2
    R, mask = np.array([[3.0, -1, 1, 0]]), np.array([[True, True, False, False]])
    np.testing.assert_allclose(relevance_mass_accuracy(R, mask), [0.75], rtol=1e-15)
    np.testing.assert_allclose(relevance_rank_accuracy(R, mask), [0.5], rtol=1e-15)
