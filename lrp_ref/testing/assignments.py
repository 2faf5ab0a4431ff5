"""Classroom assignments: a student notebook without the solution, a teacher notebook with it.

``lrp-ref assignment NAME --out DIR`` writes ``DIR/NAME_student.ipynb`` (the
task, a stub in the cell marked ``# STUDENT CELL``, a check by hand and the
grader on the published cases) and ``DIR/NAME_teacher.ipynb`` (the teacher's
note, the solution, the grader on the published and on hidden random cases).
``lrp-ref grade SUBMISSION --assignment NAME`` grades a student's ``.py`` file
or filled-in notebook (only its student cell is run), or every submission in a
folder.

The assignments::

    epsilon_dense     the epsilon rule (eq. (6)) for a Dense layer
    alphabeta_conv    the alpha-beta rule (eq. (7), alpha - beta = 1) for a Conv2d layer
    residual_network  a residual network's explanation with its ledger (eq. (6) for the
                      Dense layers, the proportional split at the Residual)

The notebooks are plain nbformat-4 JSON, written without nbformat (the core
needs NumPy only).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..rules import AlphaBeta, Epsilon
from .grading import GradeReport, grade
from .grading_network import grade_network

#: The first line of the cell a student fills in (and the only cell graded from a notebook).
STUDENT_CELL = "# STUDENT CELL"


@dataclass(frozen=True)
class Assignment:
    """One assignment: the task in markdown, the stub, the solution and how it is graded."""

    name: str
    title: str
    function: str
    task: str
    stub: str
    solution: str
    check: str
    #: the grader call as the notebooks show it, with ``{seed}`` and ``{hidden}``
    grader: str
    grade: Callable[[Callable, int, bool], GradeReport]

    def grade_function(self, fn: Callable, seed: int = 0, hidden: bool = False) -> GradeReport:
        """Grade the student's function (named :attr:`function`)."""
        return self.grade(fn, seed, hidden)


# -- the three assignments ---------------------------------------------------------------------

EPSILON_TASK = r"""\
A Dense layer computes $z_j = \sum_i a_i w_{ij} + b_j$ from its input $a$. Given the
relevance $R_j$ of its outputs, the ε-rule — eq. (6) of docs/theory.md — hands each input

$$R_i = \sum_j \frac{a_i w_{ij}}{z_j + \epsilon \cdot \mathrm{sign}(z_j)} R_j,
  \qquad \mathrm{sign}(z_j) = +1 \text{ for } z_j \ge 0, \; -1 \text{ for } z_j < 0$$

(so $\mathrm{sign}(0) := +1$, and the bias $b_j$ is part of $z_j$).

**Your task:** write `lrp_epsilon_dense(a, w, b, R, epsilon)`: `a` is `(B, n_in)`, `w` is
`(n_in, n_out)` with `w[i, j]` $= w_{ij}$ (so $z$ = `a @ w + b`), `b` is `(n_out,)`, `R` is
`(B, n_out)`; return `R_in` of shape `(B, n_in)`. Use NumPy, no loops over the batch; the
samples of a batch must not mix."""

EPSILON_STUB = '''def lrp_epsilon_dense(a, w, b, R, epsilon):
    """Return R_in, shape (B, n_in): eq. (6) applied to the Dense layer z = a @ w + b."""
    return np.zeros_like(a)   # a stub: replace this line with your implementation'''

EPSILON_SOLUTION = '''def lrp_epsilon_dense(a, w, b, R, epsilon):
    """Return R_in, shape (B, n_in): eq. (6) applied to the Dense layer z = a @ w + b."""
    z = a @ w + b                                   # z_j, (B, n_out)
    s = R / (z + epsilon * np.where(z >= 0, 1.0, -1.0))   # R_j / (z_j + eps sign(z_j))
    return a * (s @ w.T)                            # R_i = a_i sum_j w_ij s_j'''

EPSILON_CHECK = '''# the hidden layer of tutorial 1, by hand: R_in = (-0.375, 3.25)
mine = lrp_epsilon_dense(np.array([[1.0, 2.0]]), np.array([[1.0, -1.0, 0.5], [1.0, 1.0, -1.0]]),
                         np.array([0.0, 0.5, 0.0]), np.array([[2.5, 2.5, 0.0]]), epsilon=1.0)
print("yours:", mine, " expected: [[-0.375  3.25 ]]")'''

ALPHABETA_TASK = r"""\
A Conv2d layer (a cross-correlation like `torch.nn.functional.conv2d`, integer `stride`,
zero `padding` on both axes; padded positions are not inputs) computes, for output channel
$c$ at position $(p, q)$, $z_j = \sum_i z_{ij} + b_c$ with $z_{ij} = a_i w_{ij}$ over the
window of $j$. The αβ-rule — eq. (7) of docs/theory.md in lrp_ref's convention,
$\alpha - \beta = 1$ — splits contributions by sign:

$$R_i = \sum_j \Big(\alpha \frac{z^+_{ij}}{z^+_j} - \beta \frac{z^-_{ij}}{z^-_j}\Big) R_j,
  \quad z^+_{ij} = \max(0, z_{ij}),\; z^+_j = \sum_i z^+_{ij} + \max(0, b_j)$$

and likewise $z^-$ with $\min$. A zero denominator gives the share 0 (never NaN).

**Your task:** write `lrp_alphabeta_conv(a, w, b, R, stride, padding, alpha, beta)`: `a`
is `(B, C_in, H, W)`, `w` is `(C_out, C_in, kh, kw)`, `b` is `(C_out,)`, `R` is
`(B, C_out, Ho, Wo)`; return `R_in` shaped like `a`. Loops over output positions are fine."""

ALPHABETA_STUB = '''def lrp_alphabeta_conv(a, w, b, R, stride, padding, alpha, beta):
    """Return R_in shaped like a: eq. (7) (alpha - beta = 1) for a Conv2d layer."""
    return np.zeros_like(a)   # a stub: replace this line with your implementation'''

ALPHABETA_SOLUTION = '''def lrp_alphabeta_conv(a, w, b, R, stride, padding, alpha, beta):
    """Return R_in shaped like a: eq. (7) (alpha - beta = 1) for a Conv2d layer."""
    B, C, H, W = a.shape
    _, _, kh, kw = w.shape
    a_pad = np.pad(a, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    R_pad = np.zeros_like(a_pad)
    for p in range(R.shape[2]):
        for q in range(R.shape[3]):
            rows = slice(p * stride, p * stride + kh)
            cols = slice(q * stride, q * stride + kw)
            z_ij = a_pad[:, None, :, rows, cols] * w[None]          # (B, C_out, C, kh, kw)
            for coefficient, z_part, b_part in (
                    (alpha, np.maximum(z_ij, 0), np.maximum(b, 0)),
                    (-beta, np.minimum(z_ij, 0), np.minimum(b, 0))):
                d = z_part.sum(axis=(2, 3, 4)) + b_part              # z+_j or z-_j
                s = np.divide(R[:, :, p, q], d, out=np.zeros_like(d), where=d != 0)
                R_pad[:, :, rows, cols] += coefficient * (
                    z_part * s[:, :, None, None, None]).sum(axis=1)
    return R_pad[:, :, padding:padding + H, padding:padding + W]'''

ALPHABETA_CHECK = '''\
# one input channel, one output, a 2x2 kernel on a 2x2 input: z_ij = (2, -1, 1, 0), b = 0
# alpha = 2, beta = 1: positive shares 2 * (2, 1) / 3, negative share -1 * (-1) / (-1)
mine = lrp_alphabeta_conv(np.array([[[[1.0, 1.0], [1.0, 0.0]]]]),
                          np.array([[[[2.0, -1.0], [1.0, 3.0]]]]), np.zeros(1),
                          np.ones((1, 1, 1, 1)), stride=1, padding=0, alpha=2.0, beta=1.0)
print("yours:", mine.ravel(), " expected: [ 1.3333 -1.      0.6667  0.    ]")'''

RESIDUAL_TASK = r"""The network is given as plain data, a list of layers (dicts):
`{"type": "dense", "path": "0", "w": (in, out), "b": (out,)}`, `{"type": "relu", "path":
"1"}` and `{"type": "residual", "path": "2", "epsilon": e, "body": [layers...]}`, which
computes $y = \mathrm{body}(x) + x$ (paths inside the body: `"2.body.0"`, ...).

Explain it for each sample's `target` class: run the forward pass, start from the target
logit ($R_L = \mathrm{onehot}(t) \cdot f(x)$), and go back layer by layer — the ε-rule
(eq. (6)) with the given `epsilon` at every Dense layer, ReLU passes relevance unchanged, and
at a Residual the relevance is split between the body and the skip in proportion to their
outputs,

$$R_{\text{body}} = \frac{z_{\text{body}}}{z + e\,\mathrm{sign}(z)} R, \quad
  R_{\text{skip}} = \frac{x}{z + e\,\mathrm{sign}(z)} R, \quad z = z_{\text{body}} + x$$

(the share is 0 where the denominator is 0); the body's input relevance and $R_{\text{skip}}$
are summed at $x$.

**Your task:** write `explain_residual(layers, x, target, epsilon)` returning your **ledger**:
a dict `{path: relevance at the input of that layer}` for every layer, the body's layers
included (`"0"` is the input relevance). Then compare $\sum_i R_i$ at each layer with the
reference ledger the grader prints: where does relevance leave?"""

RESIDUAL_STUB = '''def explain_residual(layers, x, target, epsilon):
    """Return {path: relevance at that layer's input} for every layer ("0": the input)."""
    return {"0": np.zeros_like(x)}   # a stub: replace this with your implementation'''

RESIDUAL_SOLUTION = '''def forward(layers, a):
    """The input of every layer, and the output at the end."""
    inputs = []
    for layer in layers:
        inputs.append(a)
        if layer["type"] == "dense":
            a = a @ layer["w"] + layer["b"]
        elif layer["type"] == "relu":
            a = np.maximum(a, 0)
        else:                                           # residual: y = body(x) + x
            a = forward(layer["body"], a)[-1] + a
    return inputs + [a]


def backward(layers, inputs, R, epsilon, ledger):
    for layer, a in zip(reversed(layers), reversed(inputs[:-1])):
        if layer["type"] == "dense":                   # eq. (6)
            z = a @ layer["w"] + layer["b"]
            R = a * ((R / (z + epsilon * np.where(z >= 0, 1.0, -1.0))) @ layer["w"].T)
        elif layer["type"] == "residual":              # the proportional split
            body = forward(layer["body"], a)
            z = body[-1] + a
            d = z + layer["epsilon"] * np.where(z >= 0, 1.0, -1.0)
            s = np.divide(R, d, out=np.zeros_like(R), where=d != 0)
            R = backward(layer["body"], body, body[-1] * s, epsilon, ledger) + a * s
        ledger[layer["path"]] = R
    return R


def explain_residual(layers, x, target, epsilon):
    """Return {path: relevance at that layer's input} for every layer ("0": the input)."""
    inputs = forward(layers, x)
    rows = np.arange(len(x))
    R = np.zeros_like(inputs[-1])
    R[rows, target] = inputs[-1][rows, target]
    ledger = {}
    backward(layers, inputs, R, epsilon, ledger)
    return ledger'''

RESIDUAL_CHECK = '''\
# a Residual whose body is one Dense (w = 1, b = 0), x = 2: z_body = 2, y = 4, R = 4;
# with epsilon 0: R_body = R_skip = 2, the Dense passes its 2 down, and 2 + 2 = 4 at x
layers = [{"type": "residual", "path": "0", "epsilon": 0.0, "body": [
    {"type": "dense", "path": "0.body.0", "w": np.array([[1.0]]), "b": np.zeros(1)}]}]
print("yours:", explain_residual(layers, np.array([[2.0]]), np.array([0]), 0.0),
      " expected: {'0.body.0': [[2.]], '0': [[4.]]}")'''


def _grade_epsilon(fn: Callable, seed: int, hidden: bool) -> GradeReport:
    return grade(lambda a, w, b, R: fn(a, w, b, R, epsilon=0.1), "dense",
                 rule=Epsilon(0.1), seed=seed, hidden=hidden)


def _grade_alphabeta(fn: Callable, seed: int, hidden: bool) -> GradeReport:
    return grade(lambda a, w, b, R, stride, padding: fn(a, w, b, R, stride, padding, 2.0, 1.0),
                 "conv", rule=AlphaBeta(2, 1), n_cases=24, seed=seed, hidden=hidden)


def _grade_residual(fn: Callable, seed: int, hidden: bool) -> GradeReport:
    # the network cases are random ones already: a teacher's seed hides them
    return grade_network(lambda layers, x, target: fn(layers, x, target, 0.1),
                         rule=Epsilon(0.1), seed=seed + (10_000 if hidden else 0))


ASSIGNMENTS: dict[str, Assignment] = {a.name: a for a in [
    Assignment("epsilon_dense", "the ε-rule for a Dense layer", "lrp_epsilon_dense",
               EPSILON_TASK, EPSILON_STUB, EPSILON_SOLUTION, EPSILON_CHECK,
               'grade(lambda a, w, b, R: lrp_epsilon_dense(a, w, b, R, epsilon=0.1), "dense",\n'
               '      rule=lrp.Epsilon(0.1), seed={seed}, hidden={hidden})', _grade_epsilon),
    Assignment("alphabeta_conv", "the αβ-rule for a Conv2d layer", "lrp_alphabeta_conv",
               ALPHABETA_TASK, ALPHABETA_STUB, ALPHABETA_SOLUTION, ALPHABETA_CHECK,
               "grade(lambda a, w, b, R, stride, padding: lrp_alphabeta_conv(\n"
               "          a, w, b, R, stride, padding, alpha=2.0, beta=1.0),\n"
               '      "conv", rule=lrp.AlphaBeta(2, 1), n_cases=24, seed={seed}, '
               "hidden={hidden})", _grade_alphabeta),
    Assignment("residual_network", "a residual network's explanation and its ledger",
               "explain_residual", RESIDUAL_TASK, RESIDUAL_STUB, RESIDUAL_SOLUTION,
               RESIDUAL_CHECK,
               "grade_network(lambda layers, x, target: explain_residual(layers, x, target, "
               "0.1),\n              rule=lrp.Epsilon(0.1), seed={seed} + (10_000 if {hidden} "
               "else 0))", _grade_residual),
]}


def get(name: str) -> Assignment:
    """The assignment called ``name``; a ValueError lists the names."""
    if name not in ASSIGNMENTS:
        raise ValueError(f"unknown assignment {name!r}; the assignments are "
                         f"{', '.join(ASSIGNMENTS)}")
    return ASSIGNMENTS[name]


# -- the notebooks -----------------------------------------------------------------------------

IMPORTS = ("import numpy as np\n\nimport lrp_ref as lrp\n"
           "from lrp_ref.testing import grade, grade_network\n\n"
           "np.set_printoptions(precision=4, suppress=True)")

TEACHER_NOTE = """\
> **Teacher's notebook — do not hand out.** The students get `{name}_student.ipynb`
> (the same task with a stub). Grade their submissions with
> `lrp-ref grade SUBMISSIONS/ --assignment {name}` (a `.py` file defining `{function}`, or
> their notebook: only the cell starting with `# STUDENT CELL` is run), or in Python with
> `lrp_ref.testing.assignments.get("{name}").grade_function(fn)`.
>
> *What the grader checks.* The student's function runs on generated cases — the tricky
> ones published in the student notebook first, then random ones — and each result is
> compared with `lrp_ref` under the same rule. All numbers are multiples of 1/4, so a
> mismatch is a difference in the rule, not rounding. The report shows the first
> counterexample, the reference's conservation ledger and a hint that names a cause only
> when the evidence separates it.
>
> *What it cannot prevent.* `lrp_ref` is public: a submission that calls
> `lrp.Dense(w, b).relevance(...)` (or copies `lrp_ref/rules/equations.py`) passes. The
> command line notes a submission that mentions `lrp_ref`; read those. A function that is
> tailored to the published cases does not pass the hidden ones: grade with
> `--hidden --seed N` (random cases only, from a seed you keep) for the mark.
"""


def _cell(kind: str, source: str) -> dict:
    lines = source.splitlines(keepends=True)
    cell = {"cell_type": kind, "metadata": {}, "source": lines}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def notebook(assignment: Assignment, teacher: bool) -> dict:
    """The student's or the teacher's notebook as nbformat-4 JSON (a dict)."""
    a = assignment
    title = f"# Assignment: {a.title}" + (" — teacher's version" if teacher else "")
    cells = [_cell("markdown", title + ("\n\n" + TEACHER_NOTE.format(
        name=a.name, function=a.function) if teacher else "")),
        _cell("code", IMPORTS), _cell("markdown", "## The task\n\n" + a.task)]
    if teacher:
        cells += [_cell("markdown", "## The solution (not in the student notebook)"),
                  _cell("code", f"{STUDENT_CELL}: the reference solution\n{a.solution}")]
    else:
        cells += [_cell("markdown", "## STUDENT CELL\n\nReplace the body of the function "
                                    "below with your implementation."),
                  _cell("code", f"{STUDENT_CELL}: your implementation\n{a.stub}")]
    cells += [_cell("markdown", "## Check by hand first"), _cell("code", a.check),
              _cell("markdown", "## The grader\n\nThe published cases. Read the report from "
                                "the top: how many cases passed, the first counterexample, the "
                                "ledger and the hint."),
              _cell("code", "report = " + a.grader.format(seed=0, hidden=False)
                    + "\nprint(report)")]
    if teacher:
        cells += [_cell("markdown", "## Hidden cases (for the mark)\n\nRandom cases only, "
                                    "from a seed the students do not know: change it."),
                  _cell("code", "SECRET_SEED = 2026\nreport = " + a.grader.format(
                      seed="SECRET_SEED", hidden=True) + "\nprint(report)\n"
                      "assert report.ok, 'the reference solution must pass its own grader'")]
    for k, cell in enumerate(cells):
        cell["id"] = f"{assignment.name}-{k}"   # nbformat 4.5 wants one per cell
    return {"cells": cells, "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}


def write(name: str, out: Path) -> list[Path]:
    """Write ``NAME_student.ipynb`` and ``NAME_teacher.ipynb`` into ``out``."""
    assignment = get(name)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for role, teacher in (("student", False), ("teacher", True)):
        path = out / f"{name}_{role}.ipynb"
        path.write_text(json.dumps(notebook(assignment, teacher), indent=1, ensure_ascii=False)
                        + "\n", encoding="utf-8")
        paths.append(path)
    return paths


# -- reading a submission ----------------------------------------------------------------------


def student_source(path: Path) -> str:
    """The code to run from a submission: a ``.py`` file whole, a notebook's student cell."""
    if path.suffix == ".ipynb":
        try:
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}: not a readable notebook ({error})") from None
        sources = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                   for c in cells if c.get("cell_type") == "code"]
        chosen = [s for s in sources if s.lstrip().startswith(STUDENT_CELL)]
        if not chosen:
            raise ValueError(f"{path}: no code cell starts with '{STUDENT_CELL}'")
        return "import numpy as np\n\n" + "\n\n".join(chosen)
    return path.read_text(encoding="utf-8")


def load_function(path: Path, assignment: Assignment) -> tuple[Callable, list[str]]:
    """Run a submission and return its function, with notes for the report.

    The submission runs in this process (it is the students' code: run the
    command in a place where that is acceptable, e.g. a container).
    """
    source = student_source(path)
    notes = []
    if "lrp_ref" in source:
        notes.append(f"{path.name} mentions lrp_ref: check that it does not call the "
                     "reference (the grader cannot tell)")
    namespace: dict = {"__name__": "submission", "__file__": str(path)}
    try:
        exec(compile(source, str(path), "exec"), namespace)  # the submission, as it is
    except BaseException as error:  # SystemExit and KeyboardInterrupt included: a bad file
        if isinstance(error, KeyboardInterrupt):
            raise
        raise ValueError(f"{path.name}: running it raised {type(error).__name__}: "
                         f"{error}") from None
    fn = namespace.get(assignment.function)
    if not callable(fn):
        raise ValueError(f"{path.name}: defines no function {assignment.function}()")
    return fn, notes


__all__ = ["ASSIGNMENTS", "Assignment", "get", "load_function", "notebook", "write"]
