"""MkDocs hook: the tutorial notebooks of ``tutorials/`` become pages ``tutorials/NN_name``.

The notebooks live next to their sources outside ``docs/``; this adds them to the
site (mkdocs-jupyter renders them with their committed outputs), and rewrites the
pages' links ``../tutorials/NN_name.ipynb`` (right on the repository) to them.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]


@event_priority(100)  # before mkdocs-jupyter turns the notebooks into pages
def on_files(files, config):
    for notebook in sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.ipynb")):
        files.append(File(f"tutorials/{notebook.name}", str(ROOT), config["site_dir"],
                          config["use_directory_urls"]))
    return files


def on_page_markdown(markdown, page, config, files):
    return markdown.replace("](../tutorials/", "](tutorials/")
