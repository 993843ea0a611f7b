"""Sphinx configuration of the sb3-shm documentation (build: ``python -m sphinx -W -b html docs docs/_build/html``)."""

import os
import re
import sys

sys.path.insert(0, os.path.abspath(".."))

with open(os.path.join(os.path.dirname(__file__), "..", "sb3_shm", "version.txt")) as file_handler:
    __version__ = file_handler.read().strip()

project = "sb3-shm"
copyright = "2025, sb3-shm contributors"
author = "sb3-shm contributors"
version = __version__
release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
master_doc = "index"
# benchmarks.md (kept by the benchmark scripts' owner) has no title of its own: guide/speed.md includes it
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "figures", "benchmarks.md"]

# MyST: $...$ / $$...$$ maths, ::: fences, heading anchors for cross-page links such as zoo.md#hub
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"


def _literal_bars(app, what, name, obj, options, lines):
    """Docstrings write the absolute value of the memory as ``|M|``, which reStructuredText reads as a substitution."""
    for i, line in enumerate(lines):
        lines[i] = re.sub(r"(?<![`\w])\|(\w+)\|(?![`\w])", r"``|\1|``", line)


def setup(app):
    app.connect("autodoc-process-docstring", _literal_bars)


html_theme = "sphinx_rtd_theme"
html_static_path = ["_static"]
html_title = f"sb3-shm {release}"
html_theme_options = {"navigation_depth": 3}
