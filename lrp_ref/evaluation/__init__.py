"""Measuring explanations: pixel and token flipping / AOPC, relevance mass and rank accuracy.

Two families of measures, both per sample and vectorised over the batch:

* **Perturbation** (Samek et al. 2017, "Evaluating the visualization of what a
  deep neural network has learned", IEEE TNNLS 28(11)): remove the input
  regions an explanation calls most relevant first ("MoRF") and watch the
  target logit fall. :func:`pixel_flipping` returns the curve
  ``f(x_0), f(x_1), ..., f(x_L)``; :func:`aopc` its area,
  ``AOPC = 1/(L+1) sum_{k=0..L} (f(x_0) - f(x_k))``. A steeper fall (a larger
  MoRF AOPC) means the explanation found what the model uses.
  :func:`token_flipping` does the same to token ids ``(B, T)``, putting a
  blank token in place of the most relevant tokens.
* **Ground truth** (Arras et al. 2022, "CLEVR-XAI: a benchmark dataset for the
  ground truth evaluation of neural network explanations", Information Fusion
  81): with a mask of the pixels that decide the class,
  :func:`relevance_mass_accuracy` is the share of positive relevance inside
  the mask and :func:`relevance_rank_accuracy` the share of the mask among the
  ``K = |mask|`` most relevant pixels. Token relevance ``(B, T)`` is scored
  against a mask of the deciding tokens in the same way.

Conventions (the choice points, fixed here so results are reproducible):

* Relevance is pooled over the channel axis by summation; ground-truth
  measures then use its positive part ``max(0, sum_c R_c)``.
* Rankings are stable: among equal scores the lower row-major index
  (pixel ``(y, x)``, or patch ``(py, px)``) comes first, in both flipping
  orders. So a map without positive relevance ranks pixels in reading order.
* After flipping step ``k`` of ``L`` the ``floor(k n / L + 1/2)`` highest-ranked
  of the ``n`` patches are replaced (rounding half up, so the count never
  decreases); step 0 is the unperturbed input, step ``L`` has all ``n``
  replaced.
"""

from .ground_truth import relevance_mass_accuracy, relevance_rank_accuracy
from .perturbation import (
    FILLS,
    FLIP_CHUNK_ELEMENTS,
    ORDERS,
    aopc,
    pixel_flipping,
    token_flipping,
)

__all__ = [
    "FILLS",
    "FLIP_CHUNK_ELEMENTS",
    "ORDERS",
    "aopc",
    "pixel_flipping",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "token_flipping",
]
