"""`make assignments`: the course as an nbgrader course directory, one assignment per notebook.

    python -m tools.assignments [COURSE_DIR]     # default: build/nbgrader

Each notebook becomes ``source/NN_name/NN_name.ipynb``:

- every exercise cell is the exercise with its solution filled in between
  ``### BEGIN SOLUTION`` / ``### END SOLUTION`` (an nbgrader "solution" cell);
- after it, a locked, autograded test cell worth ``POINTS`` points: the course's own checker must
  pass, plus hidden tests (``### BEGIN HIDDEN TESTS``) that students never see;
- the Solutions section, the outputs and the ``# NBVAL_...`` markers are removed.

The solution comes from the notebook's Solutions section: the cell that calls the same checker
as the exercise cell. Its names are mapped to the exercise's names through the checker call they
share (``ex.check_frozen_backbone(solution_model, ...)`` -> ``exercise_model``).

Then ``nbgrader generate_assignment`` makes the students' version in ``release/``. nbgrader
lives in its own environment, ``build/instructor-venv`` (``requirements-instructor.txt``), never in
``.venv``: this command creates it when needed and runs nbgrader with its ``bin/`` first on ``PATH``
(nbgrader runs ``alembic``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import nbformat

from tools import NOTEBOOK_DIR, REPO_ROOT
from tools.student import NBVAL_MARKER, clear_cell, solutions_start
from tools.templates import fill
from tools.venvs import ensure_venv

DEFAULT_COURSE_DIR = REPO_ROOT / "build" / "nbgrader"
INSTRUCTOR_VENV = REPO_ROOT / "build" / "instructor-venv"
INSTRUCTOR_REQUIREMENTS = REPO_ROOT / "requirements-instructor.txt"
COURSE_ID = "freezing-layers"
POINTS = 2
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB_MARK = "YOUR CODE HERE"
PLACEHOLDERS = {"...", "pass", "return {}", "return None", "return", "raise NotImplementedError()"}
CHECKER_CALL = re.compile(r"\bex\.(check_\w+)\((.*)\)\s*;?\s*$")
EXERCISE_COMMENT = re.compile(r"^\s*#\s*Exercise\s*\d+\b.*$")

# Hidden tests per (notebook number, exercise number): checks the students never see, written
# independently of the course's checkers. Each runs after the exercise cell in the same kernel.
HIDDEN_TESTS: dict[tuple[str, int], str] = {
    ("01", 1): "from torch import nn\n"
    "assert count_parameters(nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))) == 12\n"
    "_frozen = nn.Conv2d(3, 5, 3)\n_frozen.bias.requires_grad_(False)\n"
    "assert count_parameters(_frozen) == 135\n"
    "_shared = nn.Linear(2, 2)\nassert count_parameters(nn.Sequential(_shared, _shared)) == 6",
    ("01", 2): "assert sorted(not_parameters) == sorted(name for name, _ in resnet.named_buffers())",
    ("01", 3): "assert tuple(int(v) for v in block2_shape) == (8, 32, 8, 8)",
    (
        "02",
        1,
    ): "import torch\nfrom torch import nn\nfrom torch.optim.optimizer import register_optimizer_step_pre_hook\n"
    "_layer = nn.Linear(2, 1)\n_layer.weight.grad = torch.ones(1, 2)\n_layer.bias.requires_grad_(False)\n"
    "_w, _b = _layer.weight.detach().clone(), _layer.bias.detach().clone()\n"
    "_steps = []\n"
    "_hook = register_optimizer_step_pre_hook(lambda *_: _steps.append(1))\n"
    "sgd_step(_layer, 0.25, 0.5)\n_hook.remove()\n"
    "assert not _steps, 'sgd_step used a torch.optim optimizer'\n"
    "assert torch.allclose(_layer.weight, _w - 0.25 * (1 + 0.5 * _w)) and torch.equal(_layer.bias, _b)",
    ("02", 2): "assert float(accumulation_factor) == 2.0",
    ("02", 3): "from course_utils.models import CourseCNN\n"
    "assert set(changed_in_eval_step) == {name for name, _ in CourseCNN().named_parameters()}",
    ("03", 1): "from course_utils.freezing import helpers_applied\n"
    "_frozen = [n for n, p in exercise_model.named_parameters() if not p.requires_grad]\n"
    "assert _frozen == [n for n, _ in exercise_model.named_parameters() if n.startswith(('block2.', 'block3.'))]\n"
    "assert len(_frozen) == 6 and not helpers_applied(exercise_model)",
    ("03", 2): "assert type(optimizer).__name__ == 'SGD'\n"
    "assert all(p.requires_grad for p in opt_model.parameters())\n"
    "_lr = {id(p): g['lr'] for g in optimizer.param_groups for p in g['params']}\n"
    "assert {i: _lr.get(i) for i in map(id, opt_model.block1.parameters())} == "
    "{i: 0.001 for i in map(id, opt_model.block1.parameters())}\n"
    "_rest = [p for n, p in opt_model.named_parameters() if not n.startswith('block1.')]\n"
    "assert all(_lr.get(id(p)) == 0.01 and 'momentum_buffer' in optimizer.state[p] for p in _rest)",
    ("03", 3): "from torch import nn\nfrom torchvision.models import resnet18\n"
    "_r = resnet18(weights=None)\nfc_and_bn_only(_r)\n"
    "assert _r.layer3[1].bn2.bias.requires_grad and _r.fc.weight.requires_grad\n"
    "assert not _r.conv1.weight.requires_grad and not _r.layer4[0].downsample[0].weight.requires_grad\n"
    "_m = nn.Module()\n_m.conv = nn.Conv2d(1, 2, 3)\n_m.bn = nn.BatchNorm2d(2)\n_m.fc = nn.Linear(2, 2)\n"
    "fc_and_bn_only(_m)\n"
    "assert [n for n, p in _m.named_parameters() if p.requires_grad] == "
    "['bn.weight', 'bn.bias', 'fc.weight', 'fc.bias']",
    ("04", 1): "import torch\n"
    "assert [n for n, p in exercise_model.named_parameters() if p.requires_grad] == "
    "[n for n, _ in exercise_model.named_parameters() if n.startswith('head.')]\n"
    "_device = next(exercise_model.parameters()).device\n"
    "assert tuple(exercise_model.eval()(torch.rand(2, 1, 28, 28, device=_device)).shape) == (2, 5)",
    ("04", 2): "import copy\nimport torch\n_model = copy.deepcopy(pretrained).train()\n_x = exercise_x[:10]\n"
    "_x = _x.to(next(_model.parameters()).device)\n"
    "_grad_on = []\n_h = _model.block1.register_forward_hook(lambda *_: _grad_on.append(torch.is_grad_enabled()))\n"
    "_f = cache_features(_model, _x)\n_h.remove()\n"
    "_reference = copy.deepcopy(pretrained).eval()\n"
    "with torch.no_grad():\n    _expected = _reference.features(_x)\n"
    "assert tuple(_f.shape) == (10, 256) and _f.grad_fn is None and _grad_on == [False]\n"
    "assert torch.allclose(_f, _expected, atol=1e-4)",
    ("04", 3): "assert my_crossover == next((k for k in LABELS if curve[k].paired('full', 'frozen').low > 0), None)",
    ("05", 1): "from course_utils.freezing import helpers_applied\n"
    "_frozen = [b for b in ('block1', 'block2', 'block3', 'head') "
    "if not any(p.requires_grad for p in getattr(exercise_model, b).parameters())]\n"
    "assert _frozen == ['block1', 'block3'] and not helpers_applied(exercise_model)\n"
    "assert all(p.requires_grad for p in exercise_model.block2.parameters())",
    ("05", 2): "import torch\n_optimizer = torch.optim.Adam(my_groups)\n"
    "assert sum(len(g['params']) for g in _optimizer.param_groups) == "
    "sum(1 for p in lr_model.parameters() if p.requires_grad)\n"
    "assert sorted(round(g['lr'], 12) for g in my_groups) == [2.5e-4, 5e-4, 1e-3]",
    ("05", 3): "from course_utils.experiment import Budget, Comparison, Run\n"
    "_val = {'block1': (70, 72, 71), 'block2': (80, 79, 81), 'block3': (82, 84, 83), 'head': (60, 61, 59), "
    "'all': (90, 91, 89)}\n"
    "_test = {'block1': (75, 74, 76), 'block2': (86, 85, 84), 'block3': (78, 79, 77), 'head': (62, 60, 61), "
    "'all': (88, 89, 90)}\n"
    "_c = Comparison(tuple(Run(a, s, 1e-3, _val[a][s], _test[a][s], {1e-3: _val[a][s]}, 1, None) "
    "for a in _val for s in range(3)), Budget(1, 1, (1e-3,)))\n"
    "assert pick_block(_c, ('block1', 'block2', 'block3', 'head')) == 'block3', 'not chosen on validation'\n"
    "assert pick_block(_c, ('head', 'block1')) == 'block1'",
    ("06", 1): "import torch\nfrom course_utils.models import CourseCNN\n"
    "_m = CourseCNN().eval()\n_x = torch.rand(3, 1, 28, 28)\n_out = forward_stopping_after_block2(_m, _x)\n"
    "assert all(p.requires_grad for p in _m.parameters()) and not _m.training\n"
    "assert torch.allclose(_out, _m(_x), atol=1e-5)\n_out.sum().backward()\n"
    "assert _m.block1[0].weight.grad is None and _m.block2[0].weight.grad is None\n"
    "assert _m.block3[0].weight.grad is not None and _m.head[-1].weight.grad is not None",
    ("06", 2): "from torch import nn\n"
    "_lin = nn.Linear(10, 10)\n_lin.bias.requires_grad_(False)\n"
    "assert adam_state_bytes(_lin) == 2 * 100 * 4",
    ("06", 3): "import torch\nfrom course_utils.models import CourseCNN\n"
    "_m = CourseCNN()\n_m.head.requires_grad_(False)\n_m(torch.rand(2, 1, 28, 28)).sum().backward()\n"
    "_norms = grad_norms(_m)\n"
    "assert set(_norms) == {n for n, p in _m.named_parameters() if p.requires_grad}\n"
    "assert abs(float(_norms['block1.0.weight']) - _m.block1[0].weight.grad.norm().item()) < 1e-5",
    ("07", 1): "import torch\nassert isinstance(ex_optimizer, torch.optim.SGD)\n"
    "assert {id(p) for g in ex_optimizer.param_groups for p in g['params']} == "
    "{id(p) for p in ex_model.parameters() if p.requires_grad}",
    ("07", 2): "from course_utils.freezing import helpers_applied\nfrom course_utils.models import CourseCNN\n"
    "_m = CourseCNN()\n_m.block2.requires_grad_(False)\n_m.eval()\ntrain_mode(_m)\n"
    "assert _m.head[1].training and _m.block1[1].training and not _m.block2[1].training\n"
    "assert not helpers_applied(_m)",
    ("07", 3): "import torch\nfrom course_utils.models import CourseCNN\n"
    "_m = CourseCNN()\n_before = {k: v.clone() for k, v in _m.state_dict().items()}\n"
    "_state = {k: v + 1 for k, v in _m.state_dict().items() if k.startswith('head.')}\n"
    "try:\n    load_checked(_m, {**_state, 'head.9.weight': torch.zeros(1)})\nexcept Exception:\n    pass\n"
    "else:\n    raise AssertionError('a checkpoint with an unknown key loaded silently')\n"
    "assert all(torch.equal(v, _before[k]) for k, v in _m.state_dict().items()), 'refused, but after loading'",
}


@dataclass
class Exercise:
    """One exercise: its cell, its solution cell and the checker call they share."""

    number: int
    stub: str
    solution: str


def checker_call(source: str) -> tuple[str, list[str]] | None:
    """(checker name, argument texts) of the ``ex.check_...(...)`` line in ``source``."""
    for line in source.splitlines():
        match = CHECKER_CALL.search(line)
        if match:
            return match.group(1), [a.strip() for a in _split_arguments(match.group(2))]
    return None


def _split_arguments(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current] if current.strip() else parts


def exercises(notebook: nbformat.NotebookNode, name: str) -> list[Exercise]:
    """The exercises of ``notebook``: each ``YOUR CODE HERE`` cell with the Solutions cell calling its checker."""
    start = solutions_start(notebook.cells)
    if start is None:
        raise ValueError(f"{name} has no Solutions section")
    index = start[0]
    stubs = [c.source for c in notebook.cells[:index] if c.cell_type == "code" and STUB_MARK in c.source]
    solutions = [c.source for c in notebook.cells[index:] if c.cell_type == "code" and checker_call(c.source)]
    found = []
    for number, stub in enumerate(stubs, start=1):
        call = checker_call(stub)
        if call is None:
            raise ValueError(f"{name}, exercise {number}: the exercise cell calls no ex.check_... checker")
        match = next((s for s in solutions if checker_call(s)[0] == call[0]), None)
        if match is None:
            raise ValueError(f"{name}, exercise {number}: no cell in the Solutions section calls ex.{call[0]}")
        solutions.remove(match)
        found.append(Exercise(number, stub, match))
    return found


def _rename(text: str, names: dict[str, str]) -> str:
    for old, new in names.items():
        text = re.sub(rf"\b{re.escape(old)}\b", new, text)
    return text


def source_cell_text(exercise: Exercise, names: dict[str, str], where: str) -> str:
    """The exercise cell with its solution between the nbgrader delimiters; updates ``names``."""
    stub_call, solution_call = checker_call(exercise.stub), checker_call(exercise.solution)
    if stub_call is None or solution_call is None or stub_call[0] != solution_call[0]:
        raise ValueError(f"{where}: the exercise and its solution must call the same ex.check_... checker")
    for mine, theirs in zip(solution_call[1], stub_call[1]):
        if re.fullmatch(r"\w+", mine) and re.fullmatch(r"\w+", theirs) and mine != theirs:
            names[mine] = theirs
    stub_lines = exercise.stub.splitlines()
    mark = next(i for i, line in enumerate(stub_lines) if STUB_MARK in line)
    end = mark + 1
    while end < len(stub_lines) and stub_lines[end].strip() in PLACEHOLDERS:
        end += 1
    prefix, suffix = stub_lines[:mark], stub_lines[end:]
    indent = re.match(r"\s*", stub_lines[mark]).group(0)
    body = [
        line
        for line in _rename(NBVAL_MARKER.sub("", exercise.solution), names).splitlines()
        if not CHECKER_CALL.search(line) and not EXERCISE_COMMENT.match(line)
    ]
    while body and prefix and body[0].strip() in {p.strip() for p in prefix}:  # lines the exercise already has
        body.pop(0)
    while body and not body[-1].strip():
        body.pop()
    while body and not body[0].strip():
        body.pop(0)
    if not body:
        raise ValueError(f"{where}: the solution adds nothing to the exercise cell")
    if indent and not body[0].startswith(indent):
        body = [indent + line if line.strip() else line for line in body]
    return "\n".join([*prefix, indent + BEGIN, *body, indent + END, *suffix])


def test_cell_text(exercise: Exercise, notebook_number: str, where: str) -> str:
    call = CHECKER_CALL.search(next(line for line in exercise.stub.splitlines() if CHECKER_CALL.search(line)))
    hidden = HIDDEN_TESTS.get((notebook_number, exercise.number))
    if hidden is None:
        raise ValueError(
            f"{where}: no hidden test in tools/assignments.py HIDDEN_TESTS[{(notebook_number, exercise.number)}]"
        )
    return "\n".join(
        [
            f"# Autograded: exercise {exercise.number} ({POINTS} points). The course's checker must pass.",
            f"assert ex.{call.group(1)}({call.group(2)}), "
            f'"Exercise {exercise.number} is not solved yet: read the hints above."',
            "### BEGIN HIDDEN TESTS",
            hidden,
            "### END HIDDEN TESTS",
        ]
    )


def _nbgrader(cell: nbformat.NotebookNode, grade_id: str, solution: bool, points: int | None = None) -> None:
    cell.metadata["nbgrader"] = {
        "grade": points is not None,
        "grade_id": grade_id,
        "locked": not solution,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if points is not None:
        cell.metadata["nbgrader"]["points"] = points


def source_notebook(notebook: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The nbgrader source version of a course notebook (see the module docstring)."""
    notebook = nbformat.from_dict(notebook)
    found = exercises(notebook, name)
    index = solutions_start(notebook.cells)[0]
    by_stub = {exercise.stub: exercise for exercise in found}
    names: dict[str, str] = {}
    cells = []
    for cell in notebook.cells[:index]:
        exercise = by_stub.get(cell.source) if cell.cell_type == "code" else None
        clear_cell(cell)
        cells.append(cell)
        if exercise is not None:
            where = f"{name}, exercise {exercise.number}"
            cell.source = source_cell_text(exercise, names, where)
            _nbgrader(cell, f"ex{exercise.number}_answer", solution=True)
            test = nbformat.v4.new_code_cell(test_cell_text(exercise, name[:2], where))
            _nbgrader(test, f"ex{exercise.number}_test", solution=False, points=POINTS)
            cells.append(test)
    notebook.cells = cells
    notebook.metadata.pop("widgets", None)
    return notebook


def write_course(course_dir: Path, source_dir: Path = NOTEBOOK_DIR) -> list[str]:
    """Write ``nbgrader_config.py`` and ``source/`` into ``course_dir``; returns the assignment names."""
    course_dir = Path(course_dir).resolve()
    shutil.rmtree(course_dir / "source", ignore_errors=True)
    (course_dir / "source").mkdir(parents=True)
    (course_dir / "nbgrader_config.py").write_text(
        fill("nbgrader_config.py", course_id=COURSE_ID, root=str(course_dir), repo_root=str(REPO_ROOT))
    )
    names = []
    for path in sorted(Path(source_dir).glob("[0-9][0-9]_*.ipynb")):
        notebook = source_notebook(nbformat.read(path, as_version=4), path.name)
        folder = course_dir / "source" / path.stem
        folder.mkdir()
        nbformat.write(notebook, folder / path.name)
        names.append(path.stem)
    return names


def ensure_instructor_venv(venv: Path = INSTRUCTOR_VENV, requirements: Path = INSTRUCTOR_REQUIREMENTS) -> Path:
    """The venv with nbgrader (``requirements-instructor.txt``); created or updated when needed. Returns its bin/.

    It sees every package of the venv running this function (.venv) through a ``.pth`` file, so
    only nbgrader and the few packages .venv lacks are installed into it, and .venv is never touched.
    """
    # site.addsitedir also runs .venv's own .pth files, e.g. the editable install of course_utils.
    see_this_venv = f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n"
    return ensure_venv(venv, requirements, "nbgrader", "assignments", see_this_venv, key=sys.prefix.encode())


def nbgrader_env(bin_dir: Path) -> dict[str, str]:
    """The environment to run nbgrader in: its venv's bin/ first on PATH (nbgrader calls ``alembic``)."""
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def generate(course_dir: Path, bin_dir: Path) -> None:
    """``nbgrader generate_assignment`` for every assignment in ``source/`` (the students' release)."""
    subprocess.run(
        [str(bin_dir / "nbgrader"), "generate_assignment", "*", "--force", "--log-level=WARN"],
        cwd=course_dir,
        env=nbgrader_env(bin_dir),
        check=True,
    )


def main(argv: list[str]) -> int:
    course_dir = (Path(argv[0]) if argv else DEFAULT_COURSE_DIR).resolve()
    try:
        names = write_course(course_dir)
        generate(course_dir, ensure_instructor_venv())
    except (ValueError, subprocess.CalledProcessError) as error:
        print(f"assignments not built: {error}", file=sys.stderr)
        return 1
    print(f"nbgrader course in {course_dir}: source/ and release/ for {', '.join(names)}")
    print(
        "Next: hand out release/ (or `nbgrader release_assignment` on JupyterHub), collect submissions into "
        "submitted/<student>/<assignment>/, then `nbgrader autograde <assignment>` (docs/INSTRUCTOR.md)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
