"""The ``lrp-ref`` command: ``demo``, ``explain``, ``figures``, ``vectors``, ``grade``
and ``assignment``.

Errors are one line on stderr (``lrp-ref explain: error: ...``) with a
non-zero exit code: 2 for a malformed command line, 1 for an input the command
cannot use (a missing file, a wrong shape, a bad rule string).
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path
from typing import NoReturn

import numpy as np

from .io import load, load_array
from .network import Explanation, Network
from .rules import AlphaBeta, Epsilon, Zero
from .rules.spec import SYNTAX, parse_rule

Array = np.ndarray

#: The three rules of eqs. (5)-(7) of docs/theory.md, as the demo shows them.
#: slug -> (short name, long name, rule)
DEMO_RULES = {
    "lrp0": ("LRP-0", "LRP-0 (eq. 5)", Zero()),
    "eps": ("LRP-ε 0.1", "LRP-epsilon, epsilon = 0.1 (eq. 6)", Epsilon(0.1)),
    "alphabeta": ("LRP-α2β1", "LRP-alpha-beta, alpha = 2, beta = 1 (eq. 7)", AlphaBeta(2, 1)),
}


class CommandError(Exception):
    """An input the command cannot use; printed as one line, exit code 1."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors that point to ``--help``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# -- demo ---------------------------------------------------------------------------------


def demo(args: argparse.Namespace) -> int:
    """Explain shipped test digits with the shipped CNN under three rules; print ledgers."""
    from .zoo import models

    net = models.load("digits_cnn")
    x, y = models.data("digits_cnn", "test")
    x, y = x[:args.n], y[:args.n]
    print(f"The shipped digits CNN (lrp_ref.models.load('digits_cnn'), test accuracy "
          f"{models.CARDS['digits_cnn'].test_accuracy:.2%}) on the first {len(x)} test "
          f"digits.\nFor every layer the ledger shows where the relevance went:\n"
          f"  sum R_out = sum R_in + bias + stabilizer + dropped (+ conditioned)\n")
    explanations = {}
    for slug, (_, title, rule) in DEMO_RULES.items():
        e = net.explain(x, rule=rule)
        explanations[slug] = e
        print(f"== {title}: rule={rule!r}")
        for k in range(len(x)):
            t = e.target[k]
            print(f"digit {k}: label {y[k]}, predicted and explained {t} (logit "
                  f"{e.output[k, t]:+.4f}), sum of input relevance {e.relevance[k].sum():+.4f}")
        print(f"ledger of digit 0:\n{e.ledger(0)}\n")
    if args.out is not None:
        for path in write_demo_figures(args.out, x, y, explanations):
            print(f"wrote {path}")
    else:
        print("Run `lrp-ref demo --out DIR` to write the heatmaps as PNG files.")
    return 0


def write_demo_figures(out: Path, x: Array, y: Array,
                       explanations: dict[str, Explanation]) -> list[Path]:
    """One heatmap PNG per rule, a side-by-side comparison, and a ledger chart."""
    from .viz import plot

    out.mkdir(parents=True, exist_ok=True)
    targets = next(iter(explanations.values())).target
    labels = [f"label {label}, predicted {t}" for label, t in zip(y, targets)]
    figures = {f"demo_{slug}.png": plot.grid({DEMO_RULES[slug][1]: e.relevance}, x,
                                             row_labels=labels, cell=2.2)
               for slug, e in explanations.items()}
    figures["demo_comparison.png"] = plot.grid(
        {DEMO_RULES[slug][0]: e.relevance for slug, e in explanations.items()}, x,
        row_labels=labels)
    figures["demo_ledger.png"] = plot.ledger_chart(explanations["eps"], 0, title=(
        f"ledger of digit 0 under {DEMO_RULES['eps'][1]}"))
    paths = []
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=110, bbox_inches="tight")
        paths.append(out / name)
    return paths


# -- explain ------------------------------------------------------------------------------


def read_model(path: Path) -> Network:
    """A network saved with ``lrp_ref.save``; one-line errors for bad files."""
    if not path.is_file():
        raise CommandError(f"model file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise CommandError(f"{path}: not an lrp_ref model file (expected the .npz archive "
                           "lrp_ref.save writes)")
    net = load(path)
    if not isinstance(net, Network):
        raise CommandError(f"{path}: holds a single {type(net).__name__}, not a network; "
                           "save a Sequential or a Graph")
    return net


def read_input(path: Path, net: Network) -> Array:
    """The input array from a ``.npy`` file or an image (``.png``), as float64."""
    if not path.is_file():
        raise CommandError(f"input file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:  # bounded: the header is checked before the data is read (docs/security.md)
            x = load_array(path)
        except (ValueError, TypeError) as error:
            raise CommandError(str(error)) from None
        return x.astype(np.float64)
    if suffix == ".png":
        return read_png(path, net)
    raise CommandError(f"{path}: the input must be a .npy array or a .png image, "
                       f"got '{suffix or path.name}'")


def declared_input_shape(net: Network) -> tuple | None:
    """The input shape the network's first layer (a Graph's first node) declares, if any."""
    children = net.children()
    return children[0][1].expected_input_shape() if children else None


def read_png(path: Path, net: Network) -> Array:
    """A PNG as ``(C, H, W)`` floats in ``[0, 1]``, with the channels the network expects.

    Grey images become ``(1, H, W)``; colour images keep RGB (alpha dropped) for a
    network with 3 input channels and are averaged to grey for one with 1.
    """
    from matplotlib.image import imread

    try:
        image = np.asarray(imread(path), dtype=np.float64)
    except (OSError, ValueError, SyntaxError) as error:
        raise CommandError(f"{path}: not a readable PNG image ({error})") from None
    if image.ndim == 3:
        rgb = image[..., :3]
        first = declared_input_shape(net)
        channels = first[1] if first is not None and len(first) == 4 else 1
        image = rgb.transpose(2, 0, 1) if channels == 3 else rgb.mean(axis=2)
    return image if image.ndim == 3 else image[None]


def as_batch(net: Network, x: Array, name: str) -> tuple[Array, bool]:
    """``x`` as the network's input batch; True when a batch axis had to be added.

    ``x`` may be a batch (batch axis first) or a single sample. It is tried as
    given, then with a batch axis; when neither fits, the error names the
    shape the network expects.
    """
    try:
        net.forward(x)
        return x, False
    except ValueError as as_given:
        declared = declared_input_shape(net)
        # a batch-sized array is wrong as given (a Dense also reads (B, ..., in), which must
        # not turn an empty batch into one sample); anything smaller lacks the batch axis
        if declared is not None and x.ndim >= len(declared):
            raise CommandError(f"input {name} of shape {x.shape} does not fit the model: "
                               f"{as_given}") from None
        try:
            net.forward(x[None])
            return x[None], True
        except ValueError as with_batch:
            raise CommandError(f"input {name} of shape {x.shape} does not fit the model: "
                               f"{with_batch}") from None


def explain(args: argparse.Namespace) -> int:
    """Explain one input (or a batch) with one rule; save the relevance and a heatmap."""
    rule = parse_rule(args.rule)
    check_output(args.out, ".npy", "--out")
    check_output(args.heatmap, ".png", "--heatmap")
    net = read_model(args.model)
    x, added = as_batch(net, read_input(args.input, net), args.input.name)
    e = net.explain(x, target=args.target, rule=rule, method=args.method)
    for k in range(min(len(x), 10)):
        t = e.target[k]
        absorbed = sum(r.ledger.total()[k] for r in e.layers if not r.container)
        print(f"sample {k}: predicted class {int(np.argmax(e.output[k]))}, explained class {t}"
              f" (logit {e.output[k, t]:+.6g}); sum of input relevance "
              f"{e.relevance[k].sum():+.6g}, absorbed or dropped {absorbed:+.6g}")
    if len(x) > 10:
        print(f"... {len(x) - 10} more samples")
    if args.ledger:
        print(e.ledger(0))
    relevance = e.relevance[0] if added else e.relevance
    if args.out is not None:
        save_array(args.out, relevance)
        print(f"wrote {args.out} (relevance, shape {relevance.shape})")
    if args.heatmap is not None:
        save_heatmap(args.heatmap, x, e, args.rule)
        print(f"wrote {args.heatmap}")
    return 0


def check_output(path: Path | None, suffix: str, option: str) -> None:
    """Refuse an output path that cannot be written, before any work is done."""
    if path is None:
        return
    if path.suffix.lower() != suffix:
        raise CommandError(f"{option} must name a {suffix} file, got {path}")
    if not path.parent.is_dir():
        raise CommandError(f"{option}: directory not found: {path.parent}")


def save_array(path: Path, array: Array) -> None:
    try:
        np.save(path, array)
    except OSError as error:
        raise CommandError(f"cannot write {path} ({error.strerror or error})") from None


def save_heatmap(path: Path, x: Array, e: Explanation, title: str) -> None:
    """Images: input and heatmap per sample; features: bars (mean over the batch)."""
    from .viz import plot

    if x.ndim == 4:
        fig = plot.grid({title: e.relevance}, x, cell=2.4,
                        row_labels=[f"class {t}" for t in e.target])
    elif x.ndim == 2:
        names = [f"x[{k}]" for k in range(x.shape[1])]
        label = f"{title}, class {e.target[0]}" if len(x) == 1 else (
            f"{title}: mean over {len(x)} samples")
        fig = plot.feature_bars(e.relevance.mean(axis=0), names, title=label)
    else:
        raise CommandError(f"--heatmap needs images (B, C, H, W) or features (B, F), "
                           f"got input of shape {x.shape}")
    try:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    except OSError as error:
        raise CommandError(f"cannot write {path} ({error.strerror or error})") from None


# -- figures ------------------------------------------------------------------------------


def figures(args: argparse.Namespace) -> int:
    """Regenerate the PNG figures of the README and the docs."""
    from .viz.figures import FIGURES, make

    unknown = sorted(set(args.only or ()) - set(FIGURES))
    if unknown:
        raise CommandError(f"unknown figure(s) {unknown}; the figures are {sorted(FIGURES)}")
    for path in make(args.out, args.only or None):
        print(f"wrote {path}")
    return 0


# -- vectors ------------------------------------------------------------------------------


def vectors(args: argparse.Namespace) -> int:
    """Export the known-answer suite, or check another implementation's results against it."""
    import json

    from .testing import vectors as suite

    if args.action == "export":
        paths = suite.export(args.dir)
        print(f"wrote {len(paths) - 1} cases and {suite.MANIFEST} into {args.dir} "
              f"(schema {suite.SCHEMA}; docs/vectors.md)")
        return 0
    if not args.results.is_dir():
        raise CommandError(f"results directory not found: {args.results}")
    outcomes = suite.check(args.dir, args.results, args.cases)
    if args.skip_missing:
        outcomes = [o for o in outcomes if o.status != "missing"]
    if not outcomes:
        raise CommandError(f"no case of {args.dir} to check (--cases {args.cases!r}"
                           f"{', --skip-missing' if args.skip_missing else ''})")
    if args.json:
        print(json.dumps([o.as_dict() for o in outcomes], indent=1))
    else:
        print(suite.report(outcomes))
    return 0 if all(o.status == "pass" for o in outcomes) else 1


# -- grade and assignment ------------------------------------------------------------------


def grade_submissions(args: argparse.Namespace) -> int:
    """Grade one submission or every ``.py``/``.ipynb`` in a folder; 0 when all pass."""
    import json

    from .testing import assignments

    assignment = assignments.get(args.assignment)
    path = args.submission
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".py", ".ipynb"))
        if not files:
            raise CommandError(f"{path}: no .py or .ipynb submissions in this folder")
    elif path.is_file():
        files = [path]
    else:
        raise CommandError(f"submission not found: {path}")
    results = []
    for file in files:
        try:
            fn, notes = assignments.load_function(file, assignment)
        except ValueError as error:
            results.append({"submission": file.name, "error": str(error), "score": 0.0,
                            "ok": False})
            continue
        report = assignment.grade_function(fn, seed=args.seed, hidden=args.hidden)
        report.notes.extend(notes)
        results.append({"submission": file.name, **report.to_dict()})
        if len(files) == 1 and not args.json:
            print(report)
    if args.json:
        print(json.dumps(results if path.is_dir() else results[0], indent=1))
    elif len(files) > 1 or "error" in results[0]:
        for r in results:
            line = (f"{r['submission']}: error: {r['error']}" if "error" in r else
                    f"{r['submission']}: {r['passed']} of {r['total']} cases passed "
                    f"(score {r['score']:.2f})" + ("" if r["ok"] else
                                                   f"; hint: {r['counterexample']['hint']}"))
            print(line)
            for note in r.get("notes", []):
                print(f"  note: {note}")
    return 0 if all(r["ok"] for r in results) else 1


def write_assignment(args: argparse.Namespace) -> int:
    """Write the student and the teacher notebook of an assignment."""
    from .testing import assignments

    if args.name is None:
        for a in assignments.ASSIGNMENTS.values():
            print(f"{a.name:18s} {a.title}")
        return 0
    for path in assignments.write(args.name, args.out):
        print(f"wrote {path}")
    return 0


# -- the parser ---------------------------------------------------------------------------


EXPLAIN_EPILOG = f"""\
rules (--rule): {SYNTAX}
  e.g. zero = LRP-0, eq. (5) of docs/theory.md; eps:1e-6 = LRP-epsilon, eq. (6); alphabeta:2,1 =
  LRP-alpha-beta with alpha - beta = 1, eq. (7); the epsilon_* names are composites
  that give each layer type its own rule (see lrp_ref.composites).

input (--input): a .npy array, one sample (e.g. (1, 8, 8) for the digits models) or a
  batch (batch axis first), or a .png image (read as values in [0, 1]).

examples:
  python -c "from lrp_ref import models; import numpy as np; \\
np.save('x.npy', models.data('digits_cnn')[0][0])"
  python -c "from lrp_ref import models; import shutil; \\
shutil.copy(models.path('digits_cnn'), 'cnn.npz')"
  lrp-ref explain --model cnn.npz --input x.npy --rule eps:0.1 --out R.npy --heatmap R.png
  lrp-ref explain --model cnn.npz --input x.npy --rule epsilon_gamma_box:0,1 --ledger
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``lrp-ref`` argument parser with its six commands."""
    parser = Parser(
        prog="lrp-ref",
        description="lrp_ref: the pure-NumPy reference implementation of Layer-wise "
                    "Relevance Propagation (LRP). LRP explains a prediction by passing the "
                    "output back through the network, layer by layer, conserving relevance.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=Parser)
    demo_parser = commands.add_parser(
        "demo", help="explain shipped digits with the shipped CNN under three rules",
        description="Explain the first test digits with the shipped digits CNN (Conv2d, "
                    "BatchNorm2d, ReLU, MaxPool2d) under LRP-0 (eq. 5), LRP-epsilon (eq. 6) "
                    "and LRP-alpha-beta (eq. 7), and print for every layer where the "
                    "relevance went: sum R_out = sum R_in + bias + stabilizer + dropped. "
                    "With --out, also write heatmaps and a ledger chart as PNG files.",
    )
    demo_parser.add_argument("--out", type=Path, metavar="DIR",
                             help="write demo_*.png heatmaps and a ledger chart into DIR")
    demo_parser.add_argument("-n", type=int, default=3, choices=range(1, 11), metavar="N",
                             help="how many test digits to explain, 1 to 10 (default 3)")
    demo_parser.set_defaults(run=demo)

    explain_parser = commands.add_parser(
        "explain", help="explain a model's prediction for an input with one rule",
        description="Explain the prediction of a saved network (lrp_ref.save, .npz) for an "
                    "input: the relevance of every input element is written as a .npy array "
                    "shaped like the input, and optionally drawn as a heatmap. Relevance "
                    "starts at the target logit; the printed sums show how much of it "
                    "reached the input.",
        epilog=EXPLAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explain_parser.add_argument("--model", type=Path, required=True, metavar="M.npz",
                                help="a network saved with lrp_ref.save")
    explain_parser.add_argument("--input", type=Path, required=True, metavar="X.npy|X.png",
                                help="the input: a .npy array or a .png image")
    explain_parser.add_argument("--rule", required=True, metavar="RULE",
                                help="the LRP rule or composite, e.g. eps:1e-6, "
                                     "alphabeta:2,1, zero, epsilon_plus (list below)")
    explain_parser.add_argument("--target", type=int, metavar="T",
                                help="the class to explain (default: the predicted class)")
    explain_parser.add_argument("--out", type=Path, metavar="R.npy",
                                help="write the input relevance here (shaped like the input)")
    explain_parser.add_argument("--heatmap", type=Path, metavar="H.png",
                                help="draw the relevance (images: heatmaps; features: bars)")
    explain_parser.add_argument("--method", choices=("fast", "explicit"), default="fast",
                                help="explicit materialises every z_ij (same result; slow)")
    explain_parser.add_argument("--ledger", action="store_true",
                                help="print the conservation ledger of the first sample")
    explain_parser.set_defaults(run=explain)

    figures_parser = commands.add_parser(
        "figures", help="regenerate the PNG figures of the README and docs",
        description="Regenerate the figures (rule comparison on digits, ledger chart, "
                    "relevance flow, max-pool modes, BatchNorm treatments, heatmaps on "
                    "shapes with ground truth) from the shipped models.",
    )
    figures_parser.add_argument("--out", type=Path, default=Path("figures"), metavar="DIR",
                                help="output directory (default: figures)")
    figures_parser.add_argument("--only", nargs="+", metavar="NAME",
                                help="regenerate only these figures (file names)")
    figures_parser.set_defaults(run=figures)

    vectors_parser = commands.add_parser(
        "vectors", help="export the known-answer suite, or check results against it",
        description="Known-answer vectors for testing any LRP implementation, in any "
                    "language (docs/vectors.md). 'export DIR' writes one .npz per case and "
                    "manifest.json; 'check DIR RESULTS' compares RESULTS/<case file>.npz "
                    "(key 'relevance', shaped like the case's 'input') with the suite and "
                    "prints a report per case; the exit code is 1 unless every checked "
                    "case passes.",
    )
    actions = vectors_parser.add_subparsers(dest="action", required=True, metavar="ACTION",
                                            parser_class=Parser)
    export_parser = actions.add_parser("export", help="write the suite into DIR")
    export_parser.add_argument("dir", type=Path, metavar="DIR")
    check_parser = actions.add_parser("check", help="check RESULTS against the suite in DIR")
    check_parser.add_argument("dir", type=Path, metavar="DIR")
    check_parser.add_argument("results", type=Path, metavar="RESULTS")
    check_parser.add_argument("--json", action="store_true", help="print the report as JSON")
    check_parser.add_argument("--cases", default="*", metavar="PATTERN",
                              help="check only the cases whose names match this pattern "
                                   "(fnmatch, e.g. 'dense/eps*'; default: all)")
    check_parser.add_argument("--skip-missing", action="store_true",
                              help="check only the cases RESULTS has a file for (for an "
                                   "implementation of some rules or layers)")
    vectors_parser.set_defaults(run=vectors)
    grade_parser = commands.add_parser(
        "grade", help="grade a student's submission (or a folder of them) for an assignment",
        description="Run a student's file (a .py defining the assignment's function, or the "
                    "filled-in student notebook, of which only the cell starting with "
                    "'# STUDENT CELL' runs) and grade the function against lrp_ref. The "
                    "submission runs in this process: it is the students' code. Exit code 0 "
                    "when every submission passes every case, 1 otherwise.",
    )
    grade_parser.add_argument("submission", type=Path, metavar="PATH",
                              help="a .py or .ipynb submission, or a folder of them")
    grade_parser.add_argument("--assignment", required=True, metavar="NAME",
                              help="the assignment (lrp-ref assignment lists them)")
    grade_parser.add_argument("--seed", type=int, default=0,
                              help="seed of the random cases (default 0)")
    grade_parser.add_argument("--hidden", action="store_true",
                              help="random cases only, none of the published tricky ones "
                                   "(with a --seed the students do not know)")
    grade_parser.add_argument("--json", action="store_true",
                              help="print the reports as JSON (a list for a folder)")
    grade_parser.set_defaults(run=grade_submissions)

    assignment_parser = commands.add_parser(
        "assignment", help="write an assignment's student and teacher notebooks",
        description="Write NAME_student.ipynb (task, stub, the grader on the published "
                    "cases; no solution) and NAME_teacher.ipynb (the solution, the grader on "
                    "published and hidden cases, a teacher's note) into --out. Without NAME, "
                    "list the assignments.",
    )
    assignment_parser.add_argument("name", nargs="?", metavar="NAME",
                                   help="epsilon_dense, alphabeta_conv or residual_network")
    assignment_parser.add_argument("--out", type=Path, default=Path("."), metavar="DIR",
                                   help="output directory (default: the current one)")
    assignment_parser.set_defaults(run=write_assignment)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lrp-ref`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (CommandError, ValueError, TypeError, OSError) as error:
        message = " ".join(str(error).split())
        print(f"lrp-ref {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
