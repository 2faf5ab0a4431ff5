"""The tutorial notebooks: each runs top to bottom in a fresh kernel in under a minute,
and what it prints supports what its text says.

The committed notebooks carry their outputs (built by ``tutorials/build.py``);
here every notebook is executed again from scratch. The expected numbers in the
checks are derived by hand in the notebooks' text (and repeated in the
docstrings below), not read from the code under test.
"""

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat (the 'test' extra) not installed")
pytest.importorskip("nbclient", reason="nbclient (the 'test' extra) not installed")
pytest.importorskip("ipykernel", reason="ipykernel (the 'test' extra) not installed")

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = ROOT / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("[0-9][0-9]_*.ipynb"))
#: A notebook may take this long, kernel start included (the issue's "under a minute").
SECONDS = 60


def _load_build():
    spec = importlib.util.spec_from_file_location("tutorials_build", TUTORIALS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build()


def stream_text(nb) -> str:
    """Everything the notebook printed, in order."""
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []) if o.get("output_type") == "stream")


def images(nb) -> int:
    """How many PNG figures the notebook shows."""
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", []))


def fraction_tuple(text: str, label: str) -> tuple[float, ...]:
    """The values of ``<label> (a, b/c, ...)`` as printed by tutorial 1's ``exact``."""
    match = re.search(re.escape(label) + r"\s*\(([^)]*)\)", text)
    assert match, f"{label!r} not printed"
    values = []
    for part in match.group(1).split(","):
        num, _, den = part.strip().partition("/")
        values.append(float(num) / float(den or 1))
    return tuple(values)


# -- what each notebook must show ---------------------------------------------------------------


def check_01(out: str, nb) -> None:
    """The 2-3-1 network x = (1, 2): z = (3, 1.5, -1.5), f = 5; R_h = (3, 3, 0);
    LRP-0 R_x = (-1, 6) = Gradient x Input; eps = 1: (-3/8, 13/4);
    alpha-beta (1, 0): (5/6, 11/3); (2, 1): (-5/3, 44/3) (worked in the text)."""
    assert fraction_tuple(out, "hidden pre-activations z =") == (3, 1.5, -1.5)
    assert fraction_tuple(out, "output              f(x) =") == (5,)
    assert fraction_tuple(out, "R_h  =") == (3, 3, 0)
    assert fraction_tuple(out, "the bias takes b_j / z_j * R_j =") == (-1,)
    assert fraction_tuple(out, "R_x =") == (-1, 6)
    assert fraction_tuple(out, "R_x (LRP-0):") == (-1, 6)
    assert fraction_tuple(out, "gradient x input  :") == (-1, 6)
    assert fraction_tuple(out, "R_x (LRP-eps, eps = 1):") == (-0.375, 3.25)
    np.testing.assert_allclose(fraction_tuple(out, "R_x (alpha=1, beta=0):"), (5 / 6, 11 / 3))
    np.testing.assert_allclose(fraction_tuple(out, "R_x (alpha=2, beta=1):"), (-5 / 3, 44 / 3))
    assert out.count("paper and lrp_ref agree") == 4
    assert images(nb) >= 3


def check_02(out: str, nb) -> None:
    """Rule dependence on the digits MLP: alpha-beta (1, 0) has no negative pixel and
    shares fewer top pixels with LRP-0 than eps = 0.1 does; the stabilizers absorb more
    the larger eps."""
    assert "test accuracy: 97.1% of 450 digits" in out  # the shipped model's documented score
    table = {m.group(1).strip(): (float(m.group(2)), float(m.group(3)))
             for m in re.finditer(r"^(LRP-\S+(?: \S+)?(?: \(\d, \d\))?)\s+([\d.]+)\s+"
                                  r"([\d.]+)%$", out, re.M)}
    assert table["LRP-αβ (1, 0)"][1] == 0.0
    assert table["LRP-ε 1"][0] < table["LRP-0"][0]
    low = float(re.search(r"LRP-0 vs LRP-αβ \(1, 0\): (\S+)", out).group(1))
    high = float(re.search(r"LRP-0 vs LRP-ε 0.1: +(\S+)", out).group(1))
    assert low < high
    absorbed = [float(v) for v in re.findall(r"the stabilizers absorbed +(\S+)", out)]
    assert len(absorbed) == 5 and absorbed[0] == 0 and np.all(np.diff(absorbed) > 0)
    assert images(nb) >= 3


def check_03(out: str, nb) -> None:
    """Credit: LRP-eps follows the true per-feature effects (correlation > 0.5 for every
    real feature), the model relies on the zip digit (which has no true effect), and
    alpha-beta (1, 0) loses the income signal."""
    corr = {m.group(1): float(m.group(2)) for m in
            re.finditer(r"^(\w+)\s+(-?[\d.]+)\s+[\d.]+\s+[\d.]+$", out, re.M)}
    real = ["annual_income", "loan_amount", "years_employed", "existing_debt", "age",
            "num_late_payments"]
    assert all(corr[name] > 0.5 for name in real), corr
    change = float(re.search(r"set to average: (\S+)", out).group(1))
    assert change > 0.05
    rows = {m.group(1): [float(v) for v in m.group(2).split()] for m in
            re.finditer(r"^(\w+)((?:\s+-?\d+\.\d\d){3})$", out, re.M)}
    assert rows["annual_income"][2] < 0.3 < rows["annual_income"][0]
    assert images(nb) >= 2


def _matrix_after(out: str, label: str) -> np.ndarray:
    """The numbers of the NumPy matrix printed after ``label`` (up to the closing ']]')."""
    start = out.index(label) + len(label)
    return np.array(re.findall(r"-?\d+\.?\d*", out[start:out.index("]]", start)]), float)


def check_04(out: str, nb) -> None:
    """The 3x3 convolution worked by hand: z = (1, 8, -1, 0), R_in = (1, -1.5, 0; 0, 2,
    1.5; 0, 0, 0) with 1 dropped at the cancelling window; pooling windows (1 3; 2 0)
    with R = 6 and (2 2; 1 0) with R = 5: winner (0, 6 | 2.5, 2.5), proportional
    (1, 3, 2, 0 | 2, 2, 1, 0); explicit == fast; LRP-0 == Gradient x Input in winner
    mode except on ties."""
    np.testing.assert_array_equal(_matrix_after(out, "z ="), [1, 8, -1, 0])
    np.testing.assert_array_equal(_matrix_after(out, "R_in ="), [1, -1.5, 0, 0, 2, 1.5, 0, 0, 0])
    assert re.search(r"Conv2d\s+Zero\(True\)\s+\+4\s+\+3\s+\+0\s+\+0\s+\+1\s", out)
    np.testing.assert_array_equal(_matrix_after(out, "winner       z = [3. 2.]  R_in ="),
                                  [0, 6, 2.5, 2.5, 0, 0, 0, 0])
    np.testing.assert_array_equal(_matrix_after(out, "proportional z = [3. 2.]  R_in ="),
                                  [1, 3, 2, 2, 2, 0, 1, 0])
    np.testing.assert_array_equal(_matrix_after(out, "(R as the upstream gradient):"),
                                  [0, 6, 5, 0, 0, 0, 0, 0])
    relative = float(re.search(r"relative to max \|R\|: (\S+)", out).group(1))
    assert relative < 1e-12  # explicit vs fast in float64 (the suite's tolerance)
    counts = {m.group(1): int(m.group(2)) for m in
              re.finditer(r"^(winner|proportional)\s+LRP-0 = .* on (\d+) of 450", out, re.M)}
    assert counts["winner"] >= 440 and counts["proportional"] < 225
    nudged = float(re.search(r"after the nudge, max relative difference: (\S+)", out).group(1))
    assert nudged < 1e-12
    assert images(nb) >= 1


def check_05(out: str, nb) -> None:
    """BatchNorm a = 1.5, x = 2, c = (1, -2, -2.9): LRP-0 shares 3/4, 3, 30; eps 0.1:
    3/4.1, 3/1.1, 3/0.2; Pass: 1. Under LRP-0 affine == folded; the residual toy gives
    R_x = 5 = Gradient x Input with a 2 / 2 split."""
    row = re.search(r"Zero\(True\)\s+R_in = \[\[([^\]]*)\]\]", out)
    np.testing.assert_allclose(np.array(row.group(1).split(), float), [0.75, 3, 30])
    row = re.search(r"Epsilon\(0.1, True\)\s+R_in = \[\[([^\]]*)\]\]", out)
    np.testing.assert_allclose(np.array(row.group(1).split(), float),
                               [3 / 4.1, 3 / 1.1, 3 / 0.2], rtol=1e-3)  # printed to 4 decimals
    assert "same logits: True" in out
    diff = float(re.search(r"affine vs folded, largest difference: (\S+)", out).group(1))
    assert diff < 1e-12  # float64 rounding of relevance of order 10
    sums = {name: np.array(v.split(), float) for name, v in
            re.findall(r"sum R_x (affine|pass|folded)\s+\[([^\]]*)\]", out)[3:]}
    assert not np.allclose(sums["affine"], sums["folded"], rtol=1e-3)  # eps: they differ
    assert "f(x) = 4.0  R_x = 5.0  Gradient x Input = 5.0" in out
    assert "split: R_body = 2.0  R_short = 2.0" in out
    relative = float(re.search(r"Gradient x Input\|: (\S+)", out).group(1))
    assert relative < 1e-3  # only the split's 1e-6 stabilizer separates them
    assert images(nb) >= 5


def check_06(out: str, nb) -> None:
    """Shapes: LRP maps find the deciding object (mass accuracy far above the gradient's
    and the random map's, which is about the mask's share of the image); the box
    composites score below uniform LRP-eps on mass; pixel flipping puts LRP-eps first and
    the random map last."""
    share = float(re.search(r"mask share of the image: (\S+)", out).group(1))
    scores = out[out.index("mass accuracy"):out.index("logit after 1 step")]
    table = {m.group(1).strip(): (float(m.group(2)), float(m.group(3))) for m in
             re.finditer(r"^(\S+(?: \S+)?(?: \(\d, \d\))?)\s+([\d.]+)\s+([\d.]+)$",
                         scores, re.M)}
    assert table["random"][0] < 2 * share
    assert table["LRP-ε 0.1"][0] > 0.5 > 3 * table["Gradient"][0]
    assert table["epsilon_gamma_box"][0] < table["LRP-ε 0.1"][0]
    order = re.findall(r"^(\S+(?: \S+)?(?: \(\d, \d\))?)\s+[\d.]+\s+-?[\d.]+$",
                       out[out.index("logit after 1 step"):], re.M)
    assert order[0] == "LRP-ε 0.1" and order[-1] == "random", order
    assert images(nb) >= 2


def check_07(out: str, nb) -> None:
    """The homemade LRP-eps passes the naive test, fails the one at negative target logits
    with a large eps (a relevance-sum difference in the report: the stabilizer's sign),
    and passes once fixed; with Zennit installed, its Epsilon matches and its ZPlus is
    AlphaBeta(1, 0); without it, the notebook says it skipped."""
    assert "test 1 passed" in out
    assert "relevance not close" in out
    first_row = re.search(r"^\s+0\s+\S+\s+\S+\s+\S+\s+\d+/64\s+\S+\s+\S+\s+(\S+)\s*$", out, re.M)
    assert abs(float(first_row.group(1))) > 0.1
    assert "fixed: every target and epsilon passes at rtol=1e-9" in out
    if "are installed: comparing" in out:
        assert "Zennit Epsilon(0.5) = lrp_ref Epsilon(0.5)" in out
        assert "Zennit ZPlus = lrp_ref AlphaBeta(1, 0)" in out
    else:
        assert "Zennit is not available, so section 5 is skipped" in out


def check_08(out: str, nb) -> None:
    """As shipped, the student cell is a stub: the hand check and the grader report it
    as failing, readably (a counterexample and a hint)."""
    assert "hand check: not yet" in out
    assert re.search(r"rule Epsilon\(0.1, True\): \d+ of 40 cases passed", out)
    assert "40 of 40 cases passed" not in out
    assert "first counterexample" in out and "hint:" in out


def check_09(out: str, nb) -> None:
    """The sentence of docs/theory.md (section 5): 'brilliant' carries the positive decision;
    LRP about twice Gradient x Input on the deciding tokens, its top token deciding ~9 in 10."""
    assert "brilliant +" in out and "-> positive" in out
    scores = {m.group(1).strip(): (float(m.group(2)), float(m.group(3)))
              for m in re.finditer(r"^(LRP-0|LRP-ε \(1e-3\)|Grad x Input|sensitivity)\s+"
                                   r"([\d.]+)\s+([\d.]+)$", out, re.M)}
    assert len(scores) == 4
    assert scores["LRP-ε (1e-3)"][0] > 1.8 * scores["Grad x Input"][0]
    assert scores["LRP-ε (1e-3)"][1] > 0.85
    assert scores["sensitivity"][0] < scores["Grad x Input"][0]


def check_10(out: str, nb) -> None:
    """RAP by hand (docs/extensions.md, RAP): x = (1, 2, -1), h = (4, 1), y = (3, -3);
    first step R_h = (2, 1); general step R_x = (19/24, 53/24, 3), the layer creating 3;
    on the shapes CNN sum R = y_t, and the box input scores below the general step on mass."""
    assert fraction_tuple(out, "output y =") == (3, -3)
    assert fraction_tuple(out, "R_h (first step) =") == (2, 1)
    np.testing.assert_allclose(fraction_tuple(out, "R_x (general step) ="), (19 / 24, 53 / 24, 3))
    assert re.search(r"^0\s+Dense\s+rap\s+\+3\s+.*\s-3$", out, re.M)
    assert float(re.search(r"max \|sum R - y_t\| over \d+ images: (\S+)", out).group(1)) < 1e-10
    mass = dict(re.findall(r"^(RAP(?: box_input=False)?)\s+mass accuracy ([\d.]+)$", out, re.M))
    assert float(mass["RAP"]) < float(mass["RAP box_input=False"])
    assert images(nb) >= 1


def check_11(out: str, nb) -> None:
    """Graphs by hand (tutorial 11): the residual block's LRP-0 is (3, 2) = Gradient x
    Input, the concatenation's (2, 4); with torch, ResNet-18 imports with the forward of
    torch (1e-10 relative) and every node's ledger balances."""
    assert "R_x (ResNet block) = (3, 2)  sum: 5.0" in out
    assert "Gradient x Input   = (3, 2)" in out
    assert "R_x (concatenation) = (2, 4)" in out
    assert "layer1.0.conv1" in out
    forward = float(re.search(r"max \|lrp_ref - torch\| / max \|torch\| = (\S+)", out).group(1))
    assert forward < 1e-10
    assert float(re.search(r"largest imbalance of any node: (\S+)", out).group(1)) < 1e-12
    assert images(nb) >= 1


def check_12(out: str, nb) -> None:
    """Transformers (tutorial 12). By hand, two tokens, R = O = (1, 3/2, 2, 1), eps = 0:
    AttnLRP gives R(A) = (1/2, 3/4, 1, 1/2), R(V) = (3/2, 0, 0, 5/4), the softmax passes
    (0, -3/16 ln 3, 0, 0) and books 11/4 + 3/16 ln 3 = 2.9560, the tokens get
    3/2 - 3/32 ln 3 = 1.3970 and 5/4 - 3/32 ln 3 = 1.1470; CP-LRP R(V) = (3, 0, 0, 5/2),
    tokens (3, 5/2). LayerNorm (gamma (2, 4, 1), beta (2, 1, 1), eps 2) with R = y:
    (-1/6, 5/6, -8/3) and (-2/3, 5/6, -2/3), bias 8. The shipped model: 999/1000, both LRP
    variants rank the deciding tokens first, every ledger balances, CP-LRP's softmax gets 0,
    and CP-LRP and AttnLRP have a higher mass accuracy than Gradient x Input."""
    assert fraction_tuple(out, "AttnLRP  R(A) =") == (0.5, 0.75, 1.0, 0.5)
    assert fraction_tuple(out, "AttnLRP  R(A) = (1/2, 3/4, 1, 1/2)   R(V) =") == (
        1.5, 0.0, 0.0, 1.25)
    assert fraction_tuple(out, "AttnLRP  R(S) / ln 3 =") == (0.0, -3 / 16, 0.0, 0.0)
    ln3 = np.log(3)
    bias = float(re.search(r"AttnLRP  R\(S\).*softmax bias = (\S+)", out).group(1))
    assert bias == pytest.approx(11 / 4 + 3 / 16 * ln3, abs=1e-4)       # printed to 4 places
    tokens = re.search(r"AttnLRP  R_tokens = \((\S+), (\S+)\)", out).groups()
    assert [float(t) for t in tokens] == pytest.approx([1.5 - 3 / 32 * ln3,
                                                        1.25 - 3 / 32 * ln3], abs=1e-4)
    assert fraction_tuple(out, "CP-LRP   R(A) = (0, 0, 0, 0)   R(V) =") == (3.0, 0, 0, 2.5)
    assert "CP-LRP   R_tokens = (3.0000, 2.5000), sum 5.5000 of 5.5" in out
    assert fraction_tuple(out, "LayerNorm token 1: R_x =") == pytest.approx((-1 / 6, 5 / 6,
                                                                             -8 / 3))
    assert fraction_tuple(out, "LayerNorm token 2: R_x =") == pytest.approx((-2 / 3, 5 / 6,
                                                                             -2 / 3))
    assert "held-out accuracy: 0.999 (999/1000)" in out
    for method in ("AttnLRP", "CP-LRP"):
        assert f"negative {method:17s} top two: ['good', 'not']" in out
        assert re.search(rf"positive {method} +top two: \['(brilliant|dull)', "
                         r"'(brilliant|dull)'\]", out)
    # the model reads the first clause's adjective in reverse: "dull" there raises the
    # positive logit above a blank, which raises it above "good"
    logits = [float(re.search(rf"first adjective {re.escape(w)} +-> positive logit (\S+)",
                              out).group(1)) for w in ("dull", "<blank>", "good")]
    assert logits[0] > logits[1] > logits[2]
    imbalances = [float(v) for v in re.findall(r"largest imbalance (\S+)", out)]
    assert len(imbalances) == 2 and max(imbalances) < 1e-12
    # CP-LRP holds A constant: nothing reaches the softmax of the shipped model
    assert re.search(r"CP-LRP +logit \S+ +tokens \S+ +softmax in \+0\.000 out \+0\.0000", out)
    mass = {name: float(value) for name, value in
            re.findall(r"^(AttnLRP|CP-LRP|Gradient x Input) +(\S+) +\S+$", out, flags=re.M)}
    assert len(mass) == 3 and min(mass["AttnLRP"], mass["CP-LRP"]) > mass["Gradient x Input"]
    assert images(nb) >= 1


CHECKS = {"01_lrp_by_hand": check_01, "02_rules_on_digits": check_02,
          "03_credit_tabular": check_03, "04_cnns": check_04,
          "05_batchnorm_residual": check_05, "06_composites_evaluation": check_06,
          "07_oracle": check_07, "08_classroom_assignment": check_08,
          "09_lstm_sentiment": check_09, "10_rap": check_10, "11_graphs": check_11,
          "12_transformers": check_12}


# -- the tests ----------------------------------------------------------------------------------


def test_every_notebook_has_a_check():
    assert sorted(p.stem for p in NOTEBOOKS) == sorted(CHECKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_under_a_minute_and_shows_its_results(path):
    nb = nbformat.read(path, as_version=4)
    seconds = build.execute(nb, timeout=SECONDS)
    assert seconds < SECONDS, f"{path.name} took {seconds:.1f} s"
    CHECKS[path.stem](stream_text(nb), nb)


@pytest.mark.parametrize("source", build.sources(), ids=lambda p: p.stem)
def test_committed_notebook_is_built_from_its_source_with_outputs(source):
    assert build.mismatches(source) == []
    nb = nbformat.read(build.notebook_path(source), as_version=4)
    assert stream_text(nb) or images(nb), "committed without outputs"
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                if o.output_type == "error"]


#: A correct solution of tutorial 8's assignment, written here from eq. (6)
#: (R_i = sum_j a_i w_ij / (z_j + eps sign(z_j)) R_j, sign(0) := +1), never in the notebook.
SOLUTION = """# STUDENT CELL (a correct solution, put here by tests/test_tutorials.py)
def lrp_epsilon_dense(a, w, b, R, epsilon):
    z = a @ w + b
    denominator = z + epsilon * np.where(z >= 0, 1.0, -1.0)
    return a * ((R / denominator) @ w.T)
"""


def test_assignment_grader_passes_a_correct_solution():
    nb = nbformat.read(TUTORIALS / "08_classroom_assignment.ipynb", as_version=4)
    student = [c for c in nb.cells
               if c.cell_type == "code" and c.source.startswith("# STUDENT CELL")]
    assert len(student) == 1
    student[0].source = SOLUTION
    build.execute(nb, timeout=SECONDS)
    out = stream_text(nb)
    assert "hand check: passed" in out
    assert "grade: dense layer, rule Epsilon(0.1, True): 40 of 40 cases passed" in out
    assert "counterexample" not in out
