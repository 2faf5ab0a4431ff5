"""Ground-truth measures: relevance mass and rank accuracy (Arras et al. 2022).

With a mask of the pixels that decide the class, :func:`relevance_mass_accuracy`
is the share of positive relevance inside the mask and
:func:`relevance_rank_accuracy` the share of the mask among the ``K = |mask|``
most relevant pixels. Relevance is pooled over channels by summation and its
positive part ``max(0, sum_c R_c)`` is used. Token relevance ``(B, T)`` with a
mask of the deciding tokens ``(B, T)`` is scored the same way (a row of ``T``
"pixels", one channel).
"""

from __future__ import annotations

import numpy as np

from .perturbation import float_array

Array = np.ndarray


def relevance_mass_accuracy(relevance: Array, mask: Array) -> Array:
    """The share of positive relevance inside the ground-truth mask (Arras et al. 2022).

    With ``P = max(0, sum_c R_c)`` the channel-pooled positive relevance::

        mass accuracy = sum_{p in mask} P_p / sum_p P_p        (0 when sum_p P_p = 0)

    Parameters
    ----------
    relevance : ndarray, shape (B, C, H, W), (B, H, W) or (B, T) (tokens)
    mask : ndarray
        Ground truth, ``(B, H, W)``, ``(B, 1, H, W)`` or the relevance's shape
        (then the same in every channel); ``(B, T)`` for tokens; bool, or
        numbers that are 0 or 1.

    Returns
    -------
    ndarray, shape (B,)
        In ``[0, 1]``.
    """
    relevance, mask = _as_image(relevance, mask)
    P, inside = _positive_map(relevance), _pixel_mask(mask, np.shape(relevance))
    total = P.sum(axis=(1, 2))
    within = np.where(inside, P, 0).sum(axis=(1, 2))
    return np.where(total > 0, within / np.where(total > 0, total, 1), 0.0)


def relevance_rank_accuracy(relevance: Array, mask: Array) -> Array:
    """The share of the mask among the ``K = |mask|`` most relevant pixels (Arras et al. 2022).

    Pixels are ranked by ``P = max(0, sum_c R_c)``, decreasing, ties broken by
    the lower row-major index; with ``T_K`` the first ``K`` pixels of that
    ranking::

        rank accuracy = |T_K ∩ mask| / K,          K = |mask|

    Parameters
    ----------
    relevance : ndarray, shape (B, C, H, W), (B, H, W) or (B, T) (tokens)
    mask : ndarray
        As in :func:`relevance_mass_accuracy`; every sample's mask must hold at
        least one pixel (``K = 0`` has no rank accuracy).

    Returns
    -------
    ndarray, shape (B,)
        In ``[0, 1]``.
    """
    relevance, mask = _as_image(relevance, mask)
    P, inside = _positive_map(relevance), _pixel_mask(mask, np.shape(relevance))
    batch = P.shape[0]
    inside = inside.reshape(batch, -1)
    K = inside.sum(axis=1)
    if np.any(K == 0):
        raise ValueError("relevance_rank_accuracy: the mask of sample(s) "
                         f"{np.flatnonzero(K == 0).tolist()} is empty; rank accuracy needs "
                         "K = |mask| >= 1")
    ranking = np.argsort(-P.reshape(batch, -1), axis=1, kind="stable")
    top_K = np.arange(ranking.shape[1])[None, :] < K[:, None]
    hits = np.take_along_axis(inside, ranking, axis=1) & top_K
    return hits.sum(axis=1) / K


def _as_image(relevance: Array, mask: Array) -> tuple[Array, Array]:
    """Token relevance ``(B, T)`` and its mask as one-row images ``(B, 1, T)``; else as given."""
    if np.ndim(relevance) == 2:
        return np.asarray(relevance)[:, None, :], np.asarray(mask)[:, None, :]
    return relevance, mask


def _positive_map(relevance: Array) -> Array:
    """``max(0, sum_c R_c)``, shape ``(B, H, W)``."""
    R = float_array(relevance, "relevance")
    if R.ndim not in (3, 4):
        raise ValueError(f"relevance must be (B, C, H, W) or (B, H, W), got shape {R.shape}")
    return np.maximum(R if R.ndim == 3 else R.sum(axis=1), 0)


def _pixel_mask(mask: Array, shape: tuple[int, ...]) -> Array:
    """A ``(B, H, W)`` bool mask from ``(B, H, W)``, ``(B, 1, H, W)`` or the relevance's shape."""
    m = np.asarray(mask)
    if m.dtype != bool:
        numeric = np.issubdtype(m.dtype, np.number) and not np.iscomplexobj(m)
        if not numeric or np.any((m != 0) & (m != 1)):
            raise ValueError("mask must be bool or hold only the numbers 0 and 1")
        m = m == 1
    batch, height, width = shape[0], shape[-2], shape[-1]
    allowed = {(batch, height, width), (batch, 1, height, width), tuple(shape)}
    if m.shape not in allowed:
        raise ValueError(f"mask must have shape {(batch, height, width)}, "
                         f"{(batch, 1, height, width)} or the relevance's {tuple(shape)}, "
                         f"got {m.shape}")
    if m.ndim == 3:
        return m
    if np.any(m != m[:, :1]):
        raise ValueError("a mask with a channel axis must be the same in every channel")
    return m[:, 0]
