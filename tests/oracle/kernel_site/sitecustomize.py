"""Run at start-up of the tutorial kernels that ``tutorials/build.py`` starts on this machine.

A plain ``import zennit`` imports torchvision, whose wheel here does not load beside
the local CPU torch (see ``tests/oracle/peer_imports.py``). Where torch is installed,
this declares the two torchvision operator schemas first, so that the tutorials can
say ``import zennit`` as a user would. It changes nothing where torchvision loads.
"""

import importlib.util
import os
import sys

if importlib.util.find_spec("torch") is not None:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import peer_imports

    peer_imports.declare_torchvision_ops()
    sys.path.pop(0)
