"""Sphinx configuration of the luma-async docs (MyST Markdown, furo theme)."""

from importlib.metadata import version as _version

project = "luma-async"
author = "luma-async developers"
copyright = "luma-async developers"
release = _version("luma-async")
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
# examples/ holds the programs the pages include (and the test suite runs), not pages.
exclude_patterns = ["_build", "examples"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Signatures stay short; the types go into the parameter descriptions, where an attrs class's
# fields or a TYPE_CHECKING-only forward reference that cannot be resolved costs nothing.
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"show-inheritance": True}

html_theme = "furo"
html_title = f"luma-async {release}"
