"""VGG-16 benchmark: lrp_ref's forward, gradient and LRP times, and Zennit's for comparison.

The network is VGG-16-shaped (conv 3x3 stacks 64,64,M,128,128,M,256x3,M,512x3,M,
512x3,M; dense 25088-4096-4096-1000; ReLU after every layer but the last) with
fixed-seed random He-initialised weights, explained at input 3x224x224.

For each dtype it reports the median of ``--runs`` timed runs after one warm-up,
all calls alternating in one process (one round times each call once):

* forward, gradient (forward + backward), LRP-eps on all layers, ``plus``
  (AlphaBeta(1, 0) on convs, eps on dense: Zennit's EpsilonPlus) and, when the
  rule zoo provides ``Flat``, ``plus-flat`` (Flat on the first conv: Zennit's
  EpsilonPlusFlat); each also as a ratio to lrp_ref's own forward;
* the peak memory of one LRP-eps explanation: the growth of the peak resident
  set (Linux ``VmHWM``, reset before the call) over the resident set before
  the call, after one warm-up call, in a fresh subprocess per library (and
  for lrp_ref also the growth of tracemalloc's peak of NumPy's allocations);
* with torch and zennit importable (the ``oracle`` extra): Zennit on the same
  weights with the same rules. Agreement is checked first (float64: relative
  error <= 1e-8; float32: both libraries' error against their own float64
  result is reported), then Zennit's calls join the alternation and the ratio
  lrp_ref time / Zennit time of the medians is reported.

Usage::

    python benchmarks/vgg16.py                 # float32 and float64, batch 1
    python benchmarks/vgg16.py --batch 8 --dtype float32
    python benchmarks/vgg16.py --quick         # a small smoke run (narrow net, 32x32)

Without torch the Zennit part is skipped and lrp_ref's numbers are still reported.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import lrp_ref as lrp  # noqa: E402

CONV_STACKS = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
RELATIVE_TOLERANCE_FLOAT64 = 1e-8
#: How far a layer's ledger may be off, relative to sum |R_out| + sum |R_in|. Each R_i is a
#: dot product over at most K = 4608 terms, each ledger term a sum over up to 3.2M: the
#: rounding error is about (sqrt(K) + log2(n)) u ~ 90 u (u = 6e-8 in float32, 1.1e-16 in
#: float64); we allow ~1000 u.
LEDGER_TOLERANCE = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-13}
#: Zennit's non-epsilon rules (ZPlus, Flat) add a stabilizer 1e-6 to z+_j; ours do not.
#: A negligible one keeps them comparable to 1e-8 (it only prevents 0/0, like our `dropped`).
ZENNIT_STABILIZER = 1e-30


# -- the network ------------------------------------------------------------------------


def vgg16_weights(width: int = 1, image: int = 224, seed: int = 0) -> list[tuple[str, Any]]:
    """``[("conv", (w, b)), ("pool", None), ..., ("dense", (w, b))]`` in float64.

    ``width`` divides every channel count and the hidden dense sizes (``--quick``).
    Conv weights ``(C_out, C_in, 3, 3)``, dense weights ``(in, out)`` (lrp_ref layouts).
    """
    rng = np.random.default_rng(seed)
    spec: list[tuple[str, Any]] = []
    channels = 3
    for out, repeat in CONV_STACKS:
        for _ in range(repeat):
            out_w = out // width
            w = rng.normal(0, np.sqrt(2 / (channels * 9)), (out_w, channels, 3, 3))
            spec.append(("conv", (w, rng.normal(0, 0.01, out_w))))
            channels = out_w
        spec.append(("pool", None))
    sizes = [channels * (image // 32) ** 2, 4096 // width, 4096 // width, 1000]
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        spec.append(("dense", (rng.normal(0, np.sqrt(2 / n_in), (n_in, n_out)),
                               rng.normal(0, 0.01, n_out))))
    return spec


def lrp_network(spec: list[tuple[str, Any]], dtype: np.dtype) -> lrp.Sequential:
    layers: list[lrp.Layer] = []
    for kind, arrays in spec:
        if kind == "conv":
            layers += [lrp.Conv2d(arrays[0].astype(dtype), arrays[1].astype(dtype), padding=1),
                       lrp.ReLU()]
        elif kind == "pool":
            layers.append(lrp.MaxPool2d(2))
        else:
            if not any(isinstance(layer, lrp.Flatten) for layer in layers):
                layers.append(lrp.Flatten())
            layers += [lrp.Dense(arrays[0].astype(dtype), arrays[1].astype(dtype)), lrp.ReLU()]
    return lrp.Sequential(layers[:-1])          # no ReLU after the logits


def lrp_rules(net: lrp.Sequential) -> dict[str, Any]:
    """The rule assignments compared with Zennit: name -> rule specification."""
    first_conv = next(k for k, layer in enumerate(net.layers) if isinstance(layer, lrp.Conv2d))

    def per_layer(conv: Callable[[int], Any]) -> list[Any]:
        return [conv(k) if isinstance(layer, lrp.Conv2d) else
                lrp.Epsilon(1e-6) if isinstance(layer, lrp.Dense) else None
                for k, layer in enumerate(net.layers)]

    rules = {"eps": lrp.Epsilon(1e-6), "plus": per_layer(lambda k: lrp.AlphaBeta(1, 0))}
    if hasattr(lrp, "Flat"):
        rules["plus-flat"] = per_layer(
            lambda k: lrp.Flat() if k == first_conv else lrp.AlphaBeta(1, 0))
    return rules


def blas_threads() -> int:
    """The number of threads NumPy's BLAS uses (threadpoolctl if present, else the env/cores)."""
    try:
        from threadpoolctl import threadpool_info
        return max(info["num_threads"] for info in threadpool_info()
                   if info.get("user_api") == "blas")
    except (ImportError, ValueError):
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            if os.environ.get(name, "").isdigit():
                return int(os.environ[name])
        return len(os.sched_getaffinity(0))


# -- Zennit (optional) ------------------------------------------------------------------


def import_zennit() -> Any:
    """zennit via the oracle tests' torchvision workaround (tests/oracle/peer_imports.py);
    None when the oracle extra is missing."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                    "oracle"))
    try:
        from peer_imports import import_zennit as load
        return load()
    except ImportError as error:
        print(f"Zennit comparison skipped: {error}")
        return None


def torch_network(spec: list[tuple[str, Any]], dtype: np.dtype) -> Any:
    import torch
    layers: list[Any] = []
    for kind, arrays in spec:
        if kind == "conv":
            conv = torch.nn.Conv2d(arrays[0].shape[1], arrays[0].shape[0], 3, padding=1)
            conv.weight.data = torch.from_numpy(arrays[0].astype(dtype))
            conv.bias.data = torch.from_numpy(arrays[1].astype(dtype))
            layers += [conv, torch.nn.ReLU()]
        elif kind == "pool":
            layers.append(torch.nn.MaxPool2d(2))
        else:
            if not any(isinstance(layer, torch.nn.Flatten) for layer in layers):
                layers.append(torch.nn.Flatten())
            dense = torch.nn.Linear(*arrays[0].shape)
            dense.weight.data = torch.from_numpy(np.ascontiguousarray(arrays[0].T.astype(dtype)))
            dense.bias.data = torch.from_numpy(arrays[1].astype(dtype))
            layers += [dense, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1]).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def zennit_composites(zennit: Any) -> dict[str, Any]:
    """Zennit's composites for the same rule assignments as :func:`lrp_rules`."""
    import torch
    from zennit.composites import EpsilonPlus, EpsilonPlusFlat, LayerMapComposite
    from zennit.rules import Epsilon, Pass
    from zennit.types import Activation, Convolution
    return {
        "eps": LayerMapComposite([(Activation, Pass()), (Convolution, Epsilon(1e-6)),
                                  (torch.nn.Linear, Epsilon(1e-6))]),
        "plus": EpsilonPlus(epsilon=1e-6, stabilizer=ZENNIT_STABILIZER),
        "plus-flat": EpsilonPlusFlat(epsilon=1e-6, stabilizer=ZENNIT_STABILIZER),
    }


class ZennitExplainer:
    """``explain(x, target)`` with Zennit: the relevance of the target logit.

    Each call registers the composite's hooks on the model for that call only
    (Zennit's ``Gradient(model, composite)(x, ...)``), so several composites can
    share one model.
    """

    def __init__(self, model: Any, composite: Any) -> None:
        from zennit.attribution import Gradient
        self.attributor = Gradient(model, composite)

    def __call__(self, x: Any, target: int) -> Any:
        def seed(output: Any) -> Any:          # R_L = onehot(target) * f(x), as lrp_ref
            mask = output.new_zeros(output.shape)
            mask[:, target] = 1
            return output * mask
        _, relevance = self.attributor(x, seed)
        return relevance


# -- measuring --------------------------------------------------------------------------


def alternate(fns: dict[str, Callable[[], Any]], runs: int) -> dict[str, float]:
    """Median times of several functions, one warm-up each, then ``runs`` rounds in which
    each is timed once in turn: all medians (and so all ratios) come from the same time
    span, which keeps them comparable on a machine whose load varies."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``max |a - b| / max |b|``."""
    return float(np.abs(a - b).max() / np.abs(b).max())


def ledger_balance(explanation: lrp.Explanation) -> float:
    """The worst per-layer imbalance relative to the relevance that layer moved."""
    worst = 0.0
    for r in explanation.layers:
        scale = (np.abs(r.relevance_out).reshape(len(r.relevance_out), -1).sum(1)
                 + np.abs(r.relevance_in).reshape(len(r.relevance_in), -1).sum(1))
        worst = max(worst, float(np.max(np.abs(r.imbalance()) / scale)))
    return worst


def peak_memory_child(args: argparse.Namespace) -> None:
    """In a fresh process: the peak memory of one explanation, printed as JSON."""
    dtype = np.dtype(args.dtype[0])
    spec = vgg16_weights(args.width, args.image)
    x = np.random.default_rng(1).normal(size=(args.batch, 3, args.image, args.image))
    if args.memory_child == "lrp_ref":
        net = lrp_network(spec, dtype)
        x = x.astype(dtype)
        target = int(np.argmax(net.forward(x)[0]))

        def call() -> Any:
            return net.explain(x, target, rule=lrp.Epsilon(1e-6))
    else:
        import torch
        zennit = import_zennit()
        torch.set_num_threads(blas_threads())
        model = torch_network(spec, dtype)
        xt = torch.from_numpy(x.astype(dtype))
        target = int(model(xt)[0].argmax())
        call_zennit = ZennitExplainer(model, zennit_composites(zennit)["eps"])

        def call() -> Any:
            return call_zennit(xt, target)
    del spec
    traced = args.memory_child == "lrp_ref"   # NumPy reports its allocations to tracemalloc
    if traced:
        tracemalloc.start()
    call()                                    # warm-up: one-time allocations are not counted
    gc.collect()
    result: dict[str, float] = {}
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                          # Linux: reset the peak resident set (VmHWM)
    before = resident_mib("VmRSS")
    if traced:
        tracemalloc.reset_peak()
        live = tracemalloc.get_traced_memory()[0]
    call()
    if traced:
        result["tracemalloc_growth_mib"] = (tracemalloc.get_traced_memory()[1] - live) / 2**20
    result["rss_growth_mib"] = resident_mib("VmHWM") - before
    print(json.dumps(result))


def resident_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_memory(library: str, dtype: str, args: argparse.Namespace) -> dict[str, float] | None:
    if not os.path.exists("/proc/self/clear_refs"):
        return None
    command = [sys.executable, os.path.abspath(__file__), "--memory-child", library,
               "--dtype", dtype, "--batch", str(args.batch), "--width", str(args.width),
               "--image", str(args.image)]
    # glibc otherwise keeps freed blocks of up to 32 MiB in its heap (and in the resident
    # set): a fixed mmap threshold returns every large block at free, for both libraries
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        print(f"  peak memory of {library} failed: {done.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the report -------------------------------------------------------------------------


def run(dtype_name: str, args: argparse.Namespace, zennit: Any,
        float64_relevance: dict[str, np.ndarray]) -> None:
    """Time, check and report one dtype; ``float64_relevance`` carries float64 results."""
    dtype = np.dtype(dtype_name)
    spec = vgg16_weights(args.width, args.image)
    net = lrp_network(spec, dtype)
    x = np.random.default_rng(1).normal(size=(args.batch, 3, args.image, args.image)).astype(dtype)
    target = int(np.argmax(net.forward(x)[0]))
    rules = lrp_rules(net)
    print(f"\n== {dtype_name}, batch {args.batch}, input 3x{args.image}x{args.image}, "
          f"median of {args.runs} runs ==")

    # every timed call, in the order of one round of the alternation
    calls: dict[str, Callable[[], Any]] = {"forward": lambda: net.forward(x),
                                           "gradient": lambda: net.gradient(x, target)}
    explanations: dict[str, Callable[[], Any]] = {
        name: (lambda rule=rule: net.explain(x, target, rule=rule)) for name, rule in rules.items()}
    results = {name: explain() for name, explain in explanations.items()}
    for name, e in results.items():
        balance, tolerance = ledger_balance(e), LEDGER_TOLERANCE[dtype]
        line = (f"  lrp_ref {name:9s}: worst per-layer ledger imbalance {balance:.1e} of the "
                f"relevance moved ({'ok' if balance <= tolerance else 'FAILED'}: "
                f"<= {tolerance:g})")
        if dtype == np.float64:
            float64_relevance[f"lrp_ref {name}"] = e.relevance
        elif f"lrp_ref {name}" in float64_relevance:
            error = relative_error(e.relevance, float64_relevance[f"lrp_ref {name}"])
            line += f"; relative error vs float64 {error:.1e}"
        print(line)

    peer: dict[str, Any] = {}
    if zennit is not None:
        import torch
        torch.set_num_threads(blas_threads())
        model = torch_network(spec, dtype)
        xt = torch.from_numpy(x)
        composites = zennit_composites(zennit)
        peer = {name: ZennitExplainer(model, composites[name]) for name in rules}
        calls["torch forward"] = lambda: model(xt)
        for name, explain in peer.items():
            R_zennit = explain(xt, target).numpy()
            R_ours = results[name].relevance
            error = relative_error(R_ours, R_zennit)
            line = f"  agreement {name:9s}: lrp_ref vs Zennit relative error {error:.1e}"
            if dtype == np.float64:
                float64_relevance[f"zennit {name}"] = R_zennit
                ok = error <= RELATIVE_TOLERANCE_FLOAT64
                line += f" ({'ok' if ok else 'FAILED'}: <= {RELATIVE_TOLERANCE_FLOAT64:g})"
            elif f"zennit {name}" in float64_relevance:
                zennit64 = float64_relevance[f"zennit {name}"]
                line += f"; Zennit vs its float64 {relative_error(R_zennit, zennit64):.1e}"
            print(line)
    for name in rules:
        calls[f"lrp_ref {name}"] = explanations[name]
        if name in peer:
            calls[f"zennit {name}"] = lambda name=name: peer[name](xt, target)
    times = alternate(calls, args.runs)

    forward = times["forward"]
    for name, t in times.items():
        ratio = f"{t / forward:5.2f}x forward" if name.startswith(("lrp_ref", "grad")) else ""
        per_image = f"{t / args.batch * 1e3:8.1f} ms/image" if args.batch > 1 else ""
        print(f"  {name:20s} {t * 1e3:9.1f} ms {per_image} {ratio}")
    for name in rules:
        if f"zennit {name}" in times:
            print(f"  lrp_ref / Zennit {name:9s}: "
                  f"{times[f'lrp_ref {name}'] / times[f'zennit {name}']:.2f}")
    if args.memory:
        for library in ("lrp_ref",) + (("zennit",) if zennit is not None else ()):
            memory = peak_memory(library, dtype_name, args)
            if memory is not None:
                text = ", ".join(f"{k} {v:.0f}" for k, v in memory.items())
                print(f"  peak memory of one LRP-eps explanation, {library}: {text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dtype", nargs="+", default=["float64", "float32"],
                        choices=["float32", "float64"])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: channels / 8, input 32x32, 2 runs, no memory")
    parser.add_argument("--no-zennit", action="store_true", help="lrp_ref numbers only")
    parser.add_argument("--no-memory", dest="memory", action="store_false")
    parser.add_argument("--width", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--image", type=int, default=224, help=argparse.SUPPRESS)
    parser.add_argument("--memory-child", choices=["lrp_ref", "zennit"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.width, args.image, args.runs, args.memory = 8, 32, 2, False
    if args.memory_child:
        peak_memory_child(args)
        return
    print(f"NumPy {np.__version__}, BLAS threads {blas_threads()}")
    zennit = None if args.no_zennit else import_zennit()
    float64_relevance: dict[str, np.ndarray] = {}
    # float64 first: the float32 run reports each library's error against its float64 result
    for dtype_name in sorted(args.dtype, key=lambda d: d != "float64"):
        run(dtype_name, args, zennit, float64_relevance)


if __name__ == "__main__":
    main()
