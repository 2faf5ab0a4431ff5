"""Small, seeded datasets for exercising and testing LRP (NumPy only).

* :func:`load_digits` -- the 8x8 UCI handwritten digits shipped as package data.
* :func:`make_credit` -- synthetic credit-scoring table whose true feature effects are known.
* :func:`make_shapes` -- synthetic images whose class is decided by one object with a known
  pixel mask, hidden among clutter.

Every generator takes a ``seed`` and is bit-for-bit reproducible for a given NumPy version.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Literal

import numpy as np

__all__ = [
    "CREDIT_FEATURES",
    "SHAPE_CLASSES",
    "CreditData",
    "ShapesData",
    "load_digits",
    "make_credit",
    "make_shapes",
]

# --------------------------------------------------------------------------------------------
# Digits
# --------------------------------------------------------------------------------------------

_DIGITS_FILE = "digits.npz"
_DIGITS_MAX = 16


def load_digits(split: Literal["train", "test", "all"] = "train") -> tuple[np.ndarray, np.ndarray]:
    """Load the 8x8 handwritten digits (1,797 images, classes 0-9).

    These are the same images, in the same order, as ``sklearn.datasets.load_digits``: the
    test part (``optdigits.tes``) of the UCI "Optical Recognition of Handwritten Digits" data
    set. Each pixel counts the "on" pixels of a 4x4 block of a 32x32 bitmap, an integer
    0..16; it is returned as ``value / 16``.

    The train/test split is fixed: stratified by class, 1,347 train / 450 test images,
    drawn once with ``np.random.default_rng(0)`` by ``scripts/build_digits.py`` and stored
    as index arrays in ``lrp_ref/zoo/data/digits.npz``, so it never changes.

    Parameters
    ----------
    split : {"train", "test", "all"}
        Which part to return. ``"all"`` gives all 1,797 images in the original order;
        ``"train"`` and ``"test"`` keep that order within each part.

    Returns
    -------
    images : np.ndarray
        float64, shape ``(N, 1, 8, 8)``, values in ``[0, 1]`` (pixel count / 16).
    labels : np.ndarray
        int64, shape ``(N,)``, digits 0..9.

    Raises
    ------
    ValueError
        If ``split`` is not one of the three names.

    Notes
    -----
    Provenance and licence: E. Alpaydin and C. Kaynak (1998), "Optical Recognition of
    Handwritten Digits", UCI Machine Learning Repository,
    https://archive.ics.uci.edu/dataset/80, doi:10.24432/C50P49. Licensed under the
    Creative Commons Attribution 4.0 International licence (CC BY 4.0); redistributed here
    unchanged apart from the storage format, with this attribution.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    resource = files("lrp_ref.zoo") / "data" / _DIGITS_FILE
    with resource.open("rb") as fh, np.load(fh, allow_pickle=False) as archive:
        images = archive["images"]
        labels = archive["labels"]
        if split != "all":
            keep = archive[f"{split}_idx"]
            images, labels = images[keep], labels[keep]
    images = images.astype(np.float64)[:, None, :, :] / _DIGITS_MAX
    return images, labels.astype(np.int64)


# --------------------------------------------------------------------------------------------
# Credit scoring
# --------------------------------------------------------------------------------------------

CREDIT_FEATURES: tuple[str, ...] = (
    "annual_income",
    "loan_amount",
    "years_employed",
    "existing_debt",
    "age",
    "num_late_payments",
    "zip_digit",
)
_CREDIT_EFFECT = np.array([-1.0, 0.9, -0.4, 0.6, -0.3, 1.2, 0.0])
_CREDIT_INTERCEPT = -1.3


@dataclass(frozen=True)
class CreditData:
    """A synthetic credit-scoring table; see :func:`make_credit`.

    Attributes
    ----------
    X : np.ndarray
        float64 ``(n, F)``, standardised features ``(raw - mean) / std``.
    y : np.ndarray
        int64 ``(n,)``, 0 = repaid, 1 = default.
    feature_names : tuple of str
        The ``F`` column names, in column order.
    raw : np.ndarray
        float64 ``(n, F)``, the features in natural units (currency, years, counts).
    mean : np.ndarray
        float64 ``(F,)``, column means of ``raw``.
    std : np.ndarray
        float64 ``(F,)``, column standard deviations of ``raw`` (1 where a column is
        constant).
    true_effect : np.ndarray
        float64 ``(F,)``, coefficient of each standardised feature in the generating logit.
    intercept : float
        Intercept of the generating logit.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    raw: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    true_effect: np.ndarray
    intercept: float


def _credit_raw(n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw plausible applicant records in natural units, columns as ``CREDIT_FEATURES``."""
    age = rng.integers(21, 71, size=n).astype(np.float64)
    years_employed = (age - 18.0) * rng.beta(2.0, 2.5, size=n)
    income = np.exp(rng.normal(np.log(38_000.0) + 0.015 * years_employed, 0.4))
    loan_amount = income * np.exp(rng.normal(np.log(0.35), 0.45, size=n))
    has_debt = rng.random(n) < 0.7
    existing_debt = has_debt * np.exp(rng.normal(np.log(9_000.0), 0.6, size=n))
    late_payments = rng.poisson(0.8, size=n).astype(np.float64)
    zip_digit = rng.integers(0, 10, size=n).astype(np.float64)
    return np.column_stack(
        [income, loan_amount, years_employed, existing_debt, age, late_payments, zip_digit]
    )


def make_credit(n: int, seed: int = 0) -> CreditData:
    r"""Generate a synthetic credit-scoring data set with known feature effects.

    Raw features (natural units) are drawn with ``np.random.default_rng(seed)``:

    ========================  ===========================================================
    ``age``                   integer years, uniform on 21..70
    ``years_employed``        ``(age - 18) * Beta(2, 2.5)``
    ``annual_income``         lognormal, median about 38,000, rising with years employed
    ``loan_amount``           ``annual_income`` times a lognormal ratio (median 0.35)
    ``existing_debt``         0 with probability 0.3, else lognormal (median 9,000)
    ``num_late_payments``     Poisson(0.8)
    ``zip_digit``             uniform on 0..9 -- pure noise, no effect on the label
    ========================  ===========================================================

    Each column is standardised with the sample mean and standard deviation,
    :math:`x_j = (\mathrm{raw}_j - \mu_j) / \sigma_j`, and the label is a Bernoulli draw

    .. math::

        \operatorname{logit} P(y = 1 \mid x) = -1.3
            - 1.0\,x_\mathrm{income} + 0.9\,x_\mathrm{loan}
            - 0.4\,x_\mathrm{employed} + 0.6\,x_\mathrm{debt}
            - 0.3\,x_\mathrm{age} + 1.2\,x_\mathrm{late} + 0\,x_\mathrm{zip}

    so ``true_effect`` (the coefficients above) is exact for the returned ``X``. About 29%
    of applicants default.

    Parameters
    ----------
    n : int
        Number of applicants, at least 2.
    seed : int
        Seed for ``np.random.default_rng``.

    Returns
    -------
    CreditData
        Features, labels and the generating rule.

    Raises
    ------
    ValueError
        If ``n < 2``.
    """
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    rng = np.random.default_rng(seed)
    raw = _credit_raw(n, rng)
    mean = raw.mean(axis=0)
    std = raw.std(axis=0)
    std[std == 0] = 1.0
    X = (raw - mean) / std
    logit = _CREDIT_INTERCEPT + X @ _CREDIT_EFFECT
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    return CreditData(
        X=X,
        y=y,
        feature_names=CREDIT_FEATURES,
        raw=raw,
        mean=mean,
        std=std,
        true_effect=_CREDIT_EFFECT.copy(),
        intercept=_CREDIT_INTERCEPT,
    )


# --------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------

SHAPE_CLASSES: tuple[str, ...] = ("cross", "square", "triangle")
_OBJECT_SIZES = (7, 9)
_OBJECT_LEVEL = (0.75, 1.0)
_DISTRACTOR_LEVEL = (0.45, 1.0)
_DISTRACTOR_MAX_LEN = 4
_NOISE_SIGMA = 0.05
_NOISE_CLIP = 0.15
_PLACEMENT_ROUNDS_PER_DISTRACTOR = 8
# (row step, column step) of a distractor segment: horizontal, vertical, two diagonals.
_DIRECTIONS = np.array([[0, 1], [1, 0], [1, 1], [1, -1]])


@dataclass(frozen=True)
class ShapesData:
    """Synthetic shape images; see :func:`make_shapes`.

    Attributes
    ----------
    images : np.ndarray
        float64 ``(n, 1, size, size)`` in ``[0, 1]``.
    labels : np.ndarray
        int64 ``(n,)``, index into ``class_names``.
    masks : np.ndarray
        bool ``(n, size, size)``, exactly the pixels of the deciding object.
    class_names : tuple of str
        ``("cross", "square", "triangle")``.
    """

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    class_names: tuple[str, ...] = SHAPE_CLASSES


def _shape_template(label: int, s: int) -> np.ndarray:
    """Boolean ``(s, s)`` picture of class ``label`` (odd ``s``).

    A one-pixel plus sign, a one-pixel square outline, or a filled triangle with its apex
    at the top centre and its base on the bottom row.
    """
    r, c = np.mgrid[0:s, 0:s]
    mid = s // 2
    if label == 0:
        return (r == mid) | (c == mid)
    if label == 1:
        return (r == 0) | (r == s - 1) | (c == 0) | (c == s - 1)
    return np.abs(c - mid) <= r * mid / (s - 1)


def _dilate(masks: np.ndarray) -> np.ndarray:
    """Dilate boolean ``(n, H, W)`` masks by one pixel (3x3 neighbourhood)."""
    h, w = masks.shape[1:]
    padded = np.pad(masks, ((0, 0), (1, 1), (1, 1)))
    out = np.zeros_like(masks)
    for dr in range(3):
        for dc in range(3):
            out |= padded[:, dr : dr + h, dc : dc + w]
    return out


def _place_objects(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw one object of class ``labels[i]`` per image, of random size and position.

    Returns
    -------
    np.ndarray
        bool ``(n, size, size)``, the object pixels.
    """
    n = labels.size
    sizes = rng.choice(_OBJECT_SIZES, size=n)
    top = rng.integers(0, size - sizes + 1)
    left = rng.integers(0, size - sizes + 1)
    masks = np.zeros((n, size, size), dtype=bool)
    for label in range(len(SHAPE_CLASSES)):
        for s in _OBJECT_SIZES:
            idx = np.flatnonzero((labels == label) & (sizes == s))
            rows, cols = np.nonzero(_shape_template(label, s))
            masks[idx[:, None], top[idx, None] + rows, left[idx, None] + cols] = True
    return masks


def _random_segments(n: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw one short straight segment (a dot when its length is 1) per image.

    Returns
    -------
    rows, cols : np.ndarray
        int ``(n, _DISTRACTOR_MAX_LEN)`` pixel coordinates inside the image; segments
        shorter than the maximum repeat their last pixel.
    """
    length = rng.integers(1, _DISTRACTOR_MAX_LEN + 1, size=n)
    step = _DIRECTIONS[rng.integers(0, len(_DIRECTIONS), size=n)]
    extent = (length - 1)[:, None] * step
    r0 = rng.integers(0, size - extent[:, 0])
    c0 = rng.integers(np.maximum(0, -extent[:, 1]), size - np.maximum(0, extent[:, 1]))
    j = np.minimum(np.arange(_DISTRACTOR_MAX_LEN), (length - 1)[:, None])
    return r0[:, None] + j * step[:, :1], c0[:, None] + j * step[:, 1:]


def _place_distractors(
    masks: np.ndarray, n_distractors: int, rng: np.random.Generator
) -> np.ndarray:
    """Scatter clutter segments that keep one pixel clear of the object and of each other.

    Segments are at most ``_DISTRACTOR_MAX_LEN`` pixels long and never 8-connected to any
    other foreground pixel, so they cannot combine into a cross, square or triangle. Each
    round proposes one segment per image and accepts it if its pixels are free.

    Returns
    -------
    np.ndarray
        float64 ``(n, size, size)``, distractor intensities (0 where there is none).
    """
    n, size, _ = masks.shape
    blocked = _dilate(masks)
    canvas = np.zeros(masks.shape)
    placed = np.zeros(n, dtype=int)
    every = np.arange(n)[:, None]
    for _ in range(_PLACEMENT_ROUNDS_PER_DISTRACTOR * n_distractors):
        pending = placed < n_distractors
        if not pending.any():
            break
        rows, cols = _random_segments(n, size, rng)
        level = rng.uniform(*_DISTRACTOR_LEVEL, size=n)
        idx = np.flatnonzero(pending & ~blocked[every, rows, cols].any(axis=1))
        canvas[idx[:, None], rows[idx], cols[idx]] = level[idx, None]
        segment = np.zeros((idx.size, size, size), dtype=bool)
        segment[np.arange(idx.size)[:, None], rows[idx], cols[idx]] = True
        blocked[idx] |= _dilate(segment)
        placed[idx] += 1
    return canvas


def make_shapes(n: int, size: int = 32, seed: int = 0, n_distractors: int = 6) -> ShapesData:
    """Generate images whose class is decided by one small object among clutter.

    Each image holds one deciding object -- a one-pixel plus-shaped cross, a hollow
    one-pixel square outline, or a filled triangle, 7 or 9 pixels across -- at a uniformly
    random position, plus ``n_distractors`` clutter segments (dots and straight lines of
    1-4 pixels in any of four directions). Distractors stay out of the object's one-pixel
    neighbourhood and out of each other's, so no distractor touches the object and no group
    of them forms a class shape. The object has a uniform intensity in ``[0.75, 1]``, each
    distractor one in ``[0.45, 1]``, on a black background; Gaussian noise (sigma 0.05,
    clipped to +-0.15) is added and the result clipped to ``[0, 1]``. Hence object pixels
    are >= 0.6, distractor pixels >= 0.3 and background pixels <= 0.15.

    Classes are balanced: each gets ``n // 3`` images and the remaining ``n % 3`` go to
    classes 0, 1 in turn; the order of images is shuffled.

    Parameters
    ----------
    n : int
        Number of images, at least 1.
    size : int
        Image height and width in pixels, at least 9.
    seed : int
        Seed for ``np.random.default_rng``.
    n_distractors : int
        Distractors per image. Fewer are placed only when an image is too crowded to hold
        them (never at the default settings).

    Returns
    -------
    ShapesData
        Images, labels, object masks and class names.

    Raises
    ------
    ValueError
        If ``n < 1``, ``size < 9`` or ``n_distractors < 0``.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if size < max(_OBJECT_SIZES):
        raise ValueError(f"size must be at least {max(_OBJECT_SIZES)}, got {size}")
    if n_distractors < 0:
        raise ValueError(f"n_distractors must be non-negative, got {n_distractors}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(SHAPE_CLASSES))
    masks = _place_objects(labels, size, rng)
    canvas = _place_distractors(masks, n_distractors, rng)
    object_level = rng.uniform(*_OBJECT_LEVEL, size=n)
    canvas = np.where(masks, object_level[:, None, None], canvas)
    noise = np.clip(rng.normal(0.0, _NOISE_SIGMA, size=canvas.shape), -_NOISE_CLIP, _NOISE_CLIP)
    images = np.clip(canvas + noise, 0.0, 1.0)[:, None, :, :]
    return ShapesData(images=images, labels=labels.astype(np.int64), masks=masks)
