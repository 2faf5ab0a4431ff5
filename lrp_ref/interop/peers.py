"""Lazy imports of the PyTorch-based peer libraries used as oracles.

torch, zennit and captum come from the optional ``oracle`` extra
(``pip install '.[oracle]'``). Nothing here imports them at module import time.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

INSTALL_HINT = "pip install '.[oracle]'"

# Why this exists: the only torchvision wheels reachable here are CUDA builds,
# whose C extension (torchvision/_C.so) does not load beside the CPU build of
# torch. torchvision then still imports its Python parts, except that
# torchvision/_meta_registrations.py registers fake kernels for these two ops
# and fails with "RuntimeError: operator torchvision::nms does not exist".
# zennit imports torchvision, so it fails too. Declaring the two schemas first
# (copied from torchvision/csrc/ops/nms.cpp and
# csrc/ops/quantized/cpu/qnms_kernel.cpp) lets the import go through; only
# torchvision.ops.nms itself stays unusable, and zennit does not call it.
# The schemas must NOT be declared when _C.so does load: it defines the same
# ops and a second definition makes that load fail.
_TORCHVISION_SCHEMAS = {
    "torchvision::nms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "torchvision::qnms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}


def _import(name: str) -> ModuleType:
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
    return _import("torch")


def _op_defined(torch: ModuleType, qualname: str) -> bool:
    namespace, name = qualname.split("::")
    return hasattr(getattr(torch.ops, namespace), name)


def _torchvision_extension_loads(torch: ModuleType) -> bool:
    """Try to load torchvision's compiled ops (as torchvision itself would)."""
    spec = importlib.util.find_spec("torchvision")  # locates, does not import
    if spec is None or not spec.submodule_search_locations:
        return False
    loader = (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES)
    finder = importlib.machinery.FileFinder(spec.submodule_search_locations[0], loader)
    extension = finder.find_spec("torchvision._C")
    if extension is None or extension.origin is None:
        return False
    try:
        torch.ops.load_library(extension.origin)
    except OSError:
        return False
    return True


def _declare_torchvision_ops(torch: ModuleType) -> None:
    """Declare the torchvision op schemas unless torchvision can provide them.

    Idempotent: does nothing once torchvision is imported or the ops exist.
    """
    if "torchvision" in sys.modules:
        return
    if all(_op_defined(torch, q) for q in _TORCHVISION_SCHEMAS):
        return
    if _torchvision_extension_loads(torch):
        return
    for qualname, schema in _TORCHVISION_SCHEMAS.items():
        if not _op_defined(torch, qualname):
            torch.library.define(qualname, schema)


def import_zennit() -> ModuleType:
    """Import and return :mod:`zennit`, working around a non-loading torchvision.

    Returns
    -------
    types.ModuleType
        The ``zennit`` module.

    Raises
    ------
    ImportError
        If torch, torchvision or zennit is not installed; the message names
        ``pip install '.[oracle]'``.

    Notes
    -----
    Before the first import of torchvision, declares the schemas of
    ``torchvision::nms`` and ``torchvision::qnms`` if torchvision's C extension
    cannot load beside the installed torch (see the comment above
    ``_TORCHVISION_SCHEMAS``). Safe to call repeatedly.
    """
    _declare_torchvision_ops(import_torch())
    return _import("zennit")


def import_captum() -> ModuleType:
    """Import and return :mod:`captum`.

    Returns
    -------
    types.ModuleType
        The ``captum`` module.

    Raises
    ------
    ImportError
        If torch or captum is not installed; the message names
        ``pip install '.[oracle]'``.
    """
    import_torch()
    return _import("captum")
