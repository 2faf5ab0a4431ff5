"""The flat module paths of lrp_ref 0.1 still import, as the very modules that moved."""

import importlib
import subprocess
import sys

import pytest

from lrp_ref._moved import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_path_is_the_moved_module(old):
    assert importlib.import_module(old) is importlib.import_module(MOVED[old])


def test_from_import_of_an_old_path():
    from lrp_ref.evaluate import relevance_mass_accuracy
    from lrp_ref.evaluation import relevance_mass_accuracy as new_accuracy
    from lrp_ref.train import fit
    from lrp_ref.zoo.train import fit as new_fit
    assert relevance_mass_accuracy is new_accuracy and fit is new_fit


def test_import_lrp_ref_does_not_import_matplotlib():
    """The aliases are lazy: lrp_ref.plot (matplotlib) is imported only when asked for."""
    code = "import sys, lrp_ref; print('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_an_unknown_path_is_still_an_import_error():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("lrp_ref.no_such_module")
