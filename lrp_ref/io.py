"""Saving and loading networks as a single ``.npz`` file, never with pickle.

The file holds the architecture as JSON text under the key ``__config__`` and
every array under ``"<path>.<name>"`` (e.g. ``"0.weight"``). Loading uses
``allow_pickle=False`` and builds only the layer types of the table in
:mod:`lrp_ref.registry`, so a file can describe a network but never run code.
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from .layers.base import Layer, build, where
from .registry import LAYER_TYPES

CONFIG_KEY = "__config__"
FORMAT = "lrp_ref-network-1"


def save(net: Layer, path: str | os.PathLike) -> None:
    """Write ``net`` (any layer or Sequential) to ``path`` (a ``.npz`` file).

    Raises
    ------
    ValueError
        When a layer's class is not one of the registered types (``LAYER_TYPES``),
        e.g. a user's subclass: the file would load as another class, or not at all.
    """
    for layer_path, layer in (("", net), *net.named_layers()):
        if LAYER_TYPES.get(type(layer).__name__) is not type(layer):
            raise ValueError(f"cannot save {where(layer_path, layer)}: "
                             f"{type(layer).__qualname__} is not "
                             f"one of the layer types a model file may name "
                             f"({', '.join(sorted(LAYER_TYPES))}; lrp_ref.registry)")
    arrays = net.state()
    if CONFIG_KEY in arrays:
        raise ValueError(f"a layer path collides with the reserved key {CONFIG_KEY!r}")
    config = json.dumps({"format": FORMAT, "network": net.config()})
    with open(path, "wb") as f:
        np.savez(f, **{CONFIG_KEY: np.array(config)}, **arrays)


def load(path: str | os.PathLike) -> Layer:
    """Read a network written by :func:`save`.

    Raises
    ------
    ValueError
        When the file is not a valid lrp_ref model file (malformed, truncated,
        tampered with, or naming unknown layer types or arrays).
    """
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):  # a plain .npy array
            raise ValueError("a single array, not an .npz archive")
        with data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"{path}: not a readable lrp_ref model file ({error})") from error
    try:
        header = json.loads(str(arrays.pop(CONFIG_KEY)[()]))
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError(f"format must be {FORMAT!r}")
        net = build(header["network"], arrays)
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: malformed lrp_ref model file ({error})") from error
    unused = sorted(set(arrays) - set(net.state()))
    if unused:
        raise ValueError(f"{path}: malformed lrp_ref model file (unused arrays {unused})")
    return net
