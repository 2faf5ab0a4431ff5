"""The documentation site's configuration: every page and tutorial is in the navigation.

The build itself (``mkdocs build --strict``, the ``docs`` extra) runs in CI (.ci/run);
this checks, without MkDocs, what a strict build would not notice: a page or a
notebook that exists but is left out of the navigation.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = (ROOT / "mkdocs.yml").read_text()
NAV = re.findall(r"^\s+- (?:[^:\n]+: )?(\S+\.(?:md|ipynb))\s*$", CONFIG, flags=re.M)


def test_every_page_is_in_the_navigation():
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert pages, "no pages found"
    assert pages <= set(NAV), f"pages missing from mkdocs.yml nav: {sorted(pages - set(NAV))}"
    missing = [page for page in NAV if page.endswith(".md") and page not in pages]
    assert not missing, f"nav names pages that do not exist: {missing}"


def test_every_tutorial_is_in_the_navigation():
    notebooks = {f"tutorials/{p.name}" for p in (ROOT / "tutorials").glob("[0-9][0-9]_*.ipynb")}
    assert len(notebooks) >= 9
    assert notebooks == {page for page in NAV if page.endswith(".ipynb")}


def test_the_api_reference_covers_every_public_name():
    """Each name of lrp_ref.__all__ and lrp_ref.testing.__all__ is documented on an API page:
    its module, or the name itself, is the target of a ``:::`` directive."""
    import inspect

    import lrp_ref
    import lrp_ref.testing

    targets = set(re.findall(r"^::: (\S+)", "\n".join(
        p.read_text() for p in (ROOT / "docs" / "api").glob("*.md")), flags=re.M))
    undocumented = []
    for package in (lrp_ref, lrp_ref.testing):
        for name in package.__all__:
            obj = getattr(package, name)
            module = obj.__name__ if inspect.ismodule(obj) else obj.__module__
            if module not in targets and f"{module}.{name}" not in targets:
                undocumented.append(f"{package.__name__}.{name} ({module})")
    assert not undocumented, f"not in docs/api/*.md: {undocumented}"
