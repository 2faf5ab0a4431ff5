"""CRP conditions for ``Sequential.explain(..., conditions={layer: channels})``.

Concept Relevance Propagation (Achtibat et al. 2023, "From attribution maps to
human-understandable explanations through Concept Relevance Propagation",
Nat. Mach. Intell. 5) explains one concept at a time: the relevance arriving
at the output of a layer is kept only in the chosen channels (axis 1) and the
backward pass goes on from there, giving the input heatmap of those channels::

    R_j(x | theta) = R_j * 1[channel(j) in theta]

Because every LRP rule is linear in the relevance it redistributes (its
denominators come from the forward pass), the heatmaps of the channels of a
layer add up to the unconditional heatmap.

This module checks the conditions and turns them into boolean channel masks.
The layer is a top-level index (negative counts from the end, as in
``net[k]``) or a path (``"3"``, ``"4.body.0"``). Channels are an int, a
non-empty sequence of distinct ints, or a boolean array of shape ``(B, C)``
(one mask per sample). Paths and the form of the channels are checked before
the forward pass; channel indices need the layer's output shape and are
checked after it, before any relevance is propagated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .checks import is_int
from .layers.base import Layer
from .layers.base import where as layer_where
from .layers.calls import Trace

Array = np.ndarray


def layer_path(network: Layer, layer: int | str) -> str:
    """The path of ``layer``, given as a top-level index or a path, in ``network``.

    Raises
    ------
    ValueError
        If no such layer exists (the message lists the paths).
    """
    top = [name for name, _ in network.children()]
    if is_int(layer):
        if not -len(top) <= layer < len(top):
            raise ValueError(f"conditions: layer index {layer} is out of range for a network "
                             f"of {len(top)} top-level layers")
        return top[int(layer)]
    paths = [path for path, _ in network.named_layers()]
    if not isinstance(layer, str) or layer not in paths:
        raise ValueError(f"conditions: no layer {layer!r}; give a top-level index or one of "
                         f"the paths {paths}")
    return layer


def parse_conditions(network: Layer, conditions: Any) -> dict[str, Sequence[int] | Array]:
    """``{path: channels}`` with valid paths and channel forms (before the forward pass)."""
    if not isinstance(conditions, dict):
        raise TypeError(f"conditions must be a dict {{layer: channels}}, got {conditions!r}")
    parsed: dict[str, Sequence[int] | Array] = {}
    for layer, channels in conditions.items():
        path = layer_path(network, layer)
        if path in parsed:
            raise ValueError(f"conditions: layer '{path}' is named twice")
        parsed[path] = _channel_form(path, channels)
    return parsed


def condition_masks(network: Layer, parsed: dict[str, Sequence[int] | Array],
                    batch: int, trace: Trace) -> dict[str, Array]:
    """Boolean masks ``(B or 1, C)`` per path; needs the layers' output shapes in ``trace``
    (the call's, after its forward)."""
    layers = dict(network.named_layers())
    masks = {}
    for path, channels in parsed.items():
        shape = trace[path].get("output_shape") if path in trace else None
        where = layer_where(path, layers[path])
        if shape is None or len(shape) < 2:
            raise ValueError(f"conditions: {where} has output shape {shape}; a condition "
                             "needs a channel axis (axis 1)")
        n = shape[1]
        if isinstance(channels, np.ndarray):
            if channels.shape != (batch, n):
                raise ValueError(f"conditions: the mask for {where} must have shape "
                                 f"{(batch, n)} (batch, channels), got {channels.shape}")
            masks[path] = channels
            continue
        bad = [c for c in channels if c >= n]
        if bad:
            raise ValueError(f"conditions: {where} has {n} channels (axis 1 of its output "
                             f"{shape}); channel(s) {bad} do not exist")
        mask = np.zeros((1, n), dtype=bool)
        mask[0, list(channels)] = True
        masks[path] = mask
    return masks


def _channel_form(path: str, channels: Any) -> Sequence[int] | Array:
    """An int or a sequence of distinct ints >= 0 as a tuple; a 2-D bool array as is."""
    if isinstance(channels, np.ndarray) and channels.dtype == bool:
        if channels.ndim != 2:
            raise ValueError(f"conditions: a boolean mask for layer '{path}' must be "
                             f"(batch, channels), got shape {channels.shape}")
        return channels
    values = np.atleast_1d(np.asarray(channels, dtype=object))
    if values.ndim != 1 or not all(map(is_int, values)):
        raise TypeError(f"conditions: channels for layer '{path}' must be an int, a sequence "
                        f"of ints or a (batch, channels) boolean array, got {channels!r}")
    ints = tuple(int(c) for c in values)
    if not ints:
        raise ValueError(f"conditions: no channels given for layer '{path}'")
    if min(ints) < 0:
        raise ValueError(f"conditions: channels for layer '{path}' must be >= 0, got {ints}")
    if len(set(ints)) != len(ints):
        raise ValueError(f"conditions: channels for layer '{path}' repeat: {ints}")
    return ints
