"""The course's website (`make site`, tools/site.py): built, searched for spoilers, and read in a browser.

Fast tests check the pieces on plausible wrong input (a quiz cell that is no plain call, a figure
without alt text, a notebook without Solutions, a broken link) and the shared palette under
simulated colour-vision deficiencies. The slow ones build the site once per session (creating
build/site-venv when missing, as `make site` does: never skipped) into a temporary folder, then:

- grep every built file for every quiz explanation and proof and for the feedback wording, and check
  each quiz shows its options in the bank's order, all marked up alike (nothing marks the answer);
- check the exercise solutions sit only inside the "Show solutions" toggle and not in the search index;
- serve the site on 127.0.0.1 and open every page in headless Chromium (Debian's, through
  Playwright): no console error, no failed request, every internal link and anchor resolves, every
  image loads and has alt text, headings never skip a level, and the "next" links walk 01 to 07;
- lint .github/workflows/site.yml with actionlint, and store a screenshot of a notebook page in
  docs/images/site.png (rewritten only when the page looks different).
"""

from __future__ import annotations

import functools
import html
import http.server
import io
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tools import site
from tools.site import SiteError

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SCREENSHOT = REPO_ROOT / "docs" / "images" / "site.png"
SCREENSHOT_PAGE = "03_freezing.html"
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "site.yml"
BUILD_LIMIT_S = 60
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# What the JupyterLab quiz shows once answered (course_utils/widgets/quiz.py); none of it may reach the web.
# (Exercise checkers print ✅/❌ lines of their own: those are the learner's feedback on the exercise cells.)
FEEDBACK_WORDING = ("✅ Right.", "Not quite: the answer is", "✅ In range.", "Outside the range we measure", "Proof:")
MIN_COLOUR_DISTANCE = 10.0  # CIEDE2000; about where two flat colours stop being told apart at a glance


# ---------------------------------------------------------------------------------- fast: the pieces


def notebook(*cells: dict[str, Any], widgets: dict[str, Any] | None = None) -> dict[str, Any]:
    metadata = {"widgets": widgets} if widgets else {}
    return {"cells": list(cells), "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


def code(cell_id: str, source: str, *outputs: dict[str, Any]) -> dict[str, Any]:
    return {"cell_type": "code", "id": cell_id, "source": source, "metadata": {}, "outputs": list(outputs)}


def markdown(cell_id: str, source: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "id": cell_id, "source": source, "metadata": {}}


def figure() -> dict[str, Any]:
    return {
        "output_type": "display_data",
        "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"},
        "metadata": {},
    }


def widget_output(model_id: str, text: str) -> dict[str, Any]:
    view = {"model_id": model_id, "version_major": 2, "version_minor": 0}
    return {"output_type": "display_data", "data": {site.WIDGET_VIEW: view, "text/plain": text}, "metadata": {}}


SKELETON_END = [markdown("t", "## Key takeaways\n\n- a"), markdown("s", "## Solutions\n"), code("sol", "answer = 42")]


def test_bank_reader_reads_what_course_utils_reads() -> None:
    from course_utils.quiz_bank import read_bank

    assert site.read_bank() == read_bank()


def test_bank_reader_rejects_a_duplicate_id_and_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match="No quiz bank files"):
        site.read_bank(tmp_path)
    entry = {"question": "q", "options": ["a", "b"], "answer": 0, "explanation": "e"}
    (tmp_path / "01_a.json").write_text(json.dumps({"01.q": entry}))
    (tmp_path / "02_b.json").write_text(json.dumps({"01.q": entry}))
    with pytest.raises(SiteError, match="defined twice"):
        site.read_bank(tmp_path)


def test_solutions_start_agrees_with_the_learners_copy() -> None:
    import nbformat

    from tools.student import solutions_start

    for stem in NOTEBOOKS:
        path = REPO_ROOT / "notebooks" / f"{stem}.ipynb"
        ours = site.solutions_start(json.loads(path.read_text(encoding="utf-8"))["cells"])
        assert ours is not None and ours == solutions_start(nbformat.read(path, as_version=4).cells), stem


def test_quiz_id_finds_plain_quiz_calls_only() -> None:
    assert site.quiz_id(code("a", 'quiz("03.frozen-grad")')) == "03.frozen-grad"
    assert site.quiz_id(code("a", "# commit first\nquiz('01.x')\n")) == "01.x"
    assert site.quiz_id(code("a", "print(1)")) is None
    assert site.quiz_id(markdown("a", 'quiz("01.x")')) is None
    with pytest.raises(SiteError, match="not a plain quiz"):
        site.quiz_id(code("a", 'q = quiz("01.x")'))
    with pytest.raises(SiteError, match="not a plain quiz"):
        site.quiz_id(code("a", "quiz(name)"))


@pytest.mark.parametrize("question_id", sorted(site.read_bank()))
def test_quiz_html_shows_question_and_options_never_the_answer(question_id: str) -> None:
    entry = site.read_bank()[question_id]
    shown = site.quiz_html(question_id, entry) + site.quiz_text(entry)
    assert html.escape(entry["question"]) in shown
    for secret in (entry["explanation"], entry.get("proof", "")):
        assert not secret or (secret not in shown and html.escape(secret) not in shown)
    items = re.findall(r"<li([^>]*)>(.*?)</li>", site.quiz_html(question_id, entry))
    if entry.get("kind") == "number":
        assert items == []
        low, high = entry["accept"]
        assert not re.search(rf"\b({low:g}|{high:g})\b", shown.replace(entry["question"], "")), "accepted range leaked"
    else:
        assert [text for _, text in items] == [html.escape(o) for o in entry["options"]], "options out of bank order"
        assert {attributes for attributes, _ in items} == {""}, "an option carries attributes"


def test_web_notebook_replaces_quiz_output_and_drops_widget_state() -> None:
    bank = {"01.q": {"question": "Which?", "options": ["x", "y"], "answer": 1, "explanation": "Because y."}}
    secret_state = {"state": {"m1": {"model_name": "HTMLModel", "state": {"value": "Because y."}}}}
    source = notebook(
        code("q1", 'quiz("01.q")', widget_output("m1", "old")),
        *SKELETON_END,
        widgets={"application/vnd.jupyter.widget-state+json": secret_state},
    )
    web = site.web_notebook(source, "01_x", bank, {})
    text = json.dumps(web)
    assert "Because y." not in text and "widgets" not in web["metadata"]
    (output,) = web["cells"][0]["outputs"]
    assert output["data"]["text/html"] == site.quiz_html("01.q", bank["01.q"])
    assert "(course-solutions-01_x)=\n## Solutions" in web["cells"][2]["source"]
    assert source["metadata"]["widgets"], "the original notebook was changed"


def test_web_notebook_leaves_out_the_test_markers_as_the_learners_copy_does() -> None:
    from tools.student import NBVAL_MARKER

    source = "# NBVAL_CHECK_OUTPUT\nprint(1)  # NBVAL is named here, not a marker\n  #NBVAL_SKIP \nx = 2"
    web = site.web_notebook(notebook(code("c", source), *SKELETON_END), "01_x", {}, {})
    assert (
        web["cells"][0]["source"]
        == NBVAL_MARKER.sub("", source)
        == "print(1)  # NBVAL is named here, not a marker\nx = 2"
    )


def test_web_notebook_refuses_an_unknown_question_and_a_missing_solutions_heading() -> None:
    with pytest.raises(SiteError, match="no quiz question '01.nope'"):
        site.web_notebook(notebook(code("q", 'quiz("01.nope")'), *SKELETON_END), "01_x", {}, {})
    with pytest.raises(SiteError, match="no Markdown heading naming 'Solutions'"):
        site.web_notebook(notebook(markdown("t", "## Key takeaways")), "01_x", {}, {})


def test_a_finished_progress_bar_shows_its_last_line() -> None:
    state = {
        "box": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_l", "IPY_MODEL_b", "IPY_MODEL_r"]}},
        "l": {"model_name": "HTMLModel", "state": {"value": "runs:\u2007100%"}},
        "b": {"model_name": "FloatProgressModel", "state": {"value": 4.0, "max": 4.0}},
        "r": {"model_name": "HTMLModel", "state": {"value": "\u20074/4\u2007[00:07&lt;00:00]"}},
    }
    assert site.progress_line("box", state) == "runs: 100%|██████████| 4/4 [00:07<00:00]"
    assert site.progress_line("l", state) is None  # not a progress bar
    assert site.progress_line("missing", state) is None
    widgets = {"application/vnd.jupyter.widget-state+json": {"state": state}}
    web = site.web_notebook(
        notebook(code("c", "x", widget_output("box", "runs: 0%")), *SKELETON_END, widgets=widgets), "01_x", {}, {}
    )
    assert web["cells"][0]["outputs"][0]["data"] == {"text/plain": "runs: 100%|██████████| 4/4 [00:07<00:00]"}


def test_every_figure_of_every_notebook_has_alt_text() -> None:
    assert site.alt_text_problems(site.read_notebooks(), site.load_alt_texts()) == []


def test_alt_text_problems_catch_a_new_figure_a_stale_entry_and_a_wrong_count() -> None:
    notebooks = {"01_x": notebook(code("a", "plot()", figure()), code("b", "plots()", figure(), figure()))}
    assert site.alt_text_problems(notebooks, {"01_x": {"a": "A line.", "b": ["One.", "Two."]}}) == []
    problems = site.alt_text_problems(notebooks, {"01_x": {"b": ["Only one."], "gone": "Old."}, "09_y": {}})
    assert problems == [
        "01_x.ipynb cell a: 1 figure(s) without alt text",
        "01_x.ipynb cell b: 2 figure(s) but 1 alt text(s)",
        "01_x.ipynb cell gone: alt text for a cell without figures",
        "09_y: alt texts for a notebook that does not exist",
    ]
    assert site.alt_text_problems(notebooks, {"01_x": {"a": "  ", "b": ["One.", "Two."]}}) == [
        "01_x.ipynb cell a: 1 figure(s) but 1 alt text(s)"
    ]


def test_links_become_pages_images_or_repository_links(tmp_path: Path) -> None:
    readme = REPO_ROOT / "README.md"
    rewrite = site.LinkRewriter(readme, tmp_path / "images", frozenset(NOTEBOOKS))
    assert rewrite("see [the guide](docs/INSTRUCTOR.md#timings)") == "see [the guide](instructor.md#timings)"
    assert rewrite("[03](notebooks/03_freezing.ipynb)") == "[03](03_freezing.ipynb)"
    assert rewrite("[`examples/finetune.py`](examples/finetune.py)") == "`examples/finetune.py`"
    assert rewrite("[web](https://example.org/x.md)") == "[web](https://example.org/x.md)"
    assert rewrite("```\n[not](a-link.md)\n```\n") == "```\n[not](a-link.md)\n```\n"
    assert rewrite("![panel](docs/images/freeze_panel.png)") == "![panel](images/freeze_panel.png)"
    assert (tmp_path / "images" / "freeze_panel.png").exists()
    online = site.LinkRewriter(readme, tmp_path / "images", frozenset(NOTEBOOKS), "https://github.com/o/r")
    assert online("[x](examples/finetune.py)") == "[x](https://github.com/o/r/blob/main/examples/finetune.py)"
    with pytest.raises(SiteError, match="missing file"):
        rewrite("[gone](docs/NOPE.md)")
    with pytest.raises(SiteError, match="outside the repository"):
        rewrite("[up](../../etc/passwd)")


def test_landing_page_needs_the_readme_sections_it_shows(tmp_path: Path) -> None:
    rewrite = site.LinkRewriter(REPO_ROOT / "README.md", tmp_path, frozenset(NOTEBOOKS))
    with pytest.raises(SiteError, match="no section"):
        site.landing_page("# Title\n\n## Two commands\n\nmake lab\n", NOTEBOOKS, rewrite)
    page = site.landing_page((REPO_ROOT / "README.md").read_text(encoding="utf-8"), NOTEBOOKS, rewrite)
    assert "## For maintainers" not in page and "## Read it on the web" not in page
    assert "[`03_freezing`](03_freezing.ipynb)" in page
    assert page.count("{toctree}") == 2 and all(f"\n{stem}\n" in page for stem in NOTEBOOKS)
    take_away = site.take_away_page((REPO_ROOT / "README.md").read_text(encoding="utf-8"), rewrite)
    assert take_away.startswith("# Take it to your own images\n") and "\n## " not in take_away


def test_readme_points_to_the_website_and_shows_it() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    _, sections = site.markdown_sections(readme)
    web = sections.get("Read it on the web", "")
    assert "GitHub Pages" in web and "make site" in web
    assert "(docs/images/site.png)" in web and SCREENSHOT.exists()
    assert readme.index("## Read it on the web") < readme.index("## Two commands"), "near the top"


# ---------------------------------------------------------------------------------- fast: the palette

# Machado, Oliveira & Fernandes (2009), severity 1.0, applied to linear RGB.
SIMULATIONS = {
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216), (-0.003882, -0.048116, 1.051998)),
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413), (-0.011820, 0.042940, 0.968881)),
    "tritanopia": ((1.255528, -0.076749, -0.178779), (-0.078411, 0.930809, 0.147602), (0.004733, 0.691367, 0.303900)),
}
Lab = tuple[float, float, float]


def linear_rgb(colour: str) -> tuple[float, float, float]:
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", colour):
        raise ValueError(f"expected a colour like '#1f77b4', got {colour!r}")
    channels = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return r, g, b


def simulate(rgb: tuple[float, float, float], deficiency: str) -> tuple[float, float, float]:
    m = SIMULATIONS[deficiency]
    r, g, b = (min(1.0, max(0.0, sum(m[row][k] * rgb[k] for k in range(3)))) for row in range(3))
    return r, g, b


def cielab(rgb: tuple[float, float, float]) -> Lab:
    r, g, b = rgb
    x = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / 0.95047
    y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b
    z = (0.0193339 * r + 0.1191920 * g + 0.9503041 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def ciede2000(lab1: Lab, lab2: Lab) -> float:
    """The CIEDE2000 colour difference (Sharma, Wu & Dalal 2005)."""
    (l1, a1, b1), (l2, a2, b2) = lab1, lab2
    c_mean = (math.hypot(a1, b1) + math.hypot(a2, b2)) / 2
    g = 0.5 * (1 - math.sqrt(c_mean**7 / (c_mean**7 + 25**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
    h1p = math.degrees(math.atan2(b1, a1p)) % 360 if c1p else 0.0
    h2p = math.degrees(math.atan2(b2, a2p)) % 360 if c2p else 0.0
    dh = 0.0 if c1p * c2p == 0 else (h2p - h1p + 180) % 360 - 180
    d_hue = 2 * math.sqrt(c1p * c2p) * math.sin(math.radians(dh / 2))
    l_mean, cp_mean = (l1 + l2) / 2, (c1p + c2p) / 2
    if c1p * c2p == 0:
        h_mean = h1p + h2p
    elif abs(h1p - h2p) <= 180:
        h_mean = (h1p + h2p) / 2
    else:
        h_mean = (h1p + h2p + 360) / 2 if h1p + h2p < 360 else (h1p + h2p - 360) / 2
    t = (
        1
        - 0.17 * math.cos(math.radians(h_mean - 30))
        + 0.24 * math.cos(math.radians(2 * h_mean))
        + 0.32 * math.cos(math.radians(3 * h_mean + 6))
        - 0.20 * math.cos(math.radians(4 * h_mean - 63))
    )
    rotation = (
        -math.sin(math.radians(60 * math.exp(-(((h_mean - 275) / 25) ** 2))))
        * 2
        * math.sqrt(cp_mean**7 / (cp_mean**7 + 25**7))
    )
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / math.sqrt(20 + (l_mean - 50) ** 2)
    s_c, s_h = 1 + 0.045 * cp_mean, 1 + 0.015 * cp_mean * t
    dl, dc, dhh = (l2 - l1) / s_l, (c2p - c1p) / s_c, d_hue / s_h
    return math.sqrt(dl**2 + dc**2 + dhh**2 + rotation * dc * dhh)


def confusable(palette: dict[str, str]) -> list[str]:
    """Each pair of ``palette`` closer than MIN_COLOUR_DISTANCE with normal vision or a simulated deficiency."""
    found = []
    for (name1, colour1), (name2, colour2) in itertools.combinations(palette.items(), 2):
        rgb1, rgb2 = linear_rgb(colour1), linear_rgb(colour2)
        views = {"normal": (rgb1, rgb2), **{d: (simulate(rgb1, d), simulate(rgb2, d)) for d in SIMULATIONS}}
        for view, (first, second) in views.items():
            distance = ciede2000(cielab(first), cielab(second))
            if distance < MIN_COLOUR_DISTANCE:
                found.append(f"{name1}/{name2} under {view}: ΔE00 {distance:.1f}")
    return found


def test_colour_difference_and_simulation_match_published_values() -> None:
    # Sharma et al.'s test data, pair 1: ΔE00 = 2.0425.
    assert ciede2000((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485)) == pytest.approx(2.0425, abs=1e-4)
    assert ciede2000((50.0, 0.0, 0.0), (50.0, 0.0, 0.0)) == 0
    assert simulate(linear_rgb("#ffffff"), "deuteranopia") == pytest.approx((1.0, 1.0, 1.0), abs=0.01)
    # the textbook confusion: pure red and pure green look alike without green cones, not with them
    assert confusable({"red": "#ff0000", "green": "#00ff00"}) == []
    assert confusable({"red": "#d62728", "green": "#2ca02c"}) == ["red/green under deuteranopia: ΔE00 4.6"]
    with pytest.raises(ValueError, match="expected a colour"):
        linear_rgb("blue")


def test_frozen_and_trainable_colours_stay_apart_for_colour_blind_readers() -> None:
    from course_utils.plots import STATE_COLORS

    assert confusable(STATE_COLORS) == []


def test_strategy_colours_stay_apart_for_colour_blind_readers() -> None:
    from course_utils.plots import STRATEGY_COLORS

    assert confusable(STRATEGY_COLORS) == []


# ---------------------------------------------------------------------------------- slow: the built site


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The site, built once per session from the committed notebooks (build/site-venv created when missing)."""
    site.ensure_site_venv()
    out = tmp_path_factory.mktemp("site") / "site"
    seconds = site.build(out, src=out.parent / "site-src")
    return out, seconds


def built_text_files(out: Path) -> Iterator[tuple[Path, str]]:
    """Every file of the site as text (objects.inv decompressed); images and fonts skipped."""
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        if path.suffix in {".png", ".jpg", ".ico", ".woff", ".woff2", ".ttf", ".eot", ".gif"}:
            continue
        data = path.read_bytes()
        if path.name == "objects.inv":
            data = zlib.decompress(data.split(b"\n", 4)[4])
        yield path, data.decode("utf-8", errors="replace")


class TextAndSolutions(HTMLParser):
    """A page's visible text, split into what is inside the Solutions toggle and what is not."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0  # inside <details class="course-solutions"> when > 0
        self.skip = 0  # inside <script> or <style>
        self.outside: list[str] = []
        self.inside: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        if tag == "details" and (self.depth or "course-solutions" in (dict(attrs).get("class") or "")):
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip -= 1
        if tag == "details" and self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            (self.inside if self.depth else self.outside).append(data)


def page_text(path: Path) -> tuple[str, str]:
    """(visible text outside the Solutions toggle, inside it), whitespace collapsed."""
    parser = TextAndSolutions()
    parser.feed(path.read_text(encoding="utf-8"))
    return tuple(" ".join("".join(part).split()) for part in (parser.outside, parser.inside))  # type: ignore[return-value]


@pytest.mark.slow
def test_site_builds_within_a_minute(built: tuple[Path, float]) -> None:
    out, seconds = built
    assert seconds < BUILD_LIMIT_S, f"the build took {seconds:.1f} s (limit {BUILD_LIMIT_S} s)"
    pages = {p.stem for p in out.glob("*.html")}
    assert {*NOTEBOOKS, "index", "instructor", "finetune", "benchmark", "data", "search"} <= pages
    assert not any((out / "_sources").rglob("*.*")), "page sources published"


@pytest.mark.slow
def test_no_quiz_answer_or_feedback_anywhere_in_the_site(built: tuple[Path, float]) -> None:
    out, _ = built
    secrets = {}
    for question_id, entry in site.read_bank().items():
        for key in ("explanation", "proof"):
            if entry.get(key):
                secrets[f"{question_id} {key}"] = entry[key]
    leaks = []
    for path, text in built_text_files(out):
        plain = html.unescape(text)
        leaks += [f"{path.name}: {name}" for name, secret in secrets.items() if secret in text or secret in plain]
        leaks += [f"{path.name}: {word!r}" for word in FEEDBACK_WORDING if word in plain]
        leaks += [f"{path.name}: widget state" for marker in ("widget-state+json", "IPY_MODEL_") if marker in text]
    assert leaks == []


@pytest.mark.slow
@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_each_quiz_shows_every_option_in_bank_order_marked_up_alike(built: tuple[Path, float], stem: str) -> None:
    out, _ = built
    bank = site.read_bank()
    page = (out / f"{stem}.html").read_text(encoding="utf-8")
    cells = site.read_notebooks()[stem]["cells"]
    expected = [qid for qid in map(site.quiz_id, cells) if qid]
    blocks = re.findall(r'<div class="course-quiz" data-quiz="([^"]+)">(.*?)</div>', page, re.S)
    assert [qid for qid, _ in blocks] == expected
    for qid, block in blocks:
        options = re.findall(r"<li([^>]*)>(.*?)</li>", block, re.S)
        assert {attributes for attributes, _ in options} <= {""}, f"{qid}: an option carries attributes"
        assert [html.unescape(text) for _, text in options] == bank[qid].get("options", []), qid


@pytest.mark.slow
@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_solutions_only_inside_the_toggle_and_not_in_the_search(built: tuple[Path, float], stem: str) -> None:
    out, _ = built
    lines = solution_lines(stem)
    assert lines, f"{stem}: no solution code found to look for"
    outside, inside = page_text(out / f"{stem}.html")
    assert [line for line in lines if line not in inside] == [], "solution missing from the toggle"
    assert [line for line in lines if line in outside] == [], "solution shown outside the toggle"
    assert leaked_search_terms(out, stem, inside, outside) == []


def solution_lines(stem: str) -> set[str]:
    """Lines of the notebook's solution code that no other cell has or prints (whitespace collapsed)."""
    notebooks = site.read_notebooks()
    cells = notebooks[stem]["cells"]
    start, _ = site.solutions_start(cells) or (len(cells), 0)
    elsewhere = {  # lines that are no solution: in any cell before the Solutions, or printed by one
        line.strip()
        for name, nb in notebooks.items()
        for index, cell in enumerate(nb["cells"])
        if name != stem or index < start
        for line in (site.source_text(cell) + "\n" + cell_output_text(cell)).splitlines()
    }
    shown = "\n".join(elsewhere)  # the page is searched for a solution line as a substring: so is the lesson
    return {
        " ".join(line.split())
        for cell in cells[start:]
        if cell["cell_type"] == "code"
        for line in site.source_text(cell).splitlines()
        if len(line.strip()) >= 20 and not line.strip().startswith("#") and line.strip() not in shown
    }


def cell_output_text(cell: dict[str, Any]) -> str:
    """The text a cell printed or displayed (streams, text/plain, text/markdown)."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append(site.source_text({"source": output.get("text", "")}))
        for kind in ("text/plain", "text/markdown"):
            parts.append(site.source_text({"source": output.get("data", {}).get(kind, "")}))
    return "\n".join(parts)


def leaked_search_terms(out: Path, stem: str, inside: str, outside: str) -> list[str]:
    """Search terms that point at ``stem`` and come only from its Solutions toggle (Sphinx's own stemmer)."""
    script = """
import json, sys
from sphinx.search.en import SearchEnglish
data = json.load(sys.stdin)
lang = SearchEnglish({})
def terms(text):
    return {lang.stem(w).lower() for w in lang.split(text) if lang.word_filter(w)}
index = json.loads(data["index"][data["index"].index("(") + 1 : data["index"].rindex(")")])
doc = index["docnames"].index(data["stem"])
only_inside = terms(data["inside"]) - terms(data["outside"])
def points_here(term):
    found = (index["terms"].get(term), index["titleterms"].get(term))
    return any(doc == v or (isinstance(v, list) and doc in v) for v in found)
print(json.dumps(sorted(term for term in only_inside if points_here(term))))
"""
    payload = {"index": (out / "searchindex.js").read_text(encoding="utf-8"), "stem": stem}
    payload |= {"inside": inside, "outside": outside}
    python = site.SITE_VENV / "bin" / "python"
    result = subprocess.run([str(python), "-c", script], input=json.dumps(payload), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


@pytest.mark.slow
def test_site_workflow_passes_actionlint() -> None:
    bin_dir = site.ensure_site_venv()
    result = subprocess.run([str(bin_dir / "actionlint"), str(WORKFLOW)], capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    workflow = WORKFLOW.read_text(encoding="utf-8")
    assert (
        "make site" in workflow and "actions/upload-pages-artifact" in workflow and "actions/deploy-pages" in workflow
    )


# ---------------------------------------------------------------------------------- slow: in a browser


def chromium() -> str:
    """Debian's browser; skip (locally) or fail (CI=true) when it is missing."""
    found = shutil.which("chromium")
    if found:
        return found
    message = "chromium not found on PATH; install it with `apt-get install chromium` to read the site in a browser"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def served(built: tuple[Path, float]) -> Iterator[str]:
    """The built site over http on 127.0.0.1 (a free port), from a thread."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(built[0])))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


PAGE_FACTS = """() => ({
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  ids: [...document.querySelectorAll('[id]')].map(e => e.id),
  images: [...document.querySelectorAll('img')].map(i => ({src: i.currentSrc || i.src, alt: i.getAttribute('alt') || '',
                                                           loaded: i.complete && i.naturalWidth > 0})),
  headings: [...document.querySelectorAll('article h1, article h2, article h3, article h4, article h5, article h6')]
             .map(h => [Number(h.tagName[1]), h.textContent.trim().replace(/[#¶]$/, '').slice(0, 80)]),
  next: document.querySelector('a.right-next')?.href || null,
})"""


def heading_skips(headings: list[list[Any]]) -> list[str]:
    """Headings that go more than one level deeper than the heading before them (or a first heading not h1)."""
    skips, previous = [], 0
    for level, text in headings:
        if level > previous + 1:
            skips.append(f"h{previous} -> h{level} {text!r}")
        previous = level
    return skips


def test_heading_skips_are_found() -> None:
    assert heading_skips([[1, "a"], [2, "b"], [3, "c"], [2, "d"], [3, "e"]]) == []
    assert heading_skips([[1, "a"], [3, "b"]]) == ["h1 -> h3 'b'"]
    assert heading_skips([[2, "a"]]) == ["h0 -> h2 'a'"]


def aborted(request: Any) -> bool:
    """A request cut short because the page moved on (e.g. the favicon of a page left before it arrived): not an
    error. A file that is missing still fails the test, through its HTTP 404 response."""
    return "ERR_ABORTED" in (request.failure or "")


@pytest.mark.slow
def test_every_page_reads_cleanly_in_chromium(served: str) -> None:
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    facts: dict[str, dict[str, Any]] = {}
    snippets: dict[str, str] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on(
            "console",
            lambda m: problems.append(f"{page.url}: console {m.type}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: problems.append(f"{page.url}: page error: {e}"))
        page.on(
            "requestfailed",
            lambda r: problems.append(f"{page.url}: request failed: {r.url}") if not aborted(r) else None,
        )
        page.on(
            "response", lambda r: problems.append(f"{page.url}: HTTP {r.status}: {r.url}") if r.status >= 400 else None
        )
        queue = [served + "index.html"]
        while queue:  # every page reachable from the home page
            url = queue.pop(0)
            if url in facts:
                continue
            page.goto(url, wait_until="networkidle")
            facts[url] = page.evaluate(PAGE_FACTS)
            for link in facts[url]["links"]:
                target = link.split("#")[0]
                if target.startswith(served) and target.endswith(".html") and target not in facts:
                    queue.append(target)
        page.goto(served + "search.html", wait_until="networkidle")
        for stem in NOTEBOOKS:  # the text search result snippets are cut from
            snippets[stem] = page.evaluate(f"async () => Search.htmlToText(await (await fetch('{stem}.html')).text())")
        page.goto(served + SCREENSHOT_PAGE, wait_until="networkidle")
        page.wait_for_timeout(300)  # the theme's scroll handlers are set up
        top = page.evaluate("document.querySelector('.course-quiz').getBoundingClientRect().top + window.scrollY")
        page.mouse.wheel(0, top - 260)  # a reader's scroll: the contents then highlight the section in view
        page.wait_for_selector("#pst-page-toc-nav a.nav-link.active")
        page.wait_for_timeout(500)  # the header's scroll shadow settles
        shot = page.screenshot(animations="disabled")
        browser.close()

    for url, found in facts.items():
        for image in found["images"]:
            if not image["loaded"]:
                problems.append(f"{url}: image did not load: {image['src']}")
            if not image["alt"].strip():
                problems.append(f"{url}: image without alt text: {image['src']}")
        problems += [f"{url}: heading skip {skip}" for skip in heading_skips(found["headings"])]
        for link in found["links"]:
            target, _, anchor = link.partition("#")
            if not target.startswith(served):
                continue
            if target.endswith(".html") and target not in facts:
                problems.append(f"{url}: link to a page that did not open: {link}")
            elif not target.endswith(".html") and target != served:
                try:
                    urllib.request.urlopen(target, timeout=5).close()
                except urllib.error.URLError as error:
                    problems.append(f"{url}: broken link {link}: {error}")
            if anchor and target in facts and urllib.request.unquote(anchor) not in facts[target]["ids"]:
                problems.append(f"{url}: link to a missing anchor: {link}")
    for stem, text in snippets.items():
        if [line for line in solution_lines(stem) if line in " ".join(text.split())]:
            problems.append(f"{stem}: search snippets can quote the solutions")
    assert problems == []

    walked, url = [], served + "index.html"
    while facts.get(url, {}).get("next"):
        url = facts[url]["next"]
        walked.append(url.removeprefix(served).removesuffix(".html"))
    assert walked[: len(NOTEBOOKS)] == NOTEBOOKS, f"'next' walks {walked}"
    for stem in NOTEBOOKS:
        images = facts[f"{served}{stem}.html"]["images"]
        kept = site.load_alt_texts().get(stem, {})
        expected = [t for texts in kept.values() for t in ([texts] if isinstance(texts, str) else texts)]
        assert sorted(i["alt"] for i in images if "/_images/" in i["src"]) == sorted(expected), stem
    store_screenshot(shot)


def store_screenshot(png: bytes, path: Path = SCREENSHOT) -> None:
    """Write the README's screenshot of the site, only when it looks different (no churn from re-encoding)."""
    from PIL import Image, ImageChops

    if path.exists():
        with Image.open(path) as old, Image.open(io.BytesIO(png)) as new:
            if old.size == new.size and ImageChops.difference(old.convert("RGB"), new.convert("RGB")).getbbox() is None:
                return
    path.write_bytes(png)
