"""Lazy import of torch, the one optional framework lrp_ref itself uses (``from_torch``).

torch comes from the optional ``oracle`` extra (``pip install '.[oracle]'``);
nothing here imports it at module import time. (The imports of Zennit and Captum
for the cross-validation tests live in ``tests/oracle/peer_imports.py``.)
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
from types import ModuleType

INSTALL_HINT = "pip install '.[oracle]'"


def import_optional(name: str) -> ModuleType:
    """Import ``name``, turning a missing package into an actionable ImportError."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(
            f"could not import {name!r} ({exc}); it is part of the optional "
            f"'oracle' extra: {INSTALL_HINT}"
        ) from exc


def import_torch() -> ModuleType:
    """Import and return :mod:`torch`.

    Returns
    -------
    types.ModuleType
        The ``torch`` module.

    Raises
    ------
    ImportError
        If torch is not installed; the message names ``pip install '.[oracle]'``.
    """
    return import_optional("torch")
