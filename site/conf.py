"""Sphinx settings of the course's website (`make site`, tools/site.py): the executed notebooks, never re-run."""

import importlib.util
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

project = "Freezing Layers in PyTorch"
author = "the course's authors"
copyright = "the course's authors"  # noqa: A001 (Sphinx's setting name)
extensions = ["myst_nb", "course_site"]
exclude_patterns = ["**.ipynb_checkpoints"]

# myst-nb: show the saved outputs; run nothing; load no widget JavaScript (no widget state is published).
nb_execution_mode = "off"
nb_ipywidgets_js = {}
nb_merge_streams = True
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

html_theme = "sphinx_book_theme"
html_title = project
html_favicon = "_static/favicon.svg"
html_context = {"default_mode": "auto"}  # light or dark as the reader's system prefers
# MathJax from requirements-site.txt (django-static-mathjax: MathJax 3's files), one file with its fonts inside.
_mathjax = importlib.util.find_spec("mathjax")
if _mathjax is None or not _mathjax.submodule_search_locations:
    raise RuntimeError("MathJax is missing from the site venv: delete build/site-venv and run make site again.")
MATHJAX_FILE = Path(_mathjax.submodule_search_locations[0]) / "static" / "mathjax" / "es5" / "tex-svg.js"
mathjax_path = MATHJAX_FILE.name
html_static_path = ["_static", str(MATHJAX_FILE)]
html_css_files = ["course.css"]
html_js_files = [("course.js", {"defer": "defer"})]  # search snippets skip the folded solutions too
html_copy_source = False  # no page sources on the web: the notebooks hold the exercise solutions
html_show_sourcelink = False
html_last_updated_fmt = None
repository_url = os.environ.get("COURSE_SITE_REPO_URL", "")
html_theme_options = {
    "use_download_button": False,
    "use_fullscreen_button": False,
    "use_repository_button": bool(repository_url),
    "repository_url": repository_url,
    "repository_branch": "main",
    "show_toc_level": 2,
    "home_page_in_toc": True,
}
