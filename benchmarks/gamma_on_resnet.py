"""Montavon's gamma and the generalised gamma on torchvision's resnet18, against Zennit.

``composites.epsilon_gamma_box`` gives every Conv2d but the first
``GeneralizedGamma`` (Zennit's ``Gamma``); here the same assignment is also run
with Montavon's ``Gamma`` in its place. A ResNet block's last convolution feeds
the addition, not a ReLU, so it receives relevance at negative outputs, where
the two rules differ (docs/peers.md, difference 3). Printed per rule: the
target logit ``f``, the input relevance ``sum R_x`` and ``sum |R_x|``, the
relevance the biases absorbed (the ledger, over all layers), and the largest
scale-relative difference per sample from Zennit's ``EpsilonGammaBox`` with its
``ResNetCanonizer``. Both sides use the stabilizer 1e-30 (lrp_ref's gamma and
box rules have none; Zennit's default 1e-6 would add a difference of about
``1e-6 / |d_j|``).

    PYTHONPATH=. python benchmarks/gamma_on_resnet.py

The model is that of tests/oracle/test_torchvision_models.py: torchvision's
initialisation (seed 1), random biases (scale 0.1) and BatchNorm statistics,
BatchNorm eps 1e-12 (Zennit's merge keeps a ``1/sqrt(1 + eps)`` factor,
docs/peers.md difference 6), float64; one 3x64x64 input drawn uniformly from
the box ``[-3, 3]``; the explained class is the largest logit. Needs the
``oracle`` extra (torch, torchvision, zennit); takes about a minute.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import lrp_ref as lrp
from lrp_ref.interop.torch import from_torch
from lrp_ref.rules.canonize import merge_batchnorm
from lrp_ref.testing import max_relative_difference

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path[:0] = [str(TESTS / "oracle"), str(TESTS)]
import peer_imports as peers  # noqa: E402

TINY = 1e-30
LOW, HIGH = -3.0, 3.0


def main() -> None:
    torch, zennit = peers.import_torch(), peers.import_zennit()
    import torchvision

    from torch_nets import randomize

    torch.manual_seed(1)
    model = randomize(torchvision.models.resnet18(weights=None), 1, 0.1, 1e-12)
    x = np.random.default_rng(0).uniform(LOW, HIGH, size=(1, 3, 64, 64))
    net = merge_batchnorm(from_torch(model, residual_epsilon=TINY))
    composite = lrp.composites.epsilon_gamma_box(LOW, HIGH, 0.25, 1e-6, TINY)

    zennit_composite = zennit.composites.EpsilonGammaBox(
        torch.tensor(LOW), torch.tensor(HIGH), epsilon=1e-6, gamma=0.25, stabilizer=TINY,
        canonizers=[zennit.torchvision.ResNetCanonizer()])
    inputs = torch.from_numpy(x).requires_grad_(True)
    with zennit.attribution.Gradient(model, zennit_composite) as attributor:
        output, _ = attributor(inputs, None)
        target = int(output.argmax())
        onehot = torch.nn.functional.one_hot(torch.tensor([target]), output.shape[1])
        _, theirs = attributor(inputs, onehot.to(output) * output)
    theirs = theirs.detach().numpy()

    generalized = composite(net)
    montavon = {path: lrp.Gamma(rule.gamma) if isinstance(rule, lrp.GeneralizedGamma) else rule
                for path, rule in generalized.items()}
    print(f"torchvision resnet18, 64x64, class {target}")
    print("| conv rule | f | sum R_x | sum abs R_x | absorbed bias | vs Zennit |")
    print("|---|---|---|---|---|---|")
    for name, rules in (("`GeneralizedGamma(0.25)`", generalized), ("`Gamma(0.25)`", montavon)):
        e = net.explain(x, target=target, rule=lambda _, rules=rules: rules)
        bias = sum(float(r.absorbed_bias[0]) for r in e.layers if not r.container)
        print(f"| {name} | {e.output[0, target]:.4g} | {e.relevance.sum():.4g} "
              f"| {np.abs(e.relevance).sum():.4g} | {bias:.4g} "
              f"| {max_relative_difference(e.relevance, theirs):.1e} |")
    print(f"| Zennit `Gamma` | | {theirs.sum():.4g} | {np.abs(theirs).sum():.4g} | | |")


if __name__ == "__main__":
    main()
