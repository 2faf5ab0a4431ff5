"""The import paths of lrp_ref 0.1 whose modules moved into subpackages.

lrp_ref 0.1 was a flat package (``lrp_ref.composites``, ``lrp_ref.plot``, ...);
since the regrouping (docs/architecture.md) each module lives in the
subpackage of its concern. Code and documentation written against the old
paths keep working: :class:`MovedModules` makes ``import lrp_ref.plot`` return
the module ``lrp_ref.viz.plot`` itself (the same object, imported only when
asked for, so ``import lrp_ref`` still needs NumPy only).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
from types import ModuleType

#: old path -> new path
MOVED = {
    "lrp_ref.canonize": "lrp_ref.rules.canonize",
    "lrp_ref.composites": "lrp_ref.rules.composites",
    "lrp_ref.rulespec": "lrp_ref.rules.spec",
    "lrp_ref.crp": "lrp_ref.extensions.crp",
    "lrp_ref.contrastive": "lrp_ref.extensions.contrastive",
    "lrp_ref.text": "lrp_ref.extensions.text",
    "lrp_ref.evaluate": "lrp_ref.evaluation",
    "lrp_ref.compare": "lrp_ref.testing.compare",
    "lrp_ref.grading": "lrp_ref.testing.grading",
    "lrp_ref.strategies": "lrp_ref.testing.strategies",
    "lrp_ref.datasets": "lrp_ref.zoo.datasets",
    "lrp_ref.models": "lrp_ref.zoo.models",
    "lrp_ref.sentiment": "lrp_ref.zoo.sentiment",
    "lrp_ref.train": "lrp_ref.zoo.train",
    "lrp_ref.plot": "lrp_ref.viz.plot",
    "lrp_ref.figures": "lrp_ref.viz.figures",
}


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path of :data:`MOVED` and loads it as the module at its new path."""

    def find_spec(self, name: str, path: object = None,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module at the new path is already imported."""
