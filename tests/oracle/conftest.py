"""Fixtures for the oracle tests, which check lrp_ref against torch-based libraries.

Every test in this directory is skipped, with the import error as the reason,
when torch, zennit or captum cannot be imported (they are the optional
``oracle`` extra: ``pip install '.[oracle]'``). The imports go through
:mod:`lrp_ref.interop.peers`, so the torchvision workaround applies.
"""

from types import SimpleNamespace

import pytest

from lrp_ref.interop import peers


@pytest.fixture(scope="session")
def oracle() -> SimpleNamespace:
    """The oracle modules as ``oracle.torch``, ``oracle.zennit``, ``oracle.captum``."""
    try:
        return SimpleNamespace(
            torch=peers.import_torch(),
            zennit=peers.import_zennit(),
            captum=peers.import_captum(),
        )
    except ImportError as exc:
        pytest.skip(f"oracle extra not importable: {exc}")


@pytest.fixture(autouse=True)
def _require_oracle(oracle: SimpleNamespace) -> None:
    """Skip every test in this directory when the oracle packages are missing."""
