"""Perturbation measures: pixel flipping, token flipping and AOPC (Samek et al. 2017).

Remove the input regions an explanation calls most relevant first ("MoRF")
and watch the target logit fall. :func:`pixel_flipping` returns the curve
``f(x_0), f(x_1), ..., f(x_L)``; :func:`aopc` its area,
``AOPC = 1/(L+1) sum_{k=0..L} (f(x_0) - f(x_k))``. A steeper fall (a larger
MoRF AOPC) means the explanation found what the model uses. The conventions
(pooling, ranking, rounding of the step sizes) are in ``lrp_ref.evaluation``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..checks import float_dtype, is_int
from ..network import select_targets

Array = np.ndarray

ORDERS = ("morf", "lerf")
FILLS = ("zeros", "mean", "noise")

#: :func:`pixel_flipping` evaluates the model on at most this many input
#: elements per call (several flipping steps stacked into one batch).
FLIP_CHUNK_ELEMENTS = 2**18






def pixel_flipping(net: Any, x: Array, relevance: Array,
                   target: int | Sequence[int] | Array | None = None,
                   order: str = "morf", patch: int = 1, steps: int | None = None,
                   fill: str = "zeros", seed: int | None = None) -> Array:
    """The target logit while the input is destroyed patch by patch (Samek et al. 2017).

    The image is cut into ``n = (H/patch) (W/patch)`` non-overlapping patches of
    ``patch x patch`` pixels. Each patch's score is its relevance summed over
    channels and pixels, ``s_p = sum_{c, (y, x) in p} R[c, y, x]``. Patches are
    ranked by decreasing score (``order="morf"``, most relevant first) or
    increasing score (``"lerf"``, least relevant first), ties broken by the lower
    patch index (row-major). After step ``k`` the ``m_k = floor(k n / L + 1/2)``
    highest-ranked patches are replaced in all channels by the fill values, and
    the model gives ``f_target(x_k)``.

    Parameters
    ----------
    net : Layer or callable
        A network with ``forward`` (e.g. a :class:`~lrp_ref.Sequential`) or any
        callable mapping a batch ``(B, C, H, W)`` to logits ``(B, classes)``.
    x : ndarray, shape (B, C, H, W)
        The unperturbed inputs.
    relevance : ndarray
        The explanation: shaped like ``x``, or ``(B, 1, H, W)``, or ``(B, H, W)``.
    target : int, sequence of int or None
        The class whose logit is tracked, one for all samples or one per
        sample; None takes each sample's argmax at step 0 (and keeps it).
    order : {"morf", "lerf"}
        Most or least relevant first.
    patch : int
        Patch side in pixels; must divide ``H`` and ``W``.
    steps : int or None
        ``L``, the number of flipping steps; None flips one patch per step
        (``L = n``). Any ``L >= 1`` is allowed (for ``L > n`` some steps repeat
        a count).
    fill : {"zeros", "mean", "noise"}
        The replacement value: 0; the sample's per-channel mean over the
        image; or noise drawn once per call, uniform on
        ``[min_c, max_c]`` of the sample's channel ``c`` (Samek et al. 2017
        replace regions by uniform random values). A pixel keeps its
        replacement value at every later step, so each step only adds patches.
    seed : int or None
        Seed of ``np.random.default_rng`` for ``fill="noise"`` (unused otherwise).

    Returns
    -------
    ndarray, shape (B, L + 1)
        ``curve[b, k] = f_target(x_k)[b]``; column 0 is the unperturbed input.
    """
    forward = _model(net, "pixel_flipping")
    x = float_array(x, "x")
    if x.ndim != 4:
        raise ValueError(f"pixel_flipping: x must be (B, C, H, W), got shape {x.shape}")
    _check_choice("order", order, ORDERS)
    _check_choice("fill", fill, FILLS)
    batch, channels, height, width = x.shape
    R = _channel_sum(relevance, x.shape)
    if not (is_int(patch) and patch >= 1 and height % patch == 0 and width % patch == 0):
        raise ValueError(f"pixel_flipping: patch must be an int >= 1 dividing H={height} and "
                         f"W={width}, got {patch!r}")
    rows, cols = height // patch, width // patch
    filler = _fill_values(x, fill, seed)
    # s_p: relevance summed over the channels and pixels of each patch, (B, n)
    score = R.reshape(batch, rows, patch, cols, patch).sum(axis=(2, 4)).reshape(batch, -1)

    def perturbed(removed: Array) -> Array:                # (K, B, n) -> K B images
        pixels = np.repeat(np.repeat(removed.reshape(len(removed), batch, 1, rows, cols),
                                     patch, axis=3), patch, axis=4)            # (K, B, 1, H, W)
        return np.where(pixels, filler[None], x[None]).reshape(-1, channels, height, width)

    return flipping_curve(forward, x, score, target, order, steps, perturbed, "pixel_flipping")


def token_flipping(net: Any, ids: Array, relevance: Array, fill: int,
                   target: int | Sequence[int] | Array | None = None, order: str = "morf",
                   steps: int | None = None) -> Array:
    """The target logit while tokens are replaced by ``fill``, one by one (pixel flipping of text).

    The tokens of each sentence are ranked by their relevance ``R_t``
    (decreasing for ``"morf"``, increasing for ``"lerf"``, ties by position) and
    after step ``k`` the ``m_k = floor(k T / L + 1/2)`` highest-ranked are replaced
    by the token id ``fill``, as :func:`pixel_flipping` replaces patches. With a
    ``fill`` token whose embedding is zero this deletes the word's vector and
    keeps its position (Arras et al. 2017, "Explaining recurrent neural network
    predictions in sentiment analysis", WASSA@EMNLP; the shipped sentiment
    transformer's ``"<blank>"``).

    Parameters
    ----------
    net : Layer or callable
        Maps token ids ``(B, T)`` to logits ``(B, classes)``.
    ids : ndarray of int, shape (B, T)
        Sentences of one length (flip sentences of other lengths in other calls).
    relevance : ndarray, shape (B, T)
        One score per token.
    fill : int
        The token id put in place of a removed token.
    target, order, steps
        As in :func:`pixel_flipping` (``L = T`` when ``steps`` is None).

    Returns
    -------
    ndarray, shape (B, L + 1)
    """
    forward = _model(net, "token_flipping")
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer) or ids.ndim != 2:
        raise TypeError(f"token_flipping: ids must be integer token ids (B, T), got dtype "
                        f"{ids.dtype} and shape {ids.shape}")
    if not is_int(fill):
        raise TypeError(f"token_flipping: fill must be a token id (an int), got {fill!r}")
    _check_choice("order", order, ORDERS)
    R = float_array(relevance, "relevance")
    if R.shape != ids.shape:
        raise ValueError(f"token_flipping: relevance must have shape {ids.shape} (one score "
                         f"per token), got {R.shape}")

    def perturbed(removed: Array) -> Array:                # (K, B, T) -> K B sentences
        return np.where(removed, fill, ids[None]).reshape(-1, ids.shape[1])

    return flipping_curve(forward, ids, R, target, order, steps, perturbed, "token_flipping")


def flipping_curve(forward: Callable[[Array], Array], x: Array, score: Array, target: Any,
                   order: str, steps: int | None, perturbed: Callable[[Array], Array],
                   name: str) -> Array:
    """The flipping curve of ``x`` for the per-unit scores ``score`` ``(B, n)``.

    Units (patches, tokens) are ranked by ``score`` (stable: ties by index), step
    ``k`` removes the ``floor(k n / L + 1/2)`` first, and ``perturbed(removed)``
    turns the masks ``(K, B, n)`` of ``K`` steps into one batch of ``K B`` inputs.
    """
    batch, n = score.shape
    steps = n if steps is None else steps
    if not (is_int(steps) and steps >= 1):
        raise ValueError(f"{name}: steps must be None or an int >= 1, got {steps!r}")
    ranking = np.argsort(-score if order == "morf" else score, axis=1, kind="stable")
    rank = np.empty_like(ranking)               # rank[b, p]: position of unit p in the ranking
    np.put_along_axis(rank, ranking, np.arange(n)[None, :], axis=1)
    counts = (2 * np.arange(steps + 1) * n + steps) // (2 * steps)   # floor(k n / L + 1/2)

    output = forward(x)
    target = select_targets(output, target)
    samples = np.arange(batch)
    curve = np.empty((batch, steps + 1), dtype=np.result_type(output.dtype, np.float64))
    curve[:, 0] = output[samples, target]
    chunk = max(1, FLIP_CHUNK_ELEMENTS // x.size)
    for start in range(1, steps + 1, chunk):
        ks = np.arange(start, min(start + chunk, steps + 1))
        removed = rank[None, :, :] < counts[ks][:, None, None]                  # (K, B, n)
        logits = forward(perturbed(removed)).reshape(len(ks), batch, -1)
        curve[:, ks] = logits[:, samples, target].T
    return curve


def aopc(curve: Array) -> Array:
    """Area over the MoRF perturbation curve (Samek et al. 2017), per sample.

    ``AOPC = 1/(L+1) sum_{k=0..L} (f(x_0) - f(x_k))``: the mean drop of the
    target logit over the ``L + 1`` points of the curve (the ``k = 0`` term is
    0). Samek et al. average this over a data set; here it is returned per
    sample so that confidence intervals can be taken over images.

    Parameters
    ----------
    curve : ndarray, shape (..., L + 1)
        A :func:`pixel_flipping` curve (the last axis runs over the steps).

    Returns
    -------
    ndarray, shape (...)
    """
    curve = float_array(curve, "curve")
    if curve.ndim < 1 or curve.shape[-1] < 1:
        raise ValueError(f"aopc: curve must have at least one step on its last axis, "
                         f"got shape {curve.shape}")
    return (curve[..., :1] - curve).mean(axis=-1)


# -- helpers --------------------------------------------------------------------------------


def _model(net: Any, name: str) -> Callable[[Array], Array]:
    """``net.forward`` for a layer, ``net`` itself for any other callable."""
    forward = getattr(net, "forward", net)
    if not callable(forward):
        raise TypeError(f"{name}: net must have a forward method or be callable, "
                        f"got {net!r}")

    def checked(inputs: Array) -> Array:
        output = np.asarray(forward(inputs))
        if output.ndim != 2 or output.shape[0] != inputs.shape[0]:
            raise ValueError(f"{name}: the model must map {inputs.shape[0]} inputs to "
                             f"logits (B, classes), got shape {output.shape}")
        if not np.all(np.isfinite(output)):
            raise ValueError(f"{name}: the model returned NaN or inf")
        return output

    return checked


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def float_array(x: Any, name: str) -> Array:
    """``x`` as a finite float array (integers and bools are converted to float64)."""
    array = np.asarray(x)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) or np.iscomplexobj(array):
        raise TypeError(f"{name} must be a real numeric array, got dtype {array.dtype}")
    array = array.astype(float_dtype(array), copy=False)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf")
    return array


def _channel_sum(relevance: Array, shape: tuple[int, ...]) -> Array:
    """``sum_c R_c`` of a relevance shaped ``(B, C, H, W)``, ``(B, 1, H, W)`` or ``(B, H, W)``."""
    R = float_array(relevance, "relevance")
    batch, channels, height, width = shape
    allowed = {(batch, channels, height, width), (batch, 1, height, width), (batch, height, width)}
    if R.shape not in allowed:
        raise ValueError(f"relevance must have shape {shape}, {(batch, 1, height, width)} or "
                         f"{(batch, height, width)} for inputs of shape {shape}, got {R.shape}")
    return R if R.ndim == 3 else R.sum(axis=1)


def _fill_values(x: Array, fill: str, seed: int | None) -> Array:
    """The replacement image of every sample, broadcastable to ``x``."""
    if fill == "zeros":
        return np.zeros((1, 1, 1, 1), dtype=x.dtype)
    if fill == "mean":
        return x.mean(axis=(2, 3), keepdims=True)
    low, high = x.min(axis=(2, 3), keepdims=True), x.max(axis=(2, 3), keepdims=True)
    return (low + (high - low) * np.random.default_rng(seed).random(x.shape)).astype(x.dtype)
