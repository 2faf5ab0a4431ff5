"""The README's code runs as printed (the tour and the models snippet)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.parametrize("block", [b for b in BLOCKS if "torch" not in b],
                         ids=lambda b: b.splitlines()[0][:40])
def test_readme_block_runs(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile("import lrp_ref as lrp\n" + block, str(README), "exec"), namespace)


def test_readme_has_runnable_blocks():
    assert len([b for b in BLOCKS if "torch" not in b]) >= 2


def zoo_table(text):
    """The rows of the model-zoo table: a model name, then whether it imports."""
    return re.findall(r"^\| `[a-z0-9_]+` \| (?:yes|no)\b.*\|$", text, flags=re.M)


def test_the_model_zoo_table_is_the_same_in_the_readme_and_docs_models():
    """benchmarks/zoo_table.py's table is pasted in both: they must not drift apart."""
    docs = (README.parent / "docs" / "models.md").read_text()
    assert len(zoo_table(README.read_text())) == 14
    assert zoo_table(README.read_text()) == zoo_table(docs)
