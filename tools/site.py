"""`make site`: the course as a static website, built from the committed, executed notebooks.

    python -m tools.site [--out build/site] [--repo-url URL]

Nothing is executed: Sphinx with myst-nb renders the outputs saved in the notebooks. The build
tools live in their own venv, ``build/site-venv`` (``requirements-site.txt``), created here when
missing; this module itself needs only the standard library, so it runs before any venv exists.

What the web pages show differs from JupyterLab in three places, all prepared on copies in
``build/site-src`` (the committed notebooks are only read):

- a quiz cell (``quiz("03.frozen-vs-removed")``) shows its question and options, read from the
  question bank now, and says to answer it in JupyterLab: no answer, explanation or marking;
- the tests' ``# NBVAL_...`` markers are left out of the code, as in the learners' copy;
- other widgets show their readable text (a finished progress bar as its final line); no widget
  state travels to the web, so nothing a widget holds can be read from the page;
- every figure gets the alt text kept for it in ``site/alt_text.json`` (by notebook and cell id),
  and the Solutions section is folded behind a "Show solutions" toggle, kept out of the search.

The landing page and the take-away script's page come from the README's learner sections; the
instructor guide, the benchmark and the data notes come from their Markdown files. Sphinx runs with
``-W``: any warning stops the build, e.g. a heading that skips a level ("H2 to H4") in a notebook.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools import NOTEBOOK_DIR, REPO_ROOT
from tools.venvs import ensure_venv

SITE_DIR = REPO_ROOT / "site"  # conf.py, the build extension, alt texts, CSS
SITE_VENV = REPO_ROOT / "build" / "site-venv"
SITE_REQUIREMENTS = REPO_ROOT / "requirements-site.txt"
SOURCE_DIR = REPO_ROOT / "build" / "site-src"
OUT_DIR = REPO_ROOT / "build" / "site"
ALT_TEXT_FILE = SITE_DIR / "alt_text.json"
BANK_DIR = REPO_ROOT / "course_utils" / "quiz_bank"

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
# The same rule as tools.student.solutions_start (a test keeps the two in step); tools.student
# imports course_utils and torch, which the site build must not need.
SOLUTIONS_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+.*\bSolutions\b", re.IGNORECASE | re.MULTILINE)
TAKEAWAYS_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+.*\bKey takeaways\b", re.IGNORECASE | re.MULTILINE)
NBVAL_MARKER = re.compile(r"^[ \t]*#[ \t]*NBVAL_\w+[ \t]*\n?", re.MULTILINE)  # tests' markers, as tools.student
SOLUTIONS_LABEL = "course-solutions-{stem}"  # the target the build extension folds (site/_ext/course_site.py)
QUIZ_CALL = re.compile(r"""\bquiz\(\s*(["'])(?P<id>[^"']+)\1\s*\)""")
ANSWER_IN_LAB = "Answer it in JupyterLab: run this notebook there (`make lab`) to commit to an answer and see it."
PREDICT_IN_LAB = "Predict it in JupyterLab: run this notebook there (`make lab`) to type your number and compare."

# README sections, by heading: which go on the landing page and which become pages of their own.
LANDING_SECTIONS = ("Two commands", "The notebooks", "What you will be able to do", "Troubleshooting")
TAKE_AWAY_SECTION = "Take it to your own images"
# Markdown files of the repository that become pages (repository path -> page name).
MARKDOWN_PAGES = {
    "docs/INSTRUCTOR.md": "instructor",
    "docs/FREEZING_API.md": "freezing-api",
    "docs/benchmark.md": "benchmark",
    "data/README.md": "data",
}
MARKDOWN_LINK = re.compile(r"(?P<bang>!?)\[(?P<text>(?:[^\[\]]|\[[^\]]*\])*)\]\((?P<target>[^()\s]+)\)")
FENCE = re.compile(r"^ {0,3}(```|~~~)")


class SiteError(ValueError):
    """Input the site cannot be built from; the message says what to change."""


# ---------------------------------------------------------------------------------- the venv


def ensure_site_venv(venv: Path = SITE_VENV, requirements: Path = SITE_REQUIREMENTS) -> Path:
    """The venv with the publishing tools (``requirements-site.txt``), created or updated when needed; its bin/."""
    return ensure_venv(venv, requirements, "sphinx-build", "site")


# ---------------------------------------------------------------------------------- the quiz bank


def read_bank(bank_dir: Path = BANK_DIR) -> dict[str, dict[str, Any]]:
    """Every question of the bank's JSON files (``NN_name.json``), keyed by id, as course_utils.quiz_bank reads them."""
    files = sorted(bank_dir.glob("[0-9][0-9]_*.json"))
    if not files:
        raise SiteError(f"No quiz bank files (like 01_layers.json) in {bank_dir}.")
    bank: dict[str, dict[str, Any]] = {}
    for path in files:
        for question_id, entry in json.loads(path.read_text(encoding="utf-8")).items():
            if question_id in bank:
                raise SiteError(f"Question id {question_id!r} is defined twice (again in {path.name}).")
            bank[question_id] = entry
    return bank


def quiz_html(question_id: str, entry: dict[str, Any]) -> str:
    """The web form of one quiz: its question and options in the bank's order, all marked up alike, no answer."""
    if entry.get("kind", "choice") == "number":
        unit = f" (in {html.escape(entry['unit'])})" if entry.get("unit") else ""
        head, body, note = "Predict before you measure:", "", PREDICT_IN_LAB
        question = html.escape(entry["question"]) + unit
    else:
        head, note = "Commit to your answer:", ANSWER_IN_LAB
        question = html.escape(entry["question"])
        body = '<ol type="a">' + "".join(f"<li>{html.escape(o)}</li>" for o in entry["options"]) + "</ol>"
    note_html = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(note))
    return (
        f'<div class="course-quiz" data-quiz="{html.escape(question_id)}">'
        f"<p><strong>{head}</strong> {question}</p>{body}"
        f'<p class="course-quiz-note">{note_html}</p></div>'
    )


def quiz_text(entry: dict[str, Any]) -> str:
    """The plain-text form of one quiz (what a viewer without HTML shows): the same content as ``quiz_html``."""
    if entry.get("kind", "choice") == "number":
        unit = f" (in {entry['unit']})" if entry.get("unit") else ""
        return f"Predict before you measure: {entry['question']}{unit}\n{PREDICT_IN_LAB}"
    options = "\n".join(f"  {chr(ord('a') + i)}) {option}" for i, option in enumerate(entry["options"]))
    return f"Commit to your answer: {entry['question']}\n{options}\n{ANSWER_IN_LAB}"


# ---------------------------------------------------------------------------------- notebooks


def source_text(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def quiz_id(cell: dict[str, Any]) -> str | None:
    """The question id of a quiz cell (a code cell whose last line is ``quiz("NN.id")``), else None."""
    if cell.get("cell_type") != "code":
        return None
    lines = [line for line in source_text(cell).splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines or "quiz(" not in lines[-1]:
        return None
    match = QUIZ_CALL.fullmatch(lines[-1].strip())
    if match is None:
        raise SiteError(
            f'cell {cell.get("id")}: {lines[-1].strip()!r} is not a plain quiz("NN.id") call; '
            'write the quiz cell as quiz("NN.some-id") so the site can show its question.'
        )
    return match.group("id")


def solutions_start(cells: list[dict[str, Any]]) -> tuple[int, int] | None:
    """(cell index, character offset) of the Solutions heading: the first after Key takeaways, as tools.student."""

    def offset(cell: dict[str, Any], pattern: re.Pattern[str]) -> int | None:
        if cell.get("cell_type") != "markdown":
            return None
        match = pattern.search(source_text(cell))
        return None if match is None else match.start()

    takeaways = next((i for i, c in enumerate(cells) if offset(c, TAKEAWAYS_HEADING) is not None), 0)
    for index in range(takeaways, len(cells)):
        found = offset(cells[index], SOLUTIONS_HEADING)
        if found is not None:
            return index, found
    return None


def image_outputs(cell: dict[str, Any]) -> int:
    """How many image outputs (figures) a cell has."""
    return sum(1 for o in cell.get("outputs", []) if any(t in o.get("data", {}) for t in IMAGE_TYPES))


def alt_text_problems(notebooks: dict[str, dict[str, Any]], alt_texts: dict[str, dict[str, Any]]) -> list[str]:
    """Every figure without an alt text, and every alt text that fits no figure (notebook stem -> notebook)."""
    problems = []
    for stem, notebook in notebooks.items():
        kept = alt_texts.get(stem, {})
        figures = {c.get("id"): image_outputs(c) for c in notebook["cells"] if image_outputs(c)}
        for cell_id, count in figures.items():
            texts = kept.get(cell_id)
            texts = [texts] if isinstance(texts, str) else texts
            if not texts:
                problems.append(f"{stem}.ipynb cell {cell_id}: {count} figure(s) without alt text")
            elif len(texts) != count or not all(isinstance(t, str) and t.strip() for t in texts):
                problems.append(f"{stem}.ipynb cell {cell_id}: {count} figure(s) but {len(texts)} alt text(s)")
        problems += [
            f"{stem}.ipynb cell {cell_id}: alt text for a cell without figures" for cell_id in kept.keys() - figures
        ]
    problems += [
        f"{stem}: alt texts for a notebook that does not exist" for stem in alt_texts.keys() - notebooks.keys()
    ]
    return problems


def load_alt_texts(path: Path = ALT_TEXT_FILE) -> dict[str, dict[str, Any]]:
    """The alt texts by notebook stem and cell id (a string, or a list for a cell with several figures)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {stem: texts for stem, texts in data.items() if not stem.startswith("_")}  # "_about": a note


def progress_line(model_id: str, state: dict[str, Any]) -> str | None:
    """The final line of a saved tqdm progress bar (an HBox of HTML, FloatProgress, HTML), or None."""
    box = state.get(model_id, {})
    if box.get("model_name") != "HBoxModel":
        return None
    children = [state.get(str(c).removeprefix("IPY_MODEL_"), {}) for c in box.get("state", {}).get("children", [])]
    names = [c.get("model_name") for c in children]
    if names != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    left, bar, right = (c.get("state", {}) for c in children)
    filled = round(10 * bar.get("value", 0) / bar.get("max", 1)) if bar.get("max") else 0
    text = f"{left.get('value', '')}|{'█' * filled}{' ' * (10 - filled)}|{right.get('value', '')}"
    return html.unescape(text).replace("\u2007", " ")


def web_notebook(
    notebook: dict[str, Any], stem: str, bank: dict[str, dict[str, Any]], alt_texts: dict[str, Any]
) -> dict[str, Any]:
    """A copy of ``notebook`` as the site shows it: quizzes from the bank, widgets as text, alt texts, labels."""
    notebook = json.loads(json.dumps(notebook))  # a deep copy: the original is untouched
    widget_state = notebook.get("metadata", {}).pop("widgets", {})  # no widget state on the web
    state = widget_state.get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    for cell in notebook["cells"]:
        if cell.get("cell_type") == "code":
            cell["source"] = NBVAL_MARKER.sub("", source_text(cell))  # the tests' markers mean nothing to a reader
        question_id = quiz_id(cell)
        if question_id is not None:
            if question_id not in bank:
                raise SiteError(f"{stem}.ipynb cell {cell.get('id')}: no quiz question {question_id!r} in the bank.")
            entry = bank[question_id]
            data = {"text/html": quiz_html(question_id, entry), "text/plain": quiz_text(entry)}
            cell["outputs"] = [{"output_type": "display_data", "data": data, "metadata": {}}]
            continue
        for output in cell.get("outputs", []):
            view = output.get("data", {}).pop(WIDGET_VIEW, None)
            if view is not None:
                line = progress_line(view.get("model_id", ""), state)
                output["data"]["text/plain"] = line or source_text({"source": output["data"].get("text/plain", "")})
        if image_outputs(cell):
            texts = alt_texts[cell["id"]]
            cell.setdefault("metadata", {})["course_site"] = {"alt": [texts] if isinstance(texts, str) else texts}
    start = solutions_start(notebook["cells"])
    if start is None:
        raise SiteError(f"{stem}.ipynb has no Markdown heading naming 'Solutions'; the course skeleton requires one.")
    index, offset = start
    cell = notebook["cells"][index]
    text = source_text(cell)
    cell["source"] = f"{text[:offset]}\n\n({SOLUTIONS_LABEL.format(stem=stem)})=\n{text[offset:]}".lstrip("\n")
    return notebook


# ---------------------------------------------------------------------------------- Markdown pages


def markdown_sections(text: str) -> tuple[str, dict[str, str]]:
    """(text before the first ``## `` heading, {heading: its section text with the heading}); code fences respected."""
    preamble, sections, current, in_fence = [], {}, None, False
    for line in text.splitlines(keepends=True):
        if FENCE.match(line):
            in_fence = not in_fence
        if not in_fence and line.startswith("## "):
            current = line[3:].strip()
            sections[current] = ""
        if current is None:
            preamble.append(line)
        else:
            sections[current] += line
    return "".join(preamble), sections


@dataclass
class LinkRewriter:
    """Rewrites a Markdown file's links for the site: pages to pages, images copied, other files to the repository."""

    source: Path  # the Markdown file (its folder is where relative links start)
    images_dir: Path  # where referenced images are copied
    notebook_stems: frozenset[str]
    repo_url: str = ""  # e.g. https://github.com/OWNER/REPO: links to files that are no page; "" keeps their text only

    def __call__(self, text: str) -> str:
        out, in_fence = [], False
        for line in text.splitlines(keepends=True):
            if FENCE.match(line):
                in_fence = not in_fence
            out.append(line if in_fence else MARKDOWN_LINK.sub(self._link, line))
        return "".join(out)

    def _link(self, match: re.Match[str]) -> str:
        bang, label, target = match.group("bang"), match.group("text"), match.group("target")
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            return match.group(0)
        path, _, anchor = target.partition("#")
        resolved = (self.source.parent / path).resolve()
        try:
            repo_path = resolved.relative_to(REPO_ROOT).as_posix()
        except ValueError:
            raise SiteError(f"{self.source.name}: link {target!r} points outside the repository.") from None
        if not resolved.exists():
            raise SiteError(f"{self.source.name}: link {target!r} points to a missing file ({repo_path}).")
        if bang:
            self.images_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy2(resolved, self.images_dir / resolved.name)
            return f"![{label}]({self.images_dir.name}/{resolved.name})"
        hash_part = f"#{anchor}" if anchor else ""
        if repo_path in MARKDOWN_PAGES:
            return f"[{label}]({MARKDOWN_PAGES[repo_path]}.md{hash_part})"
        if resolved.suffix == ".ipynb" and resolved.stem in self.notebook_stems:
            return f"[{label}]({resolved.stem}.ipynb{hash_part})"
        if self.repo_url:
            kind = "tree" if resolved.is_dir() else "blob"
            return f"[{label}]({self.repo_url.rstrip('/')}/{kind}/main/{repo_path}{hash_part})"
        return label


def link_notebook_names(text: str, stems: list[str]) -> str:
    """In table rows, make each notebook's name (`` `03_freezing` ``) a link to its page."""
    lines = []
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("|"):
            for stem in stems:
                line = line.replace(f"| `{stem}` |", f"| [`{stem}`]({stem}.ipynb) |")
        lines.append(line)
    return "".join(lines)


def toctree(caption: str, entries: list[str]) -> str:
    return "\n```{toctree}\n:hidden:\n:caption: " + caption + "\n\n" + "\n".join(entries) + "\n```\n"


def landing_page(readme: str, stems: list[str], rewrite: LinkRewriter) -> str:
    """The site's home page: the README's title, introduction and learner sections, then the navigation."""
    preamble, sections = markdown_sections(readme)
    missing = [name for name in (*LANDING_SECTIONS, TAKE_AWAY_SECTION) if name not in sections]
    if missing:
        raise SiteError(
            f"README.md has no section(s) {missing}; tools/site.py LANDING_SECTIONS names the ones to show."
        )
    body = preamble + "".join(sections[name] for name in LANDING_SECTIONS)
    body = link_notebook_names(rewrite(body), stems)
    extra = ["finetune", *MARKDOWN_PAGES.values()]
    return body + toctree("The notebooks", stems) + toctree("Beyond the notebooks", extra)


def take_away_page(readme: str, rewrite: LinkRewriter) -> str:
    """The take-away script's guide: the README's "Take it to your own images" section as a page."""
    _, sections = markdown_sections(readme)
    return rewrite(sections[TAKE_AWAY_SECTION]).removeprefix("#")  # its ## heading becomes the page's # title


# ---------------------------------------------------------------------------------- the build


def read_notebooks(notebook_dir: Path = NOTEBOOK_DIR) -> dict[str, dict[str, Any]]:
    """The course notebooks (``NN_name.ipynb``) by stem, in order."""
    paths = sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise SiteError(f"No numbered notebooks (like 01_layers.ipynb) in {notebook_dir}.")
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in paths}


def prepare(src: Path = SOURCE_DIR, repo_url: str = "") -> list[str]:
    """Write the site's sources into ``src`` (replaced); returns the notebook stems."""
    notebooks = read_notebooks()
    alt_texts = load_alt_texts()
    problems = alt_text_problems(notebooks, alt_texts)
    if problems:
        raise SiteError(
            "alt texts do not match the figures; add or fix them in site/alt_text.json:\n  " + "\n  ".join(problems)
        )
    bank = read_bank()
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    stems = list(notebooks)
    for stem, notebook in notebooks.items():
        web = web_notebook(notebook, stem, bank, alt_texts.get(stem, {}))
        (src / f"{stem}.ipynb").write_text(json.dumps(web, ensure_ascii=False, indent=1), encoding="utf-8")
    readme_path = REPO_ROOT / "README.md"
    readme = readme_path.read_text(encoding="utf-8")
    images = src / "images"
    rewrite = LinkRewriter(readme_path, images, frozenset(stems), repo_url)
    (src / "index.md").write_text(landing_page(readme, stems, rewrite), encoding="utf-8")
    (src / "finetune.md").write_text(take_away_page(readme, rewrite), encoding="utf-8")
    for repo_path, page in MARKDOWN_PAGES.items():
        path = REPO_ROOT / repo_path
        page_rewrite = LinkRewriter(path, images, frozenset(stems), repo_url)
        (src / f"{page}.md").write_text(page_rewrite(path.read_text(encoding="utf-8")), encoding="utf-8")
    return stems


def build(out: Path = OUT_DIR, repo_url: str = "", src: Path = SOURCE_DIR) -> float:
    """Prepare the sources and run Sphinx into ``out`` (replaced). Returns the seconds the build took (venv aside)."""
    bin_dir = ensure_site_venv()
    started = time.perf_counter()
    prepare(src, repo_url)
    if out.exists():
        shutil.rmtree(out)
    doctrees = out.parent / f"{out.name}-doctrees"
    env = {**os.environ, "COURSE_SITE_REPO_URL": repo_url, "PYTHONPATH": ""}
    command = [str(bin_dir / "sphinx-build"), "-b", "html", "-c", str(SITE_DIR), "-d", str(doctrees), "-E"]
    subprocess.run([*command, "-W", "--keep-going", "-q", str(src), str(out)], check=True, env=env)
    (out / ".nojekyll").touch()  # GitHub Pages serves _static/ and _images/ as they are
    return time.perf_counter() - started


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.site", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (default: build/site), replaced")
    parser.add_argument(
        "--repo-url",
        default=os.environ.get("COURSE_SITE_REPO_URL", ""),
        help="the repository's web address: links to its files (scripts, data) then point there",
    )
    args = parser.parse_args(argv)
    try:
        seconds = build(args.out.resolve(), args.repo_url)
    except SiteError as error:
        print(f"site not built: {error}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as error:
        print(
            f"site not built: {' '.join(map(str, error.cmd[:3]))} … failed (exit {error.returncode}).", file=sys.stderr
        )
        return 1
    print(f"site built in {seconds:.1f} s: open {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
