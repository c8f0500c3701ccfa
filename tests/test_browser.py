"""The learners' copy really works in JupyterLab: one headless Chromium session drives all seven notebooks.

This is the one run of the learners' copy in `make test`, as a learner meets it: the copy is built
(`make student`), installed alone into a fresh venv that sees .venv's packages, and served by
JupyterLab on 127.0.0.1 (random port, random token) with the course's settings (jupyter-config/,
what `make lab` uses). Playwright drives Debian's Chromium (never a downloaded browser, found
with shutil.which("chromium")). In one session:

- `/` lands on 01_layers.ipynb and no Jupyter-news prompt appears (the make lab settings);
- one notebook after the other, as a learner works: it is opened (no outputs yet: the copy is
  cleared) and run with its exercises unanswered: every code cell executes, no error, no stderr,
  every checker says "Not there yet"; then its first exercise is answered with its solution (from
  the teacher's Solutions section) and its checker says "All checks passed", and one quiz is
  answered (choice or number) and shows its feedback;
- 03's freeze panel freezes a block and trains; 05's fine-tune explorer re-runs for the far task;
- the browser console shows no error, the kernels used IPC, the committed notebooks are unchanged.

The teacher notebooks are executed by nbval, not here. Plumbing, not a lesson: COURSE_WORKERS=1
and one notebook at a time, so the notebooks' timing checks never share the cores with another
kernel. Locally the test is skipped when Chromium is missing (`apt-get install chromium`); under CI
a missing browser fails. A screenshot of the freeze panel lands in test-artifacts/ (plus a
full-page screenshot, the server log and the console errors when something fails).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from tools.assignments import BEGIN, END, exercises, source_cell_text
from tools.pytest_plugin import under_ci
from tools.student import NBVAL_MARKER, build
from tools.venvs import layered_venv

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
FIRST = "01_layers.ipynb"
FREEZE_PANEL_NOTEBOOK = "03_freezing.ipynb"
EXPLORER_NOTEBOOK = "05_partial_freezing.ipynb"
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_TIMEOUT_S = 90
RUN_TIMEOUT_S = 300
WIDGET_TIMEOUT_MS = 60_000

# Console messages we deliberately accept: (regex, why it is harmless). Deliberately EMPTY:
# JupyterLab 4.6 + ipywidgets 8 with these settings log no console error at all. Every console
# error and every uncaught page error fails the test; add an entry only with the reason.
IGNORED_CONSOLE_ERRORS: list[tuple[str, str]] = []

# Test-only settings on top of the course's: no windowed notebook (every cell stays in the DOM,
# so the test can see all outputs of every open notebook).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


@dataclass
class Lab:
    """A running JupyterLab: where to reach it and what it serves."""

    url: str
    token: str
    root: Path
    log: Path
    process: subprocess.Popen = field(repr=False)


def chromium() -> str:
    """The Debian browser; skip when it is missing (a skip fails the run under CI: tools/pytest_plugin.py)."""
    found = shutil.which("chromium")
    if found:
        return found
    message = "chromium not found on PATH; install it with `apt-get install chromium` to run the browser test"
    if under_ci():
        pytest.fail(f"CI is set but {message} (.ci/run installs it)", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_lab_settings(settings_dir: Path) -> None:
    for relative, values in LAB_SETTINGS.items():
        path = settings_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def wait_until_serving(lab: Lab) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if lab.process.poll() is not None:
            pytest.fail(f"JupyterLab exited with code {lab.process.returncode}:\n{lab.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{lab.url}/api/status?token={lab.token}", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer within {SERVER_START_TIMEOUT_S} s:\n{lab.log.read_text()[-3000:]}")


def shut_down(lab: Lab) -> None:
    """Ask the server to stop (it shuts its kernels down), then end its process group."""
    if lab.process.poll() is None:
        try:
            request = urllib.request.Request(
                f"{lab.url}/api/shutdown", method="POST", headers={"Authorization": f"token {lab.token}"}
            )
            urllib.request.urlopen(request, timeout=5).close()
            lab.process.wait(timeout=15)
        except (urllib.error.URLError, ConnectionError, TimeoutError, subprocess.TimeoutExpired):
            pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(lab.process.pid, sig)  # the server and anything it left in its group
        except ProcessLookupError:
            return
        try:
            lab.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            continue


@dataclass
class Answer:
    """The first exercise of a notebook: the learner's cell as shipped, and what a learner who solved it types."""

    stub: str
    solution: str


def first_exercise(path: Path) -> Answer:
    exercise = exercises(nbformat.read(path, as_version=4), path.name)[0]
    typed = source_cell_text(exercise, {}, path.name)
    solution = "\n".join(line for line in typed.splitlines() if line.strip() not in (BEGIN, END))
    return Answer(NBVAL_MARKER.sub("", exercise.stub), solution)


def learners_python(copy: Path, venv: Path, env: dict[str, str]) -> Path:
    """A fresh venv that sees .venv's packages (not its .pth files: the teacher's course_utils stays
    invisible) with only the learners' copy installed into it."""
    python = layered_venv(venv, sysconfig.get_paths()["purelib"] + "\n", with_pip=False)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"]
    subprocess.run([*pip, "--no-build-isolation", "-e", str(copy)], check=True, env=env, cwd=venv)
    return python


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """JupyterLab serving the learners' copy from its own venv, shut down whatever happens."""
    chromium()
    if not NOTEBOOKS:
        pytest.fail("notebooks/ holds no numbered notebook", pytrace=False)
    copy = tmp_path / "freezing-course-student"
    build(copy)
    root = copy / "notebooks"
    settings = tmp_path / "lab-settings"
    write_lab_settings(settings)
    runtime = Path(tempfile.mkdtemp(prefix="jr"))  # short: IPC socket paths must stay under ~100 characters
    env = {key: value for key, value in os.environ.items() if not key.startswith(("COURSE_", "PYTHON", "JUPYTER"))}
    env.update(
        # the course's settings, as make lab uses them, and .venv's server extensions (jupyter-lsp)
        JUPYTER_CONFIG_PATH=os.pathsep.join(
            [str(REPO_ROOT / "jupyter-config"), str(Path(sys.prefix, "etc", "jupyter"))]
        ),
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),  # ignore the user's own config
        JUPYTER_RUNTIME_DIR=str(runtime),
        JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),  # the notebook-signing key goes here
        COURSE_WORKERS="1",  # plumbing: compare() runs in each kernel alone, never beside a timing check
        # JupyterLab's assets and extensions (ipywidgets') live in .venv's share/, not in the learners' venv
        JUPYTER_PATH=str(Path(sys.prefix, "share", "jupyter")),
        JUPYTERLAB_DIR=str(Path(sys.prefix, "share", "jupyter", "lab")),
    )
    python = learners_python(copy, tmp_path / "venv", env)
    port, token = free_port(), secrets.token_hex(16)
    command = [
        str(python),
        "-m",
        "jupyterlab",  # the module: the learners' venv has no jupyter-lab script of its own
        "--no-browser",
        f"--port={port}",
        "--port-retries=0",
        f"--IdentityProvider.token={token}",
        f"--notebook-dir={root}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
        "--LabApp.expose_app_in_browser=True",
        "--ServerApp.terminals_enabled=False",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = tmp_path / "jupyterlab.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Lab(url=f"http://127.0.0.1:{port}", token=token, root=root, log=log, process=process)
    try:
        wait_until_serving(server)
        yield server
    finally:
        shut_down(server)
        shutil.rmtree(runtime, ignore_errors=True)
        if process.poll() is None:
            pytest.fail("JupyterLab is still running after shut-down")


def is_ignored(message: str) -> bool:
    return any(re.search(pattern, message) for pattern, _why in IGNORED_CONSOLE_ERRORS)


def test_all_notebooks_work_in_jupyterlab(lab: Lab) -> None:
    from playwright.sync_api import expect, sync_playwright

    originals = {name: (NOTEBOOK_DIR / name).read_bytes() for name in NOTEBOOKS}
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            try:
                drive_the_course(page, expect, lab, errors)
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "browser_failure.png"), full_page=True)
                shutil.copy(lab.log, ARTIFACTS / "jupyterlab.log")
                (ARTIFACTS / "browser_console_errors.txt").write_text("\n".join(errors) + "\n")
                raise
        finally:
            browser.close()
    unexpected = [e for e in errors if not is_ignored(e)]
    assert not unexpected, "browser console errors:\n" + "\n".join(unexpected)
    changed = [name for name, data in originals.items() if (NOTEBOOK_DIR / name).read_bytes() != data]
    assert not changed, f"the committed notebooks were modified: {changed}"
    assert "without encryption" not in lab.log.read_text(), "kernels still start over TCP (see jupyter-config/)"


def drive_the_course(page, expect, lab: Lab, errors: list[str]) -> None:
    # `make lab` lands on the first notebook: JupyterLab's default URL comes from jupyter-config/.
    page.goto(f"{lab.url}/?token={lab.token}", wait_until="domcontentloaded")
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=WIDGET_TIMEOUT_MS)
    page.wait_for_function(PANEL_READY, arg=FIRST, timeout=WIDGET_TIMEOUT_MS, polling=250)
    assert "/lab/tree/01_layers.ipynb" in page.url, page.url

    # As a learner works: one notebook after the other, each opened, run, answered, then left for the next.
    # One at a time, a notebook's timing checks never share the cores with another kernel, and the
    # browser never re-renders a finished notebook to switch back to it.
    for name in NOTEBOOKS:
        open_cleared(page, name, errors)
        start_run_all(page, name)
        result = page.wait_for_function(RUN_FINISHED, arg=name, timeout=RUN_TIMEOUT_S * 1000, polling=1000)
        outcome = result.json_value()
        assert outcome == "done", f"{name}: {outcome}"
        reports = page.evaluate(CELL_TEXTS, name)
        unanswered = [text for text in reports if "Exercise:" in text]
        assert unanswered and all("Not there yet" in text for text in unanswered), f"{name}: {unanswered}"
        answer_the_first_exercise(page, name, first_exercise(NOTEBOOK_DIR / name))
        answer_one_quiz(page, expect, name)
        if name == FREEZE_PANEL_NOTEBOOK:
            use_the_freeze_panel(page, expect)
        if name == EXPLORER_NOTEBOOK:
            use_the_explorer(page, expect)
    assert page.get_by_text(re.compile(r"Jupyter news", re.IGNORECASE)).count() == 0, "the news prompt appeared"


def open_cleared(page, name: str, errors: list[str]) -> None:
    """Open the notebook (the first one is open already): the cleared notebook and its widgets must render."""
    page.evaluate("(path) => { window.jupyterapp.commands.execute('docmanager:open', {path}); }", name)
    page.wait_for_function(PANEL_READY, arg=name, timeout=WIDGET_TIMEOUT_MS, polling=250)
    text = page.locator(f"#{panel_id(page, name)}").inner_text()
    assert "Error displaying widget" not in text and "model not found" not in text, f"{name}: widget error"
    assert not errors, f"console errors after opening {name}: {errors}"


def answer_the_first_exercise(page, name: str, answer: Answer) -> None:
    """Type the solution into the notebook's first exercise cell, run it, and read its checker's verdict."""
    show(page, name)
    page.wait_for_function(IS_CURRENT, arg=name, timeout=WIDGET_TIMEOUT_MS, polling=100)
    index = page.evaluate(TYPE_INTO_CELL, {"path": name, "stub": answer.stub, "solution": answer.solution})
    assert index >= 0, f"{name}: the first exercise cell was not found in the learners' copy"
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-cell'); }")
    result = page.wait_for_function(
        CELL_VERDICT, arg={"path": name, "index": index}, timeout=RUN_TIMEOUT_S * 1000, polling=500
    )
    verdict = result.json_value()
    assert "All checks passed" in verdict and "Not there yet" not in verdict, f"{name}: {verdict}"


def start_run_all(page, name: str) -> None:
    """Clear the notebook's outputs and execution counts, then start *Run All* (not awaited).

    Notebook commands act on the current notebook, so each step waits until it is the right one.
    """
    page.evaluate("(id) => window.jupyterapp.shell.activateById(id)", panel_id(page, name))
    page.wait_for_function(IS_CURRENT, arg=name, timeout=WIDGET_TIMEOUT_MS, polling=100)
    page.evaluate("async () => { await window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs'); }")
    page.wait_for_function(IS_CLEARED, arg=name, timeout=WIDGET_TIMEOUT_MS, polling=100)
    page.wait_for_function(IS_CURRENT, arg=name, timeout=WIDGET_TIMEOUT_MS, polling=100)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")


def panel_id(page, name: str) -> str:
    return page.evaluate(
        "(path) => [...window.jupyterapp.shell.widgets('main')].find(w => w.context?.path === path).id", name
    )


def show(page, name: str):
    """Bring the notebook's tab to the front; returns a locator for its panel."""
    identifier = panel_id(page, name)
    page.evaluate("(id) => window.jupyterapp.shell.activateById(id)", identifier)
    panel = page.locator(f"#{identifier}")
    panel.wait_for(state="visible", timeout=WIDGET_TIMEOUT_MS)
    return panel


def answer_one_quiz(page, expect, name: str) -> None:
    quiz = show(page, name).locator(".course-quiz").first
    quiz.scroll_into_view_if_needed()
    radios = quiz.locator('input[type="radio"]')
    if radios.count():
        radios.first.check()
    else:  # a prediction: type a number
        box = quiz.locator("input").first
        box.fill("3")
        box.press("Enter")
    reveal = quiz.locator("button", has_text="Reveal answer")
    expect(reveal).to_be_enabled(timeout=WIDGET_TIMEOUT_MS)
    reveal.click()
    expect(quiz).to_contain_text(re.compile(r"Right|Not quite|In range|Outside the range"), timeout=WIDGET_TIMEOUT_MS)


def use_the_freeze_panel(page, expect) -> None:
    panel = show(page, FREEZE_PANEL_NOTEBOOK).locator(".freeze-panel").first
    panel.scroll_into_view_if_needed()
    trainable = panel.locator(".freeze-panel-trainable")
    expect(trainable).to_contain_text("Trainable", timeout=WIDGET_TIMEOUT_MS)
    before = trainable.inner_text()
    panel.locator('.widget-checkbox input[type="checkbox"]').first.click()
    expect(trainable).not_to_have_text(before, timeout=WIDGET_TIMEOUT_MS)
    assert re.search(r"Trainable: [\d,]+ / [\d,]+ parameters", trainable.inner_text()), trainable.inner_text()
    changes = panel.locator(".freeze-panel-changes")
    changes_before = changes.inner_text()
    panel.locator("button", has_text=re.compile(r"^\s*Train")).first.click()
    expect(changes).not_to_have_text(changes_before, timeout=WIDGET_TIMEOUT_MS)
    expect(changes).to_contain_text("block", timeout=WIDGET_TIMEOUT_MS)
    panel.screenshot(path=str(ARTIFACTS / "freeze_panel.png"))


def use_the_explorer(page, expect) -> None:
    notebook = show(page, EXPLORER_NOTEBOOK)
    toggle = page.locator(".widget-toggle-buttons button", has_text="far")  # resolved inside each vbox
    explorer = notebook.locator(".widget-vbox", has=toggle).last
    explorer.scroll_into_view_if_needed()
    far = explorer.locator(".widget-toggle-buttons button", has_text="far").first
    readout = explorer.locator(".widget-html").last
    expect(readout).not_to_be_empty(timeout=WIDGET_TIMEOUT_MS)
    before = readout.inner_text()
    far.click()
    expect(readout).not_to_have_text(before, timeout=WIDGET_TIMEOUT_MS)


# The notebook at `path` is open, its kernel connected and idle.
PANEL_READY = """(path) => {
  const widget = [...window.jupyterapp.shell.widgets('main')].find(w => w.context?.path === path);
  const kernel = widget?.sessionContext?.session?.kernel;
  return !!widget && widget.context.isReady === true && !!kernel
    && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}"""

# Every code cell's output text, in order.
CELL_TEXTS = """(path) => {
  const widget = [...window.jupyterapp.shell.widgets('main')].find(w => w.context?.path === path);
  const cells = widget.content.model.cells, texts = [];
  for (let i = 0; i < cells.length; i++) {
    if (cells.get(i).type !== 'code') continue;
    texts.push(cells.get(i).outputs.toJSON().map(o => [].concat(o.text ?? '').join('')).join(''));
  }
  return texts;
}"""

# Find the cell whose source is `stub`, put `solution` in it, select it, clear its outputs; returns its index.
TYPE_INTO_CELL = """({path, stub, solution}) => {
  const widget = [...window.jupyterapp.shell.widgets('main')].find(w => w.context?.path === path);
  const cells = widget.content.model.cells;
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type === 'code' && cell.sharedModel.getSource().trim() === stub.trim()) {
      cell.sharedModel.setSource(solution);
      cell.outputs.clear();
      widget.content.activeCellIndex = i;
      return i;
    }
  }
  return -1;
}"""

# The checker's verdict printed by cell `index` once it has run and the kernel is idle.
CELL_VERDICT = """({path, index}) => {
  const widget = [...window.jupyterapp.shell.widgets('main')].find(w => w.context?.path === path);
  const text = widget.content.model.cells.get(index).outputs.toJSON().map(o => [].concat(o.text ?? o.evalue ?? '')
    .join('')).join('');
  const idle = widget.sessionContext.session?.kernel?.status === 'idle';
  return idle && /All checks passed|Not there yet|Error/.test(text) ? text : false;
}"""

# The notebook at `path` is the current one (what notebook commands act on).
IS_CURRENT = """(path) => window.jupyterapp.shell.currentWidget?.context?.path === path"""

# No code cell of the notebook at `path` has an execution count (its outputs were cleared).
IS_CLEARED = """(path) => {
  const widget = [...window.jupyterapp.shell.widgets('main')].find(w => w.context?.path === path);
  const cells = widget.content.model.cells;
  for (let i = 0; i < cells.length; i++) {
    if (cells.get(i).type === 'code' && cells.get(i).executionCount !== null) return false;
  }
  return true;
}"""

# "done" once every code cell has run and the kernel is idle; an error or a stderr output ends the wait early.
RUN_FINISHED = """(path) => {
  const widget = [...window.jupyterapp.shell.widgets('main')].find(w => w.context?.path === path);
  const cells = widget.content.model.cells;
  let pending = 0;
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code') continue;
    for (const output of cell.outputs.toJSON()) {
      if (output.output_type === 'error') return `cell ${i} raised ${output.ename}: ${output.evalue}`;
      if (output.output_type === 'stream' && output.name === 'stderr') {
        return `cell ${i} wrote to stderr: ${output.text}`;
      }
    }
    if (cell.executionCount === null && cell.sharedModel.getSource().trim() !== '') pending++;
  }
  const kernel = widget.sessionContext.session?.kernel;
  return pending === 0 && kernel?.status === 'idle' ? 'done' : false;
}"""
