"""Tools for testing an LRP implementation against lrp_ref (and lrp_ref against itself).

* :func:`assert_relevance_close` compares relevance maps with a *scale-relative*
  tolerance per sample, ``|actual - expected| <= atol + rtol * max|expected|``,
  and explains a failure in terms a human can act on;
  :func:`max_relative_difference` is the number it bounds (``lrp_ref.compare``).
* Hypothesis strategies — :func:`dense_networks`, :func:`conv_networks`,
  :func:`inputs_for`, :func:`rules` — generate random lrp_ref networks, inputs
  and rules for property tests (``lrp_ref.strategies``). hypothesis is
  imported only when one of them is first used, so the rest of this module
  needs NumPy only.
* :func:`grade` is a classroom grader: it runs a student's implementation of
  one layer's relevance step (Dense, Conv2d, AvgPool2d, MaxPool2d, BatchNorm,
  the residual split) on generated cases against the reference and returns a
  readable :class:`GradeReport` (``lrp_ref.testing.grading``);
  :func:`grade_network` grades a whole network's explanation.
* :mod:`lrp_ref.testing.vectors` writes the known-answer suite as files any
  language can read and checks another implementation's results against it
  (``lrp-ref vectors export DIR``, ``lrp-ref vectors check DIR RESULTS``;
  docs/vectors.md).

Example::

    from lrp_ref.testing import assert_relevance_close
    assert_relevance_close(zennit_relevance, lrp_ref_explanation.relevance, rtol=1e-8)
"""

from __future__ import annotations

from typing import Any

from .compare import assert_relevance_close, max_relative_difference
from .grading import GradeReport, grade
from .grading_network import grade_network

#: Names served by :mod:`lrp_ref.strategies` (imported, with hypothesis, on first use).
STRATEGIES = ("dense_networks", "conv_networks", "inputs_for", "rules")


def __getattr__(name: str) -> Any:
    """The hypothesis strategies, imported from :mod:`lrp_ref.strategies` on first use."""
    if name in STRATEGIES:
        from . import strategies

        return getattr(strategies, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *STRATEGIES])


# the strategies are not in __all__: a star import must not import hypothesis
__all__ = ["GradeReport", "assert_relevance_close", "grade", "grade_network",
           "max_relative_difference"]
