"""Imports of the peer libraries (zennit, captum) for this machine's oracle tests and benchmarks.

torch, torchvision, zennit and captum come from the optional ``oracle`` extra
(``pip install '.[oracle]'``). This module is test infrastructure, not part of
lrp_ref: it works around a torchvision wheel that does not load beside the
local CPU torch (below). ``benchmarks/`` imports it from here too.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from types import ModuleType

from lrp_ref.interop.peers import import_optional, import_torch

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


def declare_torchvision_ops() -> None:
    """Declare the torchvision op schemas unless torchvision can provide them.

    Idempotent: does nothing once torchvision is imported or the ops exist.
    """
    torch = import_torch()
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
    declare_torchvision_ops()
    return import_optional("zennit")


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
    return import_optional("captum")
