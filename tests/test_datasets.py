"""Tests for lrp_ref.datasets."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrp_ref.zoo.datasets import (
    CREDIT_FEATURES,
    SHAPE_CLASSES,
    load_digits,
    make_credit,
    make_shapes,
)

# Checksums of scikit-learn 1.9.1's load_digits(): images as uint8 0..16 (1797, 8, 8) and
# targets as uint8, both C-contiguous.
DIGITS_IMAGES_SHA256 = "8f26b2bd9d135c256808f68f14fdabddde6d9c7f869ae419704b051f0f14b3b3"
DIGITS_LABELS_SHA256 = "8ba4f891220f5e4c9c819638d1602d74b83618f167043c6da52a2a247841ddf0"
DIGITS_CLASS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]

# Intensity bounds documented by make_shapes.
OBJECT_MIN = 0.6
BACKGROUND_MAX = 0.15
FOREGROUND_THRESHOLD = 0.25


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def dilate(masks: np.ndarray) -> np.ndarray:
    """One-pixel 8-neighbourhood dilation of boolean (n, H, W) masks."""
    h, w = masks.shape[1:]
    padded = np.pad(masks, ((0, 0), (1, 1), (1, 1)))
    shifted = [padded[:, i : i + h, j : j + w] for i in range(3) for j in range(3)]
    return np.logical_or.reduce(shifted)


def components(foreground: np.ndarray) -> np.ndarray:
    """8-connected component ids of boolean (n, H, W) images (-1 on background)."""
    h, w = foreground.shape[1:]
    big = foreground.size
    ids = np.where(foreground, np.arange(big).reshape(foreground.shape), big)
    while True:
        padded = np.pad(ids, ((0, 0), (1, 1), (1, 1)), constant_values=big)
        shifted = [padded[:, i : i + h, j : j + w] for i in range(3) for j in range(3)]
        new = np.where(foreground, np.minimum.reduce(shifted), big)
        if np.array_equal(new, ids):
            return np.where(foreground, ids, -1)
        ids = new


def newton_logistic(X: np.ndarray, y: np.ndarray, iters: int = 25) -> np.ndarray:
    """Maximum-likelihood logistic regression with intercept; returns [b0, b1, ...]."""
    A = np.column_stack([np.ones(len(X)), X])
    beta = np.zeros(A.shape[1])
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-A @ beta))
        hessian = A.T @ (A * (p * (1 - p))[:, None])
        beta += np.linalg.solve(hessian, A.T @ (y - p))
    return beta


def classify_mask(mask: np.ndarray) -> int:
    """Recover the class from the mask alone: hollow -> square; widening -> triangle."""
    rows, cols = np.nonzero(mask)
    box = mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    centre = box.shape[0] // 2
    if not box[centre, centre]:
        return SHAPE_CLASSES.index("square")
    if box[0].sum() < box[-1].sum():
        return SHAPE_CLASSES.index("triangle")
    return SHAPE_CLASSES.index("cross")


def sorted_rows(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Rows (pixels..., label) sorted lexicographically, to compare data sets as multisets."""
    rows = np.column_stack([images.reshape(len(images), -1), labels])
    return rows[np.lexsort(rows.T[::-1])]


# --------------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("split", "n"), [("train", 1347), ("test", 450), ("all", 1797)])
def test_digits_shapes_dtypes_and_range(split: str, n: int) -> None:
    images, labels = load_digits(split)
    assert images.shape == (n, 1, 8, 8)
    assert images.dtype == np.float64
    assert labels.shape == (n,)
    assert labels.dtype == np.int64
    assert images.min() == 0.0
    assert images.max() == 1.0
    np.testing.assert_array_equal(images * 16, np.round(images * 16))


def test_digits_default_split_is_train() -> None:
    np.testing.assert_array_equal(load_digits()[1], load_digits("train")[1])


def test_digits_content_matches_recorded_checksums() -> None:
    images, labels = load_digits("all")
    raw = np.ascontiguousarray((images[:, 0] * 16).round().astype(np.uint8))
    assert hashlib.sha256(raw.tobytes()).hexdigest() == DIGITS_IMAGES_SHA256
    assert hashlib.sha256(labels.astype(np.uint8).tobytes()).hexdigest() == DIGITS_LABELS_SHA256
    assert np.bincount(labels).tolist() == DIGITS_CLASS_COUNTS


def test_digits_train_and_test_partition_all() -> None:
    all_rows = sorted_rows(*load_digits("all"))
    parts = [load_digits(split) for split in ("train", "test")]
    joined = sorted_rows(
        np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    )
    np.testing.assert_array_equal(joined, all_rows)


def test_digits_split_is_stratified() -> None:
    _, all_labels = load_digits("all")
    _, test_labels = load_digits("test")
    _, train_labels = load_digits("train")
    all_counts = np.bincount(all_labels, minlength=10)
    test_counts = np.bincount(test_labels, minlength=10)
    assert (np.bincount(train_labels, minlength=10) > 0).all()
    assert (test_counts > 0).all()
    np.testing.assert_array_less(np.abs(test_counts - all_counts * 450 / 1797), 1.0)


def test_digits_unknown_split_raises() -> None:
    with pytest.raises(ValueError, match="split"):
        load_digits("validation")  # type: ignore[arg-type]


def test_digits_match_scikit_learn_when_available() -> None:
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    reference = sklearn_datasets.load_digits()
    images, labels = load_digits("all")
    np.testing.assert_array_equal(images[:, 0] * 16, reference.images)
    np.testing.assert_array_equal(labels, reference.target)


# --------------------------------------------------------------------------------------------
# credit
# --------------------------------------------------------------------------------------------


@given(n=st.integers(2, 300), seed=st.integers(0, 2**32 - 1))
def test_credit_shapes_dtypes_and_standardisation(n: int, seed: int) -> None:
    data = make_credit(n, seed)
    n_features = len(data.feature_names)
    assert data.X.shape == data.raw.shape == (n, n_features)
    assert data.X.dtype == data.raw.dtype == np.float64
    assert data.y.shape == (n,)
    assert data.y.dtype == np.int64
    assert set(np.unique(data.y)) <= {0, 1}
    assert data.mean.shape == data.std.shape == data.true_effect.shape == (n_features,)
    assert (data.std > 0).all()
    np.testing.assert_allclose(data.X * data.std + data.mean, data.raw, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(data.raw.mean(axis=0), data.mean, rtol=1e-9, atol=1e-9)


def test_credit_feature_names_and_effects() -> None:
    data = make_credit(100)
    assert data.feature_names == CREDIT_FEATURES
    assert len(data.feature_names) == data.X.shape[1]
    required = {
        "annual_income",
        "loan_amount",
        "years_employed",
        "existing_debt",
        "age",
        "num_late_payments",
        "zip_digit",
    }
    assert required <= set(data.feature_names)
    effect = dict(zip(data.feature_names, data.true_effect, strict=True))
    assert effect["zip_digit"] == 0.0
    assert effect["annual_income"] < 0 < effect["num_late_payments"]
    assert effect["loan_amount"] > 0 and effect["existing_debt"] > 0


def test_credit_standardised_on_large_sample() -> None:
    data = make_credit(5000, seed=1)
    np.testing.assert_allclose(data.X.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(data.X.std(axis=0), 1.0, atol=1e-12)


def test_credit_raw_values_are_plausible() -> None:
    raw = make_credit(5000, seed=2).raw
    col = {name: raw[:, i] for i, name in enumerate(CREDIT_FEATURES)}
    assert (col["annual_income"] > 0).all()
    assert 20_000 < np.median(col["annual_income"]) < 80_000
    assert (col["loan_amount"] > 0).all()
    assert (col["existing_debt"] >= 0).all() and (col["existing_debt"] == 0).any()
    assert col["age"].min() >= 21 and col["age"].max() <= 70
    assert (col["years_employed"] >= 0).all()
    assert (col["years_employed"] <= col["age"] - 18).all()
    for name in ("age", "num_late_payments", "zip_digit"):
        np.testing.assert_array_equal(col[name], np.round(col[name]))
    assert set(np.unique(col["zip_digit"])) == set(range(10))


def test_credit_labels_follow_documented_logistic_rule() -> None:
    data = make_credit(20_000, seed=3)
    beta = newton_logistic(data.X, data.y)
    np.testing.assert_allclose(beta[0], data.intercept, atol=0.15)
    np.testing.assert_allclose(beta[1:], data.true_effect, atol=0.15)
    noise = CREDIT_FEATURES.index("zip_digit")
    assert abs(beta[1 + noise]) < 0.1
    strong = np.abs(data.true_effect) >= 0.5
    correlation = np.array([np.corrcoef(x, data.y)[0, 1] for x in data.X.T])
    np.testing.assert_array_equal(np.sign(correlation[strong]), np.sign(data.true_effect[strong]))


def test_credit_is_deterministic_under_seed() -> None:
    a, b, c = make_credit(500, seed=7), make_credit(500, seed=7), make_credit(500, seed=8)
    for field in ("X", "y", "raw", "mean", "std"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.raw, c.raw)
    assert not np.array_equal(a.y, c.y)


def test_credit_rejects_tiny_n() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        make_credit(1)


# --------------------------------------------------------------------------------------------
# shapes
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes():
    return make_shapes(300, seed=11)


def test_shapes_shapes_and_dtypes(shapes) -> None:
    assert shapes.images.shape == (300, 1, 32, 32)
    assert shapes.images.dtype == np.float64
    assert shapes.labels.shape == (300,)
    assert shapes.labels.dtype == np.int64
    assert shapes.masks.shape == (300, 32, 32)
    assert shapes.masks.dtype == np.bool_
    assert shapes.class_names == ("cross", "square", "triangle")


@given(
    n=st.integers(1, 40),
    size=st.integers(9, 40),
    seed=st.integers(0, 2**32 - 1),
    n_distractors=st.integers(0, 10),
)
def test_shapes_invariants(n: int, size: int, seed: int, n_distractors: int) -> None:
    data = make_shapes(n, size=size, seed=seed, n_distractors=n_distractors)
    images = data.images[:, 0]
    assert images.shape == data.masks.shape == (n, size, size)
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert data.masks.any(axis=(1, 2)).all()
    assert (images[data.masks] >= OBJECT_MIN).all()
    ring = dilate(data.masks) & ~data.masks
    assert (images[ring] <= BACKGROUND_MAX).all()
    counts = np.bincount(data.labels, minlength=3)
    expected = [n // 3 + (k < n % 3) for k in range(3)]
    assert counts.tolist() == expected
    n_components = [np.unique(c[c >= 0]).size for c in components(images > FOREGROUND_THRESHOLD)]
    assert max(n_components) <= 1 + n_distractors


def test_shapes_mask_is_the_only_large_component(shapes) -> None:
    foreground = shapes.images[:, 0] > FOREGROUND_THRESHOLD
    ids = components(foreground)
    for i in range(len(ids)):
        object_ids = np.unique(ids[i][shapes.masks[i]])
        assert object_ids.size == 1
        np.testing.assert_array_equal(ids[i] == object_ids[0], shapes.masks[i])
        others = np.setdiff1d(np.unique(ids[i][ids[i] >= 0]), object_ids)
        assert others.size == 6  # exactly n_distractors, all placed
        for other in others:
            rows, cols = np.nonzero(ids[i] == other)
            assert np.ptp(rows) < 4 and np.ptp(cols) < 4  # smaller than any class shape


def test_shapes_noise_is_mild_and_background_dark(shapes) -> None:
    foreground = dilate(shapes.images[:, 0] > FOREGROUND_THRESHOLD)
    background = shapes.images[:, 0][~foreground]
    assert background.max() <= BACKGROUND_MAX
    assert 0.0 < background.mean() < 0.05


def test_shapes_class_is_decided_by_mask(shapes) -> None:
    predicted = np.array([classify_mask(m) for m in shapes.masks])
    np.testing.assert_array_equal(predicted, shapes.labels)
    pixel_counts = shapes.masks.sum(axis=(1, 2))
    per_class = [set(pixel_counts[shapes.labels == k].tolist()) for k in range(3)]
    assert all(per_class)
    assert per_class[0].isdisjoint(per_class[1] | per_class[2])
    assert per_class[1].isdisjoint(per_class[2])


def test_shapes_objects_are_7_to_9_pixels_across(shapes) -> None:
    for mask in shapes.masks:
        rows, cols = np.nonzero(mask)
        assert 7 <= np.ptp(rows) + 1 <= 9
        assert np.ptp(rows) == np.ptp(cols)


def test_shapes_positions_vary(shapes) -> None:
    rows, cols = np.nonzero(shapes.masks.any(axis=0))
    assert np.ptp(rows) == 31 and np.ptp(cols) == 31


def test_shapes_is_deterministic_under_seed() -> None:
    a, b, c = make_shapes(60, seed=5), make_shapes(60, seed=5), make_shapes(60, seed=6)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert not np.array_equal(a.images, c.images)
    assert not np.array_equal(a.masks, c.masks)


def test_shapes_without_distractors_has_only_the_object() -> None:
    data = make_shapes(30, seed=2, n_distractors=0)
    np.testing.assert_array_equal(data.images[:, 0] > FOREGROUND_THRESHOLD, data.masks)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n": 0}, "n must"), ({"n": 3, "size": 8}, "size"), ({"n": 3, "n_distractors": -1}, "distr")],
)
def test_shapes_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_shapes(**kwargs)


def test_shapes_is_fast_enough() -> None:
    start = time.perf_counter()
    data = make_shapes(3000, size=32)
    assert data.images.shape == (3000, 1, 32, 32)
    assert time.perf_counter() - start < 10.0
