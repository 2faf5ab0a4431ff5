"""Run Quantus 0.6's PixelFlipping, RegionPerturbation and mass-accuracy metrics next to
lrp_ref.evaluation, under the settings docs/peers.md ("Quantus") says make them agree, and
under the settings where they differ. Prints one line per comparison; the numbers are
recorded in docs/peers.md. Not part of CI (Quantus is not a dependency).

Environment (torch first, pinned, so that nothing replaces it; then Quantus without its
declared dependencies, and what it imports; opencv's headless build is enough):

    python3.11 -m venv /tmp/venv-quantus
    /tmp/venv-quantus/bin/pip install torch==2.13.0
    /tmp/venv-quantus/bin/pip install quantus==0.6.0 --no-deps
    /tmp/venv-quantus/bin/pip install numpy scipy tqdm cachetools pandas scikit-image \
        scikit-learn matplotlib opencv-python-headless
    PYTHONPATH=$PWD /tmp/venv-quantus/bin/python scripts/quantus_agreement.py

Quantus's torch wrapper turns every input into ``torch.Tensor(x)``, a tensor of torch's
default dtype: a float64 comparison needs ``torch.set_default_dtype(torch.float64)`` (with
the default float32 a float64 model fails on the dtype, and a float32 model agrees only to
float32 rounding).
"""

from __future__ import annotations

import warnings

import numpy as np
import quantus
import torch

import lrp_ref as lrp
from lrp_ref.evaluation import aopc, pixel_flipping, relevance_mass_accuracy
from lrp_ref.interop.torch import from_torch

torch.set_default_dtype(torch.float64)
warnings.filterwarnings("ignore")      # Quantus's parameterisation notes and 0/0 warnings

B, C, H, W, CLASSES = 4, 3, 6, 6, 5


def model_and_data() -> tuple[torch.nn.Module, np.ndarray, np.ndarray]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(C, 4, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(4 * H * W, CLASSES)).eval()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, C, H, W))        # no element is exactly 0
    y = np.array([0, 1, 2, 3])
    return model, x, y


def largest(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b| (NaN where the two have NaN in different places)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return float("nan")
    keep = ~np.isnan(b)
    return float(np.abs(a[keep] - b[keep]).max() / np.abs(b[keep]).max())


def show(label: str, value: float | str) -> None:
    text = value if isinstance(value, str) else f"{value:.2g}"
    print(f"{label:<88} {text}")


def main() -> None:
    model, x, y = model_and_data()
    net = from_torch(model)
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    show("forward: lrp_ref net vs torch (float64)", largest(net.forward(x), logits))
    R = net.explain(x, target=y, rule=lrp.Epsilon(1e-6)).relevance          # (B, C, H, W)
    Rc = R.sum(axis=1, keepdims=True)                                        # (B, 1, H, W)
    plain = {"normalise": False, "abs": False, "disable_warnings": True}
    call = {"model": model, "x_batch": x, "y_batch": y, "channel_first": True,
            "softmax": False}

    print("-- PixelFlipping (Quantus's curve: f(x_1) .. f(x_L); ours f(x_0) .. f(x_L))")
    ours = pixel_flipping(net, x, Rc, y, patch=1)                            # (B, 1 + H W)
    theirs = np.array(quantus.PixelFlipping(features_in_step=C, perturb_baseline=0.0,
                                            **plain)(a_batch=Rc, **call))
    show("PixelFlipping(features_in_step=C, 0.0), map (B,1,H,W), softmax=False vs ours[:, 1:]",
         largest(theirs, ours[:, 1:]))
    theirs = np.array(quantus.PixelFlipping(features_in_step=C, perturb_baseline=0.0,
                                            disable_warnings=True)(a_batch=Rc, **call))
    show("  ... the same with its default normalise=True (normalise_by_max keeps the order)",
         largest(theirs, ours[:, 1:]))
    theirs = np.array(quantus.PixelFlipping(features_in_step=1, perturb_baseline=0.0,
                                            **plain)(a_batch=R, **call))
    show("  ... features_in_step=1 and the (B,C,H,W) map (every C-th point)",
         largest(theirs[:, C - 1::C], ours[:, 1:]))
    theirs = np.array(quantus.PixelFlipping(features_in_step=C, perturb_baseline=0.0,
                                            **plain)(a_batch=Rc, **{**call, "softmax": True}))
    show("  ... map (B,1,H,W) with softmax=True (its default) vs our logit curve",
         largest(theirs, ours[:, 1:]))
    # 'black': the sample's minimum over all channels, the same at every step. Ours fills
    # zeros; shift the input by that minimum m and the model back by it: x' = x - m.
    m = x.min(axis=(1, 2, 3), keepdims=True)

    def shifted(images: np.ndarray) -> np.ndarray:
        k = images.shape[0] // B                # pixel_flipping stacks steps into the batch
        return net.forward(images + np.tile(m, (k, 1, 1, 1)))

    ours_black = pixel_flipping(shifted, x - m, Rc, y, patch=1)
    theirs = np.array(quantus.PixelFlipping(features_in_step=C, perturb_baseline="black",
                                            **plain)(a_batch=Rc, **call))
    show("PixelFlipping 'black' vs ours on x - min(x) with zeros (so 'black' = sample min)",
         largest(theirs, ours_black[:, 1:]))
    # 'mean': the mean over all elements of the input as perturbed so far, at every step.
    ranking = np.argsort(-Rc.reshape(B, -1), axis=1, kind="stable")
    current, literal = x.copy(), []
    for k in range(H * W):
        fill = current.mean(axis=(1, 2, 3))
        for b in range(B):
            i, j = divmod(ranking[b, k], W)
            current[b, :, i, j] = fill[b]
        literal.append(net.forward(current)[np.arange(B), y])
    literal = np.stack(literal, axis=1)
    theirs = np.array(quantus.PixelFlipping(features_in_step=C, perturb_baseline="mean",
                                            **plain)(a_batch=Rc, **call))
    show("PixelFlipping 'mean' vs a loop refilling with the mean of the perturbed input",
         largest(theirs, literal))
    ours_mean = pixel_flipping(net, x, Rc, y, patch=1, fill="mean")
    show("  ... vs our fill='mean' (the original image's fixed per-channel mean)",
         largest(theirs, ours_mean[:, 1:]))
    # a step that changes nothing (a pixel 0 in every channel): Quantus only warns
    x0 = x.copy()
    x0[:, :, 0, 0] = 0
    ours_x0 = pixel_flipping(net, x0, Rc, y, patch=1)
    theirs = np.array(quantus.PixelFlipping(features_in_step=C, perturb_baseline=0.0,
                                            **plain)(a_batch=Rc, **{**call, "x_batch": x0}))
    show("PixelFlipping with a pixel already 0 (a step changes nothing: a warning only)",
         largest(theirs, ours_x0[:, 1:]))
    # ties: a map with many equal values; Quantus's argsort is not stable
    tied = np.round(Rc / np.abs(Rc).max() * 2)
    ours_tied = pixel_flipping(net, x, tied, y, patch=1)
    theirs = np.array(quantus.PixelFlipping(features_in_step=C, perturb_baseline=0.0,
                                            **plain)(a_batch=tied, **call))
    show("PixelFlipping on a map with ties (values in {-2..2}) vs ours (stable)",
         largest(theirs, ours_tied[:, 1:]))

    print("-- RegionPerturbation (f(x_0) - f(x_k), k = 1..L) and AOPC")
    for patch in (2, 3):
        n = (H // patch) * (W // patch)
        ours = pixel_flipping(net, x, R, y, patch=patch)
        for name, a in (("(B,1,H,W)", Rc), ("(B,C,H,W)", R)):
            theirs = np.array(quantus.RegionPerturbation(
                patch_size=patch, regions_evaluation=n, perturb_baseline=0.0,
                **plain)(a_batch=a, **call))
            show(f"RegionPerturbation(patch_size={patch}, regions_evaluation={n}), map {name} "
                 "vs curve[:, :1] - curve[:, 1:]", largest(theirs, ours[:, :1] - ours[:, 1:]))
        show(f"  AOPC: RegionPerturbation's sum / (L + 1) vs aopc(curve), patch {patch}",
             largest(theirs.sum(axis=1) / (n + 1), aopc(ours)))
    theirs = np.array(quantus.RegionPerturbation(patch_size=4, regions_evaluation=4,
                                                 perturb_baseline=0.0, **plain)(a_batch=R,
                                                                                 **call))
    show("RegionPerturbation(patch_size=4) on 6x6 (pads; ours refuses): curve length",
         str(theirs.shape[1]))
    try:
        auc = quantus.RegionPerturbation(patch_size=2, regions_evaluation=9, **plain)
        auc(a_batch=R, **call)
        show("RegionPerturbation.get_auc_score (np.trapz) under NumPy " + np.__version__,
             f"{auc.get_auc_score:.4g}")
    except AttributeError as error:
        show("RegionPerturbation.get_auc_score under NumPy " + np.__version__, repr(error))

    print("-- mass accuracy")
    mask = np.zeros((B, 1, H, W), bool)
    mask[:, :, 1:4, 2:5] = True
    P = np.maximum(Rc, 0)
    ours = relevance_mass_accuracy(R, mask)
    theirs = np.array(quantus.RelevanceMassAccuracy(**plain)(a_batch=P, s_batch=mask.astype(
        float), **call))
    show("RelevanceMassAccuracy on max(0, sum_c R), normalise=False vs ours", largest(
        theirs, ours))
    theirs = np.array(quantus.RelevanceMassAccuracy(disable_warnings=True)(
        a_batch=P, s_batch=mask.astype(float), **call))
    show("  ... with its default normalise=True (normalise_by_max)", largest(theirs, ours))
    theirs = np.array(quantus.RelevanceMassAccuracy(**plain)(a_batch=Rc, s_batch=mask.astype(
        float), **call))
    show("RelevanceMassAccuracy on the raw sum_c R (negative relevance counted) vs ours",
         largest(theirs, ours))
    zero = P.copy()
    zero[0] = 0
    theirs = quantus.RelevanceMassAccuracy(**plain)(a_batch=zero, s_batch=mask.astype(float),
                                                    **call)
    show("RelevanceMassAccuracy with sample 0's map all zero (ours: 0)",
         str(np.round(theirs, 3)))
    try:
        quantus.RelevanceMassAccuracy(**plain)(a_batch=np.zeros_like(P),
                                               s_batch=mask.astype(float), **call)
    except AssertionError as error:
        show("  ... every sample's map all zero", "AssertionError: " + str(error)[:40])
    empty = mask.copy()
    empty[0] = False
    theirs = quantus.RelevanceMassAccuracy(**plain)(a_batch=P, s_batch=empty.astype(float),
                                                    **call)
    show("RelevanceMassAccuracy with sample 0's mask empty (ours: 0)",
         str(np.round(theirs, 3)))
    theirs = np.array(quantus.AttributionLocalisation(positive_attributions=True, **plain)(
        a_batch=Rc, s_batch=mask.astype(float), **call))
    show("AttributionLocalisation(positive_attributions=True, abs=False), normalise=False",
         largest(theirs, ours))
    total = P.reshape(B, -1).sum(axis=1)
    inside = np.where(mask, P, 0).reshape(B, -1).sum(axis=1)
    show("  ... vs inside / (total + 1e-9) by hand", largest(theirs, inside / (total + 1e-9)))
    theirs = np.array(quantus.AttributionLocalisation(positive_attributions=True, weighted=True,
                                                      **plain)(a_batch=Rc, s_batch=mask.astype(
                                                          float), **call))
    size_data = x[2:].size            # Quantus's x_batch[2:].size: samples 2.., not H W
    show(f"AttributionLocalisation(weighted=True): its ratio divides |mask| by x_batch[2:].size"
         f" = {size_data}", largest(theirs, inside / (total + 1e-9) * mask[0].sum()
                                    / size_data))


if __name__ == "__main__":
    print(f"quantus {quantus.__version__}, torch {torch.__version__}, numpy {np.__version__}")
    main()
