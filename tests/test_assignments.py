"""Assignments: the student notebook holds no solution, the teacher notebook passes its own
grader, a wrong submission fails; ``lrp-ref grade`` on a file and on a folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from lrp_ref.cli import main
from lrp_ref.testing import assignments

ROOT = Path(__file__).resolve().parents[1]
NAMES = list(assignments.ASSIGNMENTS)


def solution_function(name):
    a = assignments.get(name)
    namespace = {}
    exec("import numpy as np\n" + a.solution, namespace)
    return namespace[a.function]


def test_there_are_three_assignments():
    assert NAMES == ["epsilon_dense", "alphabeta_conv", "residual_network"]


@pytest.mark.parametrize("name", NAMES)
def test_the_solution_passes_published_and_hidden_cases(name):
    a = assignments.get(name)
    fn = solution_function(name)
    assert a.grade_function(fn).ok
    report = a.grade_function(fn, seed=7, hidden=True)
    assert report.ok and report.score == 1.0


@pytest.mark.parametrize("name", NAMES)
def test_the_stub_fails(name):
    a = assignments.get(name)
    namespace = {}
    exec("import numpy as np\n" + a.stub, namespace)
    assert not a.grade_function(namespace[a.function]).ok


def execute(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    os.environ["PYTHONPATH"] = f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def text_of(nb) -> str:
    return "\n".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                     for out in cell.get("outputs", []))


@pytest.mark.parametrize("name", NAMES)
def test_exported_notebooks(name, tmp_path, capsys):
    assert main(["assignment", name, "--out", str(tmp_path)]) == 0
    student, teacher = tmp_path / f"{name}_student.ipynb", tmp_path / f"{name}_teacher.ipynb"
    assert f"wrote {student}" in capsys.readouterr().out
    a = assignments.get(name)
    student_text = student.read_text()
    # no line of the solution (but the signature and docstring it shares with the stub), no
    # teacher's note, no hidden seed in the students' copy
    stub = {line.strip() for line in a.stub.splitlines()}
    body = [line.strip() for line in a.solution.splitlines()
            if len(line.strip()) > 12 and line.strip() not in stub]
    assert body and not any(json.dumps(line)[1:-1] in student_text for line in body)
    assert "Teacher" not in student_text and "SECRET_SEED" not in student_text
    assert "STUDENT CELL" in student_text
    teacher_run = execute(teacher)          # ends with: assert report.ok (hidden cases)
    assert "cases passed" in text_of(teacher_run)
    student_run = execute(student)
    assert " 0 of " in text_of(student_run) or "cases passed" in text_of(student_run)
    assert "hint:" in text_of(student_run)  # the stub fails, with a hint


WRONG_EPSILON = """import numpy as np

def lrp_epsilon_dense(a, w, b, R, epsilon):
    z = a @ w + b
    return a * ((R / (z + epsilon)) @ w.T)      # the sign of z_j is missing
"""

CALLS_THE_LIBRARY = """import lrp_ref as lrp

def lrp_epsilon_dense(a, w, b, R, epsilon):
    layer = lrp.Dense(w, b)
    layer.forward(a)
    return layer.relevance(R, lrp.Epsilon(epsilon))
"""


def test_grade_command_on_a_folder(tmp_path, capsys):
    folder = tmp_path / "submissions"
    folder.mkdir()
    a = assignments.get("epsilon_dense")
    (folder / "alice.py").write_text("import numpy as np\n\n" + a.solution)
    (folder / "bob.py").write_text(WRONG_EPSILON)
    (folder / "carol.py").write_text(CALLS_THE_LIBRARY)
    (folder / "dave.py").write_text("def lrp_epsilon_dense(a, w, b, R, epsilon)\n")
    (folder / "erin.py").write_text("import sys\nsys.exit(3)\n")
    assignments.write("epsilon_dense", tmp_path)
    (tmp_path / "epsilon_dense_student.ipynb").rename(folder / "frank.ipynb")
    code = main(["grade", str(folder), "--assignment", "epsilon_dense"])
    out = capsys.readouterr().out
    assert code == 1
    lines = {line.split(":")[0]: line for line in out.splitlines() if not line.startswith(" ")}
    assert "40 of 40 cases passed (score 1.00)" in lines["alice.py"]
    assert "z_j < 0" in lines["bob.py"] and "score 1.00" not in lines["bob.py"]
    assert "40 of 40" in lines["carol.py"] and "carol.py mentions lrp_ref" in out
    assert "SyntaxError" in lines["dave.py"]
    assert "SystemExit" in lines["erin.py"]
    assert "of 40 cases passed" in lines["frank.ipynb"]
    assert "score 1.00" not in lines["frank.ipynb"]

    assert main(["grade", str(folder), "--assignment", "epsilon_dense", "--json",
                 "--hidden", "--seed", "11"]) == 1
    data = json.loads(capsys.readouterr().out)
    scores = {r["submission"]: r["score"] for r in data}
    assert scores["alice.py"] == 1.0 and scores["bob.py"] < 1.0 and scores["dave.py"] == 0.0
    alice = next(r for r in data if r["submission"] == "alice.py")
    assert alice["passed_cases"][0] == "random 0"          # hidden: random cases only


def test_grade_command_on_one_file(tmp_path, capsys):
    a = assignments.get("alphabeta_conv")
    path = tmp_path / "mine.py"
    path.write_text("import numpy as np\n\n" + a.solution)
    assert main(["grade", str(path), "--assignment", "alphabeta_conv"]) == 0
    assert "24 of 24 cases passed" in capsys.readouterr().out
    path.write_text("import numpy as np\n\n" + a.solution.replace("(-beta,", "(beta,"))
    assert main(["grade", str(path), "--assignment", "alphabeta_conv"]) == 1
    out = capsys.readouterr().out
    assert "first counterexample" in out and "adds the beta half" in out


def test_grade_and_assignment_errors(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "nope.py"), "--assignment", "epsilon_dense"]) == 1
    assert "submission not found" in capsys.readouterr().err
    assert main(["grade", str(tmp_path), "--assignment", "epsilon_dense"]) == 1
    assert "no .py or .ipynb submissions" in capsys.readouterr().err
    assert main(["assignment", "lstm"]) == 1
    assert "unknown assignment 'lstm'" in capsys.readouterr().err
    assert main(["assignment"]) == 0
    assert "residual_network" in capsys.readouterr().out
