"""Networks with depthwise convolutions at 224x224, batch 1: forward and explain times.

For each model (torchvision's, randomised and converted as in ``zoo_table.py``) the median
time of ``forward`` and of an ``epsilon_plus`` explanation (BatchNorm not merged), float32
and float64, the four calls timed in turn after one warm-up each
(``benchmarks/vgg16.alternate``), in one process; and the part of an explanation spent in
the depthwise layers' convolutions (``kernels.convolve`` and
``kernels.transposed_convolution`` called with one input channel per group: the forward's
``z``, the rule's ``z`` and ``c``), summed over the timed rounds and divided by their
number. One line per model on stdout::

    python benchmarks/depthwise.py                                  # mobilenet_v2, efficientnet_b0
    python benchmarks/depthwise.py --models shufflenet_v2_x0_5 --runs 5
    python benchmarks/depthwise.py --layers          # per layer: dispatched vs im2col

``--layers`` times, on the depthwise layer shapes of MobileNet-V2 and EfficientNet-B0
(:data:`LAYERS`, batch 1, random data), ``kernels.convolve`` and
``kernels.transposed_convolution`` as dispatched (shifted slices; ``convolve`` at stride 2
keeps the GEMM) and by the im2col route (the same call with ``kernels.depthwise`` patched
to refuse), alternating in one process, the median of ``--runs`` after a warm-up: a
comparison that the load moves less than whole explanations.

To compare two versions of lrp_ref, run the script from a copy of each tree in turn
(``before, after, before, after``): it imports the lrp_ref of the tree it sits in.
Needs the ``oracle`` and ``test`` extras, as ``zoo_table.py``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from functools import partial
from typing import Any
from unittest import mock

import numpy as np
from zoo_table import MODELS, alternate, imported  # puts this tree first on sys.path

import lrp_ref as lrp  # after zoo_table: this tree's lrp_ref
from lrp_ref.engine import kernels
from lrp_ref.engine.patches import Window

#: Seconds spent in depthwise convolutions, by label, while :func:`timed_depthwise` counts.
SPENT: dict[str, float] = {}
#: The timed calls running (a call inside another is not counted again).
NESTED: list[Callable] = []


def timed_depthwise(fn: Callable[..., np.ndarray], counting: list[str]) -> Callable:
    """``fn`` (``kernels.convolve`` or ``transposed_convolution``: weight second, groups
    last) adding the time of its depthwise calls to ``SPENT[counting[0]]``."""
    def timed(*args: Any, **kwargs: Any) -> np.ndarray:
        groups = kwargs.get("groups", args[-1] if len(args) > 4 else 1)
        outermost = not NESTED
        NESTED.append(fn)           # transposed_convolution may call convolve: count once
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            NESTED.pop()
            if outermost and counting and groups > 1 and args[1].shape[1] == 1:
                SPENT[counting[0]] = (SPENT.get(counting[0], 0.0)
                                      + time.perf_counter() - start)
    return timed


def times(name: str, runs: int) -> dict[str, float]:
    """Median seconds of forward and explain, float32 and float64, for one model, and the
    mean seconds per explanation in its depthwise convolutions."""
    _, net, x = imported(name)
    if isinstance(net, Exception):
        raise net
    target = int(np.argmax(net.forward(x)[0]))
    rule = lrp.composites.epsilon_plus()
    counting: list[str] = []
    for entry in ("convolve", "transposed_convolution"):
        setattr(kernels, entry, timed_depthwise(getattr(kernels, entry), counting))
    calls = {}
    for dtype, label in ((np.float32, "f32"), (np.float64, "f64")):
        n, x_d = net.astype(dtype), x.astype(dtype)

        def explain(n=n, x_d=x_d, label=label):
            counting[:] = [f"depthwise in explain {label}"]
            n.explain(x_d, target, rule=rule)
            counting.clear()

        calls[f"forward {label}"] = lambda n=n, x_d=x_d: n.forward(x_d)
        calls[f"explain {label}"] = explain
    SPENT.clear()
    medians = alternate(calls, runs)                # one warm-up and `runs` rounds each
    return {**medians, **{k: v / (runs + 1) for k, v in SPENT.items()}}


#: Depthwise layers (channels, input size, kernel, stride) of MobileNet-V2 and EfficientNet-B0.
LAYERS = [(32, 112, 3, 1), (96, 112, 3, 2), (144, 56, 3, 1), (144, 56, 5, 2), (240, 28, 5, 1),
          (576, 14, 3, 1), (672, 14, 5, 1), (1152, 7, 5, 1)]


def im2col(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` with ``kernels.depthwise`` refusing every layer: the im2col route."""
    def run() -> Any:
        with mock.patch.object(kernels, "depthwise", lambda shape, groups: False):
            return fn()
    return run


def layer_times(runs: int) -> None:
    """Print, per layer of :data:`LAYERS` and dtype, the two routes' times in ms."""
    rng = np.random.default_rng(0)
    print("| channels, size, kernel, stride | dtype | z: dispatched / im2col | "
          "c: dispatched / im2col |")
    print("|---|---|---:|---:|")
    for C, n, k, stride in LAYERS:
        for dtype in (np.float32, np.float64):
            window = Window((k, k), (stride, stride), (k // 2, k // 2))
            x = rng.standard_normal((1, C, n, n)).astype(dtype)
            w = rng.standard_normal((C, 1, k, k)).astype(dtype)
            s = rng.standard_normal((1, C, *window.output_size((n, n), "x"))).astype(dtype)

            z = partial(kernels.convolve, x, w, window, groups=C)
            c = partial(kernels.transposed_convolution, s, w, window, (n, n), groups=C)
            t = alternate({"z dispatched": z, "c dispatched": c, "z im2col": im2col(z),
                           "c im2col": im2col(c)}, runs)
            ms = {name: 1e3 * v for name, v in t.items()}
            print(f"| {C}, {n}x{n}, {k}x{k}, {stride} | {np.dtype(dtype).name} | "
                  f"{ms['z dispatched']:.2f} / {ms['z im2col']:.2f} ms | "
                  f"{ms['c dispatched']:.2f} / {ms['c im2col']:.2f} ms |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["mobilenet_v2", "efficientnet_b0"],
                        choices=MODELS)
    parser.add_argument("--runs", type=int, default=3, help="timed rounds per call")
    parser.add_argument("--layers", action="store_true",
                        help="time the two routes per depthwise layer instead")
    args = parser.parse_args()
    if args.layers:
        layer_times(args.runs)
        return
    for name in args.models:
        t = times(name, args.runs)
        print(f"{name}: " + ", ".join(f"{k} {v:.3f} s" for k, v in t.items())
              + f" (load average {os.getloadavg()[0]:.1f}; lrp_ref from "
              f"{os.path.dirname(os.path.dirname(lrp.__file__))})", flush=True)


if __name__ == "__main__":
    main()
