"""Build ``lrp_ref/zoo/data/digits.npz`` from scikit-learn's copy of the UCI digits.

Run once, in a throwaway environment that has scikit-learn (it is *not* a dependency of
``lrp_ref``)::

    python -m venv /tmp/skvenv && /tmp/skvenv/bin/pip install scikit-learn
    /tmp/skvenv/bin/python scripts/build_digits.py

scikit-learn ships the 1,797-image test part (``optdigits.tes``) of the UCI "Optical
Recognition of Handwritten Digits" data set (E. Alpaydin and C. Kaynak, 1998; CC BY 4.0)
inside its wheel, so nothing is downloaded. The output holds

* ``images``    -- uint8 ``(1797, 8, 8)``, pixel counts 0..16, in scikit-learn's order;
* ``labels``    -- uint8 ``(1797,)``, digits 0..9;
* ``train_idx`` / ``test_idx`` -- uint16, sorted, disjoint indices of a stratified split
  (1,347 / 450) drawn with ``np.random.default_rng(SPLIT_SEED)``.

The split is computed with NumPy only, so it does not depend on the scikit-learn version.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

SPLIT_SEED = 0
N_TEST = 450
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "lrp_ref" / "zoo" / "data" / "digits.npz"


def stratified_split(labels: np.ndarray, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices so that every class is represented in proportion to its size.

    Per-class test counts are the proportional quotas rounded by the largest-remainder
    method (ties go to the lower class), so they sum to exactly ``n_test``.

    Parameters
    ----------
    labels : np.ndarray
        Integer class labels, shape ``(N,)``.
    n_test : int
        Total number of test indices.
    seed : int
        Seed for ``np.random.default_rng``.

    Returns
    -------
    train_idx, test_idx : np.ndarray
        Sorted, disjoint index arrays covering ``range(N)``.
    """
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n_test / counts.sum()
    n_class_test = np.floor(quota).astype(int)
    shortfall = n_test - n_class_test.sum()
    n_class_test[np.argsort(-(quota - n_class_test), kind="stable")[:shortfall]] += 1
    test = [
        rng.permutation(np.flatnonzero(labels == c))[:k]
        for c, k in zip(classes, n_class_test, strict=True)
    ]
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(labels.size), test_idx)
    return train_idx, test_idx


def main() -> None:
    """Write the compressed digits archive (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz path")
    out = parser.parse_args().out

    digits = load_digits()
    images = digits.images
    if not (np.array_equal(images, np.round(images)) and images.min() >= 0 and images.max() <= 16):
        raise ValueError("expected integer pixel counts in 0..16")
    labels = digits.target.astype(np.uint8)
    train_idx, test_idx = stratified_split(labels, N_TEST, SPLIT_SEED)

    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out,
        images=images.astype(np.uint8),
        labels=labels,
        train_idx=train_idx.astype(np.uint16),
        test_idx=test_idx.astype(np.uint16),
    )
    print(
        f"wrote {out} ({out.stat().st_size} bytes): "
        f"{train_idx.size} train / {test_idx.size} test, split seed {SPLIT_SEED}"
    )


if __name__ == "__main__":
    main()
