"""ViT-B/16 benchmark: lrp_ref's CP-LRP and AttnLRP against LXT 2.1 and torch's own pass.

torchvision's ``vit_b_16`` (random weights; a random class token and head, which
torchvision starts at zero), batch 1, 3x224x224, imported whole with
``lrp_ref.interop.torch.from_torch``, float64 and float32. Timed, alternating in
one run (the median of ``--runs`` rounds in which every call is timed once in
turn, after a warm-up: ``vgg16.alternate``):

* ``lrp_ref forward``;
* ``lrp_ref CP-LRP``: ``composites.cp_lrp(0, 0)`` (the attention weights held
  constant, ``Epsilon(0)`` = LRP-0 on every linear map and LayerNorm, ``1/sigma``
  constant), the residual additions, the positional embedding and the attention's
  products by LRP-0 too (``from_torch(..., residual_epsilon=0)``);
* ``lrp_ref AttnLRP``: ``composites.attnlrp(1e-6)`` (``Epsilon(1e-6)`` on every
  linear map and LayerNorm, the uniform split of the products);
* ``LXT CP-LRP``: LXT 2.1's efficient mode with its map for torchvision's ViT
  (``lxt.efficient.models.vit_torch.cp_LRP``: GELU's identity rule, LayerNorm with
  ``std`` detached, query and key detached in ``nn.MultiheadAttention``), relevance
  ``x * dy/dx`` for the output relevance ``y`` of the target (lrp_ref's seed). LXT
  has no AttnLRP for torch's ``nn.MultiheadAttention`` (its explicit mode needs
  ``transformers``), so AttnLRP is timed against the same LXT call;
* ``torch fwd+bwd``: the unpatched model's forward and input gradient.

Before timing, agreement (float64): lrp_ref's CP-LRP against the same CP-LRP written out
in torch (Gradient x Input with the attention's query and key, each ``sigma`` and each
``GELU(h)/h`` detached: ``Exact``), relative error <= 1e-8 (the same linear map summed in
other orders through 12 layers); against LXT's CP-LRP, reported: LXT's GELU rule
divides by ``h + 1e-10``, a plain epsilon that moves elements with small ``h``
(measured 6e-10 on the quick model, 7e-7 on ViT-B/16). In float32 each library against
its own float64 result. LXT's patches replace the
``forward`` of torch's ``GELU``, ``LayerNorm`` and ``MultiheadAttention`` classes:
they are set for LXT's calls only and removed for torch's.

``lxt.efficient`` imports its Hugging Face model maps (``transformers``) in its
``__init__``; the patches and rules themselves need torch only, so this script
loads them without that ``__init__`` (``import_lxt_patches``). Needs the ``oracle``
extra and ``pip install --no-deps lxt==2.1``.

Usage::

    python benchmarks/vit.py                  # float64 and float32, 3 runs
    python benchmarks/vit.py --quick          # smoke run: a 2-layer ViT of width 16, 32x32
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import sys
import types
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "oracle"))

from vgg16 import alternate, blas_threads, relative_error  # noqa: E402

import lrp_ref as lrp  # noqa: E402
from lrp_ref.audit import per_sample_sum  # noqa: E402

RELATIVE_TOLERANCE_FLOAT64 = 1e-8
#: The rule of every linear map and LayerNorm: LRP-0 for CP-LRP (what LXT's Gradient x
#: Input computes), Epsilon(1e-6) for AttnLRP.
RULES = {"cp": lrp.composites.cp_lrp(0.0, 0.0), "attn": lrp.composites.attnlrp(1e-6)}


def import_lxt_patches() -> Any:
    """``lxt.efficient.patches`` without ``lxt/efficient/__init__.py`` (which imports
    ``transformers`` for its Hugging Face maps)."""
    spec = importlib.util.find_spec("lxt")
    if spec is None:
        raise ImportError("LXT is not installed: pip install --no-deps lxt==2.1")
    if "lxt.efficient" not in sys.modules:
        package = types.ModuleType("lxt.efficient")
        package.__path__ = [os.path.join(spec.submodule_search_locations[0], "efficient")]
        sys.modules["lxt.efficient"] = package
    import lxt.efficient.patches as patches
    return patches


class Exact:
    """The CP-LRP that LXT's patches compute, written out without its GELU epsilon: torch's
    Gradient x Input with the attention's query and key, each LayerNorm's ``sigma`` and
    each GELU's ``GELU(h) / h`` held constant (tests/oracle/test_torchvision_transformers.py
    checks lrp_ref against it on a small ViT)."""

    def __init__(self, torch: Any) -> None:
        nn, F = torch.nn, torch.nn.functional
        attention = nn.MultiheadAttention.forward

        def layer_norm(self: Any, h: Any) -> Any:
            mu = h.mean(-1, keepdim=True)
            sigma = ((h - mu) ** 2).mean(-1, keepdim=True).add(self.eps).sqrt().detach()
            return (h - mu) / sigma * self.weight + self.bias

        def gelu(self: Any, h: Any) -> Any:
            return h * (F.gelu(h) / h).detach()

        def cp_attention(self: Any, query: Any, key: Any, value: Any, **kwargs: Any) -> Any:
            return attention(self, query.detach(), key.detach(), value, **kwargs)

        self.torch = torch
        self.forwards = {nn.LayerNorm: layer_norm, nn.GELU: gelu,
                         nn.MultiheadAttention: cp_attention}

    def __call__(self, model: Any, x: Any, target: int) -> Any:
        originals = {cls: cls.forward for cls in self.forwards}
        try:
            for cls, forward in self.forwards.items():
                cls.forward = forward
            return gradient_x_input(self.torch, model, x, target)
        finally:
            for cls, forward in originals.items():
                cls.forward = forward


class LXT:
    """LXT 2.1's efficient CP-LRP for torchvision's ViT (its ``vit_torch.cp_LRP`` map),
    patched into torch's classes for the duration of each call only."""

    def __init__(self, torch: Any, patches: Any) -> None:
        nn = torch.nn
        self.torch = torch
        self.forwards = {nn.GELU: patches.non_linear_forward,
                         nn.LayerNorm: patches.layer_norm_forward,
                         nn.MultiheadAttention: patches.cp_multi_head_attention_forward}
        self.originals = {cls: cls.forward for cls in self.forwards}

    def __call__(self, model: Any, x: Any, target: int) -> Any:
        for cls, forward in self.forwards.items():
            cls.original_forward = self.originals[cls]      # patch_method(keep_original=True)
            cls.forward = forward
        try:
            return gradient_x_input(self.torch, model, x, target)
        finally:
            for cls, forward in self.originals.items():
                cls.forward = forward
                del cls.original_forward


def gradient_x_input(torch: Any, model: Any, x: Any, target: int) -> Any:
    """``x * d y_target / d x``: LXT's relevance for the output relevance ``y_target``
    (lrp_ref's seed). LXT's examples call ``y.backward(y)``, which scales it by ``y_target``
    once more (it then sums to about ``y_target^2``); the gradient is seeded with 1 here."""
    x = x.detach().clone().requires_grad_(True)
    model(x)[0, target].backward()
    return (x * x.grad).detach()


def model(torch: Any, torchvision: Any, quick: bool) -> tuple[Any, int]:
    """The float64 torch model and its image size."""
    torch.manual_seed(0)
    if quick:
        m = torchvision.models.vision_transformer.VisionTransformer(
            image_size=32, patch_size=16, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32)
    else:
        m = torchvision.models.vit_b_16(weights=None)
    with torch.no_grad():
        m.class_token.normal_(0.0, 0.02)
        m.heads.head.weight.normal_(0.0, 0.02)
    return m.double().eval(), m.image_size


def ledger_balance(e: lrp.Explanation) -> float:
    """The worst per-node imbalance relative to the relevance through that node (in float64:
    1e-300 is 0 in float32, and a node that receives no relevance would give 0 / 0)."""
    return max(float(np.max(np.abs(r.imbalance()).astype(np.float64) / (
        per_sample_sum(np.abs(r.relevance_out)).astype(np.float64) + 1e-300)))
        for r in e.layers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dtype", nargs="+", default=["float64", "float32"])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()

    import peer_imports
    peer_imports.declare_torchvision_ops()
    torch = peer_imports.import_torch()
    import torchvision

    from lrp_ref.interop.torch import from_torch

    torch.set_num_threads(blas_threads())
    lxt = LXT(torch, import_lxt_patches())
    m64, image = model(torch, torchvision, args.quick)
    x64 = np.random.default_rng(1).normal(size=(1, 3, image, image))
    imported = from_torch(m64, residual_epsilon=0.0)
    nets = {"cp": imported, "attn": imported}
    target = int(np.argmax(imported.forward(x64)[0]))
    float64_results: dict[str, np.ndarray] = {}
    print(f"ViT ({'quick' if args.quick else 'vit_b_16'}), batch 1, 3x{image}x{image}, "
          f"target {target}, {blas_threads()} BLAS threads, median of {args.runs} runs")
    for dtype_name in args.dtype:
        run(np.dtype(dtype_name), torch, lxt, m64, nets, x64, target, args.runs,
            float64_results)


def run(dtype: np.dtype, torch: Any, lxt: LXT, m64: Any, nets: dict[str, lrp.Graph],
        x64: np.ndarray, target: int, runs: int,
        float64_results: dict[str, np.ndarray]) -> None:
    """Agreement, then the alternating timings, in one dtype."""
    m = copy.deepcopy(m64).to(torch.float64 if dtype == np.float64 else torch.float32)
    cp, attn = (nets[k].astype(dtype) for k in ("cp", "attn"))
    x = x64.astype(dtype)
    xt = torch.from_numpy(x)
    e_cp = cp.explain(x, target, rule=RULES["cp"])
    e_attn = attn.explain(x, target, rule=RULES["attn"])
    theirs = lxt(m, xt, target).numpy()
    print(f"\n== {dtype.name} ==")
    print(f"  ledger: worst per-node imbalance CP-LRP {ledger_balance(e_cp):.1e}, "
          f"AttnLRP {ledger_balance(e_attn):.1e}")
    if dtype == np.float64:
        exact = Exact(torch)(m, xt, target).numpy()
        error = relative_error(e_cp.relevance, exact)
        verdict = "ok" if error <= RELATIVE_TOLERANCE_FLOAT64 else "DISAGREE"
        print(f"  agreement lrp_ref CP-LRP vs torch Gradient x Input with A, sigma, "
              f"GELU(h)/h constant: {error:.1e} ({verdict})")
        print(f"  lrp_ref CP-LRP vs LXT CP-LRP: {relative_error(e_cp.relevance, theirs):.1e}; "
              f"the exact one vs LXT: {relative_error(exact, theirs):.1e} (LXT's GELU rule "
              f"divides by h + 1e-10)")
        float64_results.update({"lrp_ref": e_cp.relevance, "LXT": theirs})
    elif float64_results:
        print(f"  against their own float64: lrp_ref "
              f"{relative_error(e_cp.relevance, float64_results['lrp_ref']):.1e}, "
              f"LXT {relative_error(theirs, float64_results['LXT']):.1e}")
    times = alternate({
        "lrp_ref forward": lambda: cp.forward(x),
        "lrp_ref CP-LRP": lambda: cp.explain(x, target, rule=RULES["cp"]),
        "lrp_ref AttnLRP": lambda: attn.explain(x, target, rule=RULES["attn"]),
        "LXT CP-LRP": lambda: lxt(m, xt, target),
        "torch fwd+bwd": lambda: gradient_x_input(torch, m, xt, target),
    }, runs)
    for name, seconds in times.items():
        print(f"  {name:<16} {seconds:8.3f} s")
    forward = times["lrp_ref forward"]
    for name in ("lrp_ref CP-LRP", "lrp_ref AttnLRP"):
        print(f"  {name}: {times[name] / times['LXT CP-LRP']:.2f}x LXT, "
              f"{times[name] / times['torch fwd+bwd']:.2f}x torch fwd+bwd, relevance "
              f"pass (explain - forward) {(times[name] - forward) / forward:.2f}x forward")

if __name__ == "__main__":
    main()
