"""The model-zoo table of the README: the torchvision CNNs at 224x224, batch 1.

For each model (torchvision's random initial weights, random biases and BatchNorm
statistics from ``tests/torch_nets.randomize``, eval mode, as in
``tests/oracle/test_zoo.py``):

* **imports**: whether ``lrp_ref.interop.torch.from_torch`` converts it (else the error);
* **forward error**: ``max |ours - torch| / max |torch|`` of the logits, float64;
* **explain f32 / f64**: the median time of ``explain`` with ``composites.epsilon_plus()``
  (BatchNorm not merged: it gets ``Pass()``), the float32 network (``net.astype``) and the
  float64 one timed in turn after one warm-up each (``benchmarks/vgg16.alternate``), in one
  process; the explanation's relevance must be finite;
* **Zennit agreement**: not measured here: what ``tests/oracle`` asserts (:data:`ZENNIT`).

Needs the ``oracle`` extra (torch, torchvision) and the ``test`` extra (hypothesis, which
``tests/torch_nets`` imports). Writes the markdown table to stdout (and ``--out``), for
README.md and docs/models.md (tests/test_readme.py checks that their copies agree)::

    python benchmarks/zoo_table.py                      # 14 models, 3 runs, ~10 min
    python benchmarks/zoo_table.py --models resnet18 alexnet --runs 5
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, ".."), os.path.join(HERE, "..", "tests"),
                os.path.join(HERE, "..", "tests", "oracle")]

from vgg16 import alternate, relative_error  # noqa: E402

import lrp_ref as lrp  # noqa: E402

MODELS = ["alexnet", "vgg11", "vgg16", "vgg16_bn", "resnet18", "resnet50", "densenet121",
          "squeezenet1_0", "googlenet", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0",
          "shufflenet_v2_x0_5", "regnet_x_400mf"]

#: torchvision's arguments beyond ``weights=None`` (as tests/oracle/test_zoo.py).
KWARGS = {"googlenet": {"aux_logits": False, "init_weights": False}}

#: The Zennit agreement (float64) that tests/oracle asserts (<= 1e-8 relative) with the
#: largest difference measured (docs/peers.md); "not measured" where no test compares yet.
ZENNIT = {
    "resnet18": "EpsilonPlus(Flat), EpsilonAlpha2Beta1, EpsilonGammaBox + ResNetCanonizer "
                "(64x64): 3.8e-12 to 4.7e-12",
    "resnet50": "EpsilonPlus + ResNetCanonizer: 1.3e-11 (64x64), 1.8e-11 (224, "
                "`benchmarks/resnet50.py`)",
}


def imported(name: str) -> tuple[Any, Any, np.ndarray]:
    """(torch model, lrp_ref Graph or the conversion error, float64 input in [-2, 2])."""
    import peer_imports
    peer_imports.declare_torchvision_ops()   # the torchvision import trap (docs/peers.md)
    import torch
    import torchvision

    from lrp_ref.interop.torch import from_torch

    from torch_nets import randomize

    torch.manual_seed(0)
    model = randomize(getattr(torchvision.models, name)(weights=None, **KWARGS.get(name, {})),
                      0, 0.1)
    try:
        net = from_torch(model)
    except (TypeError, ValueError, NotImplementedError) as error:
        net = error
    x = np.random.default_rng(0).uniform(-2, 2, size=(1, 3, 224, 224))
    return model, net, x


def row(name: str, runs: int) -> dict[str, str]:
    import torch
    model, net, x = imported(name)
    if isinstance(net, Exception):
        return {"model": name, "imports": f"no: {type(net).__name__}: {net}"}
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    del model
    logits = net.forward(x)
    target = int(np.argmax(logits[0]))
    nets = {np.float32: net.astype(np.float32), np.float64: net}
    rule = lrp.composites.epsilon_plus()

    def explain(dtype: type) -> Any:
        relevance = nets[dtype].explain(x.astype(dtype), target, rule=rule).relevance
        if not np.isfinite(relevance).all():
            raise AssertionError(f"{name}: {np.dtype(dtype)} relevance not finite")
        return relevance

    times = alternate({"f32": lambda: explain(np.float32), "f64": lambda: explain(np.float64)},
                      runs)
    return {"model": name, "imports": "yes",
            "forward error": f"{relative_error(logits, expected):.1e}",
            "explain f32 / f64": f"{times['f32']:.2f} / {times['f64']:.2f} s",
            "Zennit agreement": ZENNIT.get(name, "not measured")}


def table(rows: list[dict[str, str]]) -> str:
    columns = ["model", "imports", "forward error", "explain f32 / f64", "Zennit agreement"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(r.get(c, "") if c != "model" else f"`{r[c]}`"
                                for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--runs", type=int, default=3, help="timed rounds per dtype")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args()
    rows = []
    start = time.perf_counter()
    for name in args.models:
        rows.append(row(name, args.runs))
        gc.collect()
        print(f"{name}: {rows[-1]}", file=sys.stderr, flush=True)
    text = table(rows)
    print(text)
    print(f"\n{platform.node()} ({os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} at the end), {time.perf_counter() - start:.0f} s, "
          f"median of {args.runs} runs", file=sys.stderr)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
