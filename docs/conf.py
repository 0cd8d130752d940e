"""Sphinx configuration: the API reference is built from the docstrings (autodoc, with
napoleon for their ``Args:``/``Raises:`` sections); the other pages are Markdown (MyST).

Built by ``tox -e docs`` with warnings as errors and every cross-reference checked
(``sphinx-build -W -n``).
"""

from __future__ import annotations

import importlib.metadata

project = "numerous-tasks"
author = "numerous-tasks engineers"
copyright = "2026, numerous-tasks engineers"
release = importlib.metadata.version("numerous-tasks")
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# -- autodoc --------------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# The pytest plugin's module docstring lists its fixtures like arguments.
napoleon_custom_sections = [("Fixtures", "params_style"), "Choosing backends"]

# -- cross-references -----------------------------------------------------------------------
# No intersphinx: building needs no network. References to the standard library and to
# other projects are therefore left unresolved on purpose; everything of ours must resolve.
nitpicky = True
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(typing|typing_extensions|collections\.abc|types|concurrent\.futures|asyncio|logging|threading|io|os|pathlib)(\..*)?",
    ),
    (r"py:.*", r"(rich|pytest|_pytest|distributed|dask)(\..*)?"),
    # Type variables, and the private classes some signatures name.
    (r"py:class", r"(numerous\.tasks\.\w+\.)?(P|R|T)(\.args|\.kwargs)?"),
    (r"py:class", r"numerous\.tasks\.(\w+\.)*_\w+(\.\w+)*"),
    # Small protocols of private modules that public signatures name (what a map's
    # chunks need of their task).
    (r"py:class", r"MappedTask"),
    (r"py:class", r"numerous\.tasks\.control\.ControlSink"),
    (
        r"py:class",
        r"(P|R|T|Any|Callable|Concatenate|Iterator|Iterable|Mapping|Sequence|Optional|Union|Generic|Protocol)",
    ),
    (
        r"py:class",
        r"(int|float|str|bytes|bool|object|type|dict|list|tuple|set|frozenset|None|Exception|BaseException|BaseExceptionGroup|TimeoutError|ValueError|TypeError|ConnectionError|KeyboardInterrupt|SystemExit)",
    ),
]

# -- HTML -----------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"numerous-tasks {release}"
myst_heading_anchors = 3
