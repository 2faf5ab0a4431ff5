"""Fixtures for the oracle tests, which check lrp_ref against torch-based libraries.

Every test in this directory is skipped, with the import error as the reason,
when torch, zennit or captum cannot be imported (they are the optional
``oracle`` extra: ``pip install '.[oracle]'``). The imports go through
``peer_imports.py`` (this directory), so the torchvision workaround applies.

At the end of a session the largest measured difference of every peer
comparison (``peer_runs.AGREEMENT``) is printed as a table.
"""

import sys
from types import SimpleNamespace

import pytest

import peer_imports as peers


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


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Print the measured agreement with the peers (the numbers of docs/peers.md)."""
    peer_runs = sys.modules.get("peer_runs")
    if peer_runs is None or not peer_runs.AGREEMENT:
        return
    terminalreporter.section("measured agreement with the peers (max relative difference)")
    width = max(len(name) for name in peer_runs.AGREEMENT)
    for name, value in sorted(peer_runs.AGREEMENT.items()):
        terminalreporter.write_line(f"{name.ljust(width)}  {value:.1e}")
