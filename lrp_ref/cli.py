"""The ``lrp-ref`` command: ``demo``, ``explain`` and ``figures``.

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
from .network import Explanation, Sequential
from .rules import AlphaBeta, Epsilon, Zero
from .rules.spec import SYNTAX, parse_rule

Array = np.ndarray

#: The three rules of the seed's equations (5)-(7), as the demo shows them.
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


def read_model(path: Path) -> Sequential:
    """A network saved with ``lrp_ref.save``; one-line errors for bad files."""
    if not path.is_file():
        raise CommandError(f"model file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise CommandError(f"{path}: not an lrp_ref model file (expected the .npz archive "
                           "lrp_ref.save writes)")
    net = load(path)
    if not isinstance(net, Sequential):
        raise CommandError(f"{path}: holds a single {type(net).__name__}, not a Sequential "
                           "network; save a Sequential")
    return net


def read_input(path: Path, net: Sequential) -> Array:
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


def read_png(path: Path, net: Sequential) -> Array:
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
        first = net.layers[0].expected_input_shape() if net.layers else None
        channels = first[1] if first is not None and len(first) == 4 else 1
        image = rgb.transpose(2, 0, 1) if channels == 3 else rgb.mean(axis=2)
    return image if image.ndim == 3 else image[None]


def as_batch(net: Sequential, x: Array, name: str) -> tuple[Array, bool]:
    """``x`` as the network's input batch; True when a batch axis had to be added.

    ``x`` may be a batch (batch axis first) or a single sample. It is tried as
    given, then with a batch axis; when neither fits, the error names the
    shape the network expects.
    """
    try:
        net.forward(x)
        return x, False
    except ValueError as as_given:
        try:
            net.forward(x[None])
            return x[None], True
        except ValueError as with_batch:
            declared = net.layers[0].expected_input_shape() if net.layers else None
            # a batch-sized array is wrong as given; anything smaller lacks the batch axis
            error = as_given if declared is not None and x.ndim >= len(declared) else with_batch
            raise CommandError(f"input {name} of shape {x.shape} does not fit the model: "
                               f"{error}") from None


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


# -- the parser ---------------------------------------------------------------------------


EXPLAIN_EPILOG = f"""\
rules (--rule): {SYNTAX}
  e.g. zero = LRP-0, seed eq. (5); eps:1e-6 = LRP-epsilon, eq. (6); alphabeta:2,1 =
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
    """The ``lrp-ref`` argument parser with its three commands."""
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
