"""The ``lrp-ref`` command."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from .network import Sequential
from .rules import AlphaBeta, Epsilon, Zero


def demo_network() -> Sequential:
    """A small fixed 4-6-3 ReLU network (seeded weights) for the demo."""
    from .layers import Dense, ReLU

    rng = np.random.default_rng(2024)
    return Sequential([
        Dense(rng.standard_normal((4, 6)) / 2, rng.standard_normal(6) / 4), ReLU(),
        Dense(rng.standard_normal((6, 3)) / 2, rng.standard_normal(3) / 4),
    ])


def demo(args: argparse.Namespace) -> int:
    """Explain one input with LRP-0, LRP-eps and LRP-alpha-beta; print the ledgers."""
    net = demo_network()
    x = np.array([[1.0, 0.5, -0.25, 2.0]])
    print(f"network:\n{net}\ninput x = {x[0].tolist()}")
    for rule in (Zero(), Epsilon(0.1), AlphaBeta(2, 1)):
        e = net.explain(x, rule=rule)
        print(f"\n== {rule}: target class {e.target[0]}, logit {e.output[0, e.target[0]]:+.6f}")
        print(f"input relevance R = {np.array2string(e.relevance[0], precision=6)}")
        print(e.ledger())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lrp-ref",
        description="lrp_ref: the pure-NumPy reference implementation of Layer-wise "
                    "Relevance Propagation (LRP).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser(
        "demo", help="explain a small built-in network with three rules and print the ledger",
        description="Explain one input of a small built-in network with LRP-0 (eq. 5), "
                    "LRP-epsilon (eq. 6) and LRP-alpha-beta (eq. 7), and print for every layer "
                    "where the relevance went: sum R_out = sum R_in + bias + stabilizer + dropped.",
    )
    demo_parser.set_defaults(run=demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lrp-ref`` command."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
