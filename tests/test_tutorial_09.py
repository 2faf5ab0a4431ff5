"""tutorials/09_lstm_sentiment.ipynb runs top to bottom in under a minute (nbclient),
and its printed results support what its text says."""

import os
import re
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat (the 'test' extra) not installed")
nbclient = pytest.importorskip("nbclient", reason="nbclient (the 'test' extra) not installed")
pytest.importorskip("ipykernel", reason="ipykernel (the 'test' extra) not installed")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "tutorials" / "09_lstm_sentiment.ipynb"


def stream_text(nb) -> str:
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []) if o.get("output_type") == "stream")


def test_tutorial_09_runs_and_reports_lrp_on_the_deciding_tokens(monkeypatch):
    # the kernel is a subprocess: let it import this checkout's lrp_ref
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    start = time.perf_counter()
    nbclient.NotebookClient(nb, timeout=60, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    assert time.perf_counter() - start < 60
    out = stream_text(nb)
    assert "brilliant +" in out and "-> positive" in out
    scores = {m.group(1).strip(): (float(m.group(2)), float(m.group(3)))
              for m in re.finditer(r"^(LRP-0|LRP-ε \(1e-3\)|Grad x Input|sensitivity)\s+"
                                   r"([\d.]+)\s+([\d.]+)$", out, re.M)}
    assert len(scores) == 4
    # the text: LRP about twice Gradient x Input, top token deciding ~9 in 10
    assert scores["LRP-ε (1e-3)"][0] > 1.8 * scores["Grad x Input"][0]
    assert scores["LRP-ε (1e-3)"][1] > 0.85
    assert scores["sensitivity"][0] < scores["Grad x Input"][0]
