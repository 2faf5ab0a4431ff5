"""Build the tutorial notebooks from their sources, executed, with their outputs.

Every notebook ``tutorials/NN_name.ipynb`` that has a source
``tutorials/src/NN_name.py`` is generated from it. A source is a plain Python
file in the "percent" format that jupytext and VS Code read:

* ``# %%`` starts a code cell;
* ``# %% [markdown]`` starts a markdown cell, every line of it a comment
  (``# text``; the ``# `` is removed);
* in a code cell, a commented magic such as ``# %matplotlib inline`` becomes
  the magic ``%matplotlib inline`` (as in jupytext), so the source stays valid
  Python that ruff can check.

Text before the first cell marker is not part of the notebook. The notebook is
executed top to bottom in a kernel running this interpreter (with this
checkout first on ``PYTHONPATH``) and written with its outputs, so that the
committed notebooks show figures and numbers without being run.

Usage, from the repository root::

    python tutorials/build.py              # build and execute every notebook that has a source
    python tutorials/build.py 01 05        # only the notebooks whose names start with these
    python tutorials/build.py --check      # the committed notebooks match their sources

Needs the ``test`` extra (nbformat, nbclient, ipykernel).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat

TUTORIALS = Path(__file__).resolve().parent
ROOT = TUTORIALS.parent
SOURCES = TUTORIALS / "src"
#: The kernel the notebooks declare (what Jupyter users run them with).
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
#: Every notebook must run top to bottom in this many seconds.
TIMEOUT = 60

_MARKER = re.compile(r"^# %%(?P<markdown> \[markdown\])?\s*$")
_MAGIC = re.compile(r"^# (%%?[A-Za-z].*)$")


def sources() -> list[Path]:
    """The notebook sources, ``tutorials/src/NN_name.py``, in order."""
    return sorted(SOURCES.glob("[0-9][0-9]_*.py"))


def notebook_path(source: Path) -> Path:
    """The notebook built from ``source``."""
    return TUTORIALS / (source.stem + ".ipynb")


def _cell(kind: str, lines: list[str]) -> nbformat.NotebookNode:
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    if kind == "markdown":
        bad = [line for line in lines if line and not line.startswith("#")]
        if bad:
            raise ValueError(f"a markdown cell holds a line that is not a comment: {bad[0]!r}")
        text = [line[2:] if line.startswith("# ") else line[1:] for line in lines]
        return nbformat.v4.new_markdown_cell("\n".join(text))
    code = [_MAGIC.sub(r"\1", line) for line in lines]
    return nbformat.v4.new_code_cell("\n".join(code))


def read_source(source: Path) -> nbformat.NotebookNode:
    """The (unexecuted) notebook of a percent-format source."""
    cells: list[nbformat.NotebookNode] = []
    kind, lines = None, []
    for line in source.read_text(encoding="utf-8").splitlines():
        match = _MARKER.match(line)
        if match:
            if kind is not None:
                cells.append(_cell(kind, lines))
            kind, lines = ("markdown" if match["markdown"] else "code"), []
        elif kind is not None:
            lines.append(line)
    if kind is not None:
        cells.append(_cell(kind, lines))
    empty = [k for k, c in enumerate(cells) if not c.source]
    if empty:
        raise ValueError(f"{source.name}: cell {empty[0]} is empty")
    for k, cell in enumerate(cells):          # stable ids keep rebuilt notebooks' diffs small
        cell.id = f"cell-{k:02d}"
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def kernel_environment() -> dict[str, str]:
    """The environment of the kernel: this one, with the checkout first on PYTHONPATH.

    ``tests/oracle/kernel_site`` comes next: its ``sitecustomize`` lets ``import zennit``
    work on a machine whose torchvision wheel does not load beside torch (this one).
    """
    env = dict(os.environ)
    site = ROOT / "tests" / "oracle" / "kernel_site"
    env["PYTHONPATH"] = os.pathsep.join(
        str(p) for p in (ROOT, site, env.get("PYTHONPATH")) if p)
    return env


def execute(nb: nbformat.NotebookNode, timeout: float = TIMEOUT) -> float:
    """Run every cell of ``nb`` in place in a fresh kernel of this interpreter; the seconds taken.

    The kernel is started from a kernel spec written for ``sys.executable``,
    so a ``python3`` kernel installed elsewhere (another virtual
    environment, a user-wide Jupyter) can never be picked up by mistake.
    Raises ``nbclient.exceptions.CellExecutionError`` naming the failing cell.
    """
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory() as kernels:
        write_kernel_spec(os.path.join(kernels, "lrp-ref-python"))
        specs = KernelSpecManager(kernel_dirs=[kernels], ensure_native_kernel=False)
        km = KernelManager(kernel_name="lrp-ref-python", kernel_spec_manager=specs)
        client = NotebookClient(nb, km=km, timeout=timeout, record_timing=False,
                                resources={"metadata": {"path": str(TUTORIALS)}})
        start = time.perf_counter()
        client.execute(env=kernel_environment())
        seconds = time.perf_counter() - start
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    return seconds


def build(source: Path) -> float:
    """Build, execute and write the notebook of ``source``; the seconds it ran."""
    nb = read_source(source)
    seconds = execute(nb)
    nbformat.validate(nb)
    nbformat.write(nb, notebook_path(source))
    return seconds


def mismatches(source: Path) -> list[str]:
    """How the committed notebook differs from its source (empty when it matches)."""
    path = notebook_path(source)
    if not path.exists():
        return [f"{path.name} does not exist"]
    built = read_source(source).cells
    committed = nbformat.read(path, as_version=4).cells
    problems = []
    if [(c.cell_type, c.source) for c in built] != [(c.cell_type, c.source) for c in committed]:
        problems.append(f"{path.name}: its cells differ from {source.name}; rebuild it")
    unexecuted = [k for k, c in enumerate(committed)
                  if c.cell_type == "code" and c.get("execution_count") is None]
    if unexecuted:
        problems.append(f"{path.name}: code cells {unexecuted} were not executed")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="build only notebooks starting with these")
    parser.add_argument("--check", action="store_true",
                        help="only check that the committed notebooks match their sources")
    args = parser.parse_args(argv)
    chosen = [s for s in sources()
              if not args.names or any(s.stem.startswith(n) for n in args.names)]
    if not chosen:
        print(f"no source in {SOURCES} matches {args.names}", file=sys.stderr)
        return 1
    if args.check:
        problems = [p for s in chosen for p in mismatches(s)]
        print("\n".join(problems) or f"{len(chosen)} notebooks match their sources")
        return 1 if problems else 0
    for source in chosen:
        print(f"{notebook_path(source).name}: {build(source):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
