"""ResNet-50 benchmark: lrp_ref's forward and EpsilonPlus relevance against Zennit's.

torchvision's ``resnet50`` (random weights, random BatchNorm statistics, eval mode)
is imported whole with ``lrp_ref.interop.torch.from_torch`` (torch.fx), its
BatchNorms folded into the convolutions (``merge_batchnorm``), and explained at
batch 1, 3x224x224, with Zennit's ``EpsilonPlus`` composite (z+ on convolutions,
epsilon on the last layer) — on Zennit's side with its ``ResNetCanonizer``
(BatchNorm merged, the block additions as a ``Sum`` with the ``Norm`` rule).

For each dtype: agreement first (float64: relative error <= 1e-8; float32: each
library against its own float64 result), then the median of ``--runs`` rounds in
which every call is timed once in turn (lrp_ref forward, lrp_ref EpsilonPlus,
Zennit EpsilonPlus), and the peak memory of one explanation in a fresh process
per library (as ``benchmarks/vgg16.py``). Needs the ``oracle`` extra.

Usage::

    python benchmarks/resnet50.py                   # float64 and float32, 3 runs
    python benchmarks/resnet50.py --dtype float32 --runs 5
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from vgg16 import (  # noqa: E402
    ZENNIT_STABILIZER,
    ZennitExplainer,
    alternate,
    blas_threads,
    import_zennit,
    ledger_balance,
    relative_error,
    resident_mib,
)

import lrp_ref as lrp  # noqa: E402

RELATIVE_TOLERANCE_FLOAT64 = 1e-8
#: Zennit 0.5.1's MergeBatchNorm leaves a 1/sqrt(1 + eps) scaling behind (docs/peers.md,
#: difference 6): the BatchNorms get eps 1e-12 so that it is far below the tolerance.
BN_EPS = 1e-12
#: Zennit's EpsilonPlus: z+ on convolutions, epsilon 1e-6 on the last layer, and its
#: stabilizer (1e-30 here, as in benchmarks/vgg16.py) on the rules that have none in lrp_ref.
RULE = lrp.composites.epsilon_plus(1e-6, ZENNIT_STABILIZER)


def models(dtype: np.dtype, image: int) -> tuple[Any, lrp.Graph, np.ndarray]:
    """The torch model (float64 or float32), lrp_ref's merged Graph, and an input."""
    import torch
    import torchvision

    from lrp_ref.interop.torch import from_torch
    from lrp_ref.rules.canonize import merge_batchnorm

    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(1 + 0.3 * torch.randn(m.weight.shape, generator=generator))
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=generator))
                m.running_mean.copy_(0.5 * torch.randn(m.running_mean.shape,
                                                       generator=generator))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=generator))
                m.eps = BN_EPS
    model = model.double().eval()
    # the block additions split as Zennit's Norm rule on its Sum, at Zennit's stabilizer
    net = merge_batchnorm(from_torch(model, residual_epsilon=ZENNIT_STABILIZER)).astype(dtype)
    model = model.to(torch.float64 if dtype == np.float64 else torch.float32)
    x = np.random.default_rng(1).normal(size=(1, 3, image, image)).astype(dtype)
    return model, net, x


def zennit_epsilon_plus(zennit: Any) -> Any:
    from zennit.composites import EpsilonPlus
    from zennit.torchvision import ResNetCanonizer
    return EpsilonPlus(epsilon=1e-6, stabilizer=ZENNIT_STABILIZER,
                       canonizers=[ResNetCanonizer()])


def peak_memory_child(args: argparse.Namespace) -> None:
    """In a fresh process: the peak memory of one EpsilonPlus explanation, as JSON."""
    import torch
    dtype = np.dtype(args.dtype[0])
    zennit = import_zennit()
    model, net, x = models(dtype, args.image)
    target = int(np.argmax(net.forward(x)[0]))
    if args.memory_child == "lrp_ref":
        def call() -> Any:
            return net.explain(x, target, rule=RULE)
    else:
        torch.set_num_threads(blas_threads())
        explain = ZennitExplainer(model, zennit_epsilon_plus(zennit))
        xt = torch.from_numpy(x)

        def call() -> Any:
            return explain(xt, target)
    call()
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                          # Linux: reset the peak resident set (VmHWM)
    before = resident_mib("VmRSS")
    call()
    print(json.dumps({"rss_growth_mib": resident_mib("VmHWM") - before}))


def peak_memory(library: str, dtype: str, args: argparse.Namespace) -> float | None:
    if not os.path.exists("/proc/self/clear_refs"):
        return None
    command = [sys.executable, os.path.abspath(__file__), "--memory-child", library,
               "--dtype", dtype, "--image", str(args.image)]
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        print(f"  peak memory of {library} failed: {done.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])["rss_growth_mib"]


def run(dtype_name: str, args: argparse.Namespace, zennit: Any,
        float64_relevance: dict[str, np.ndarray]) -> None:
    import torch
    dtype = np.dtype(dtype_name)
    torch.set_num_threads(blas_threads())
    model, net, x = models(dtype, args.image)
    target = int(np.argmax(net.forward(x)[0]))
    rule = RULE
    explain = ZennitExplainer(model, zennit_epsilon_plus(zennit))
    xt = torch.from_numpy(x)
    print(f"\n== {dtype_name}, batch 1, input 3x{args.image}x{args.image}, "
          f"median of {args.runs} runs ==")
    ours = net.explain(x, target, rule=rule)
    theirs = explain(xt, target).detach().numpy()
    print(f"  lrp_ref plus: worst per-node ledger imbalance {ledger_balance(ours):.1e}")
    if dtype == np.float64:
        error = relative_error(ours.relevance, theirs)
        verdict = "ok" if error <= RELATIVE_TOLERANCE_FLOAT64 else "DISAGREE"
        print(f"  agreement plus: lrp_ref vs Zennit relative error {error:.1e} ({verdict}: "
              f"<= {RELATIVE_TOLERANCE_FLOAT64:g})")
        float64_relevance.update(ours=ours.relevance, theirs=theirs)
    elif float64_relevance:
        mine = relative_error(ours.relevance, float64_relevance["ours"])
        print(f"  vs own float64: lrp_ref {mine:.1e}, "
              f"Zennit {relative_error(theirs, float64_relevance['theirs']):.1e}")
    times = alternate({
        "forward": lambda: net.forward(x),
        "lrp_ref plus": lambda: net.explain(x, target, rule=rule),
        "zennit plus": lambda: explain(xt, target),
    }, args.runs)
    for name, seconds in times.items():
        ratio = "" if name == "forward" else f"  {seconds / times['forward']:.2f}x forward"
        print(f"  {name:14s} {1000 * seconds:9.1f} ms{ratio}")
    print(f"  lrp_ref / Zennit plus: {times['lrp_ref plus'] / times['zennit plus']:.2f}")
    if args.memory:
        mine, theirs_mib = (peak_memory(lib, dtype_name, args) for lib in ("lrp_ref", "zennit"))
        if mine is not None and theirs_mib is not None:
            print(f"  peak memory of one explanation: lrp_ref {mine:.0f} MiB, "
                  f"Zennit {theirs_mib:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dtype", nargs="+", default=["float64", "float32"],
                        choices=["float32", "float64"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--image", type=int, default=224)
    parser.add_argument("--no-memory", dest="memory", action="store_false")
    parser.add_argument("--memory-child", choices=["lrp_ref", "zennit"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        peak_memory_child(args)
        return
    zennit = import_zennit()
    if zennit is None:
        sys.exit("the ResNet-50 benchmark needs the oracle extra (torch, torchvision, zennit)")
    print(f"NumPy {np.__version__}, BLAS threads {blas_threads()}")
    float64_relevance: dict[str, np.ndarray] = {}
    for dtype_name in sorted(args.dtype, key=lambda d: d != "float64"):
        run(dtype_name, args, zennit, float64_relevance)


if __name__ == "__main__":
    main()
