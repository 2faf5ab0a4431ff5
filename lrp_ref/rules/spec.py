"""Rules and composites written as short strings, e.g. ``"eps:1e-6"`` or ``"alphabeta:2,1"``.

The command line (``lrp-ref explain --rule ...``) and scripts use this
notation: a name, optionally followed by ``:`` and comma-separated numbers.
Omitted numbers take the constructor's defaults.

=====================================  ===========================================
string                                 rule or composite
=====================================  ===========================================
``zero``                               ``Zero()``, LRP-0, eq. (5) of docs/theory.md
``eps`` / ``eps:E``                    ``Epsilon(E)`` (default 1e-6), eq. (6) of docs/theory.md
``alphabeta`` / ``alphabeta:A,B``      ``AlphaBeta(A, B)`` (default 2, 1), eq. (7)
``zplus``                              ``ZPlus()``
``gamma`` / ``gamma:G``                ``Gamma(G)`` (default 0.25), Montavon et al. 2019
``ggamma`` / ``ggamma:G``              ``GeneralizedGamma(G)`` (default 0.25), Zennit's Gamma
``zbox:L,H``                           ``ZBox(L, H)``
``flat``, ``wsquare``, ``pass``        ``Flat()``, ``WSquare()``, ``Pass()``
``epsilon_plus[:E]``                   composite (Zennit's EpsilonPlus)
``epsilon_plus_flat[:E]``              composite
``epsilon_alpha2_beta1[:E]``           composite
``epsilon_alpha2_beta1_flat[:E]``      composite
``epsilon_gamma_box:L,H[,G]``          composite (Zennit's EpsilonGammaBox)
``montavon2019:L,H``                   composite (Montavon et al. 2019, sec. 10.3)
``attnlrp[:E]``, ``cp_lrp[:E]``        composites for transformers (AttnLRP, CP-LRP)
=====================================  ===========================================

Aliases: ``lrp0`` for ``zero``, ``epsilon`` for ``eps``, ``ab`` for
``alphabeta``, ``generalized_gamma`` for ``ggamma``. Names are case-insensitive.
A string that does not parse, or whose numbers the rule rejects, raises a
ValueError with a one-line message.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from . import (
    AlphaBeta,
    Epsilon,
    Flat,
    Gamma,
    GeneralizedGamma,
    Pass,
    WSquare,
    ZBox,
    Zero,
    ZPlus,
    composites,
)

#: name -> (constructor, smallest and largest number of parameters, usage)
SPECS: dict[str, tuple[Callable[..., Any], int, int, str]] = {
    "zero": (Zero, 0, 0, "zero"),
    "eps": (Epsilon, 0, 1, "eps[:E]"),
    "alphabeta": (AlphaBeta, 0, 2, "alphabeta[:A,B]"),
    "zplus": (ZPlus, 0, 0, "zplus"),
    "gamma": (Gamma, 0, 1, "gamma[:G]"),
    "ggamma": (GeneralizedGamma, 0, 1, "ggamma[:G]"),
    "zbox": (ZBox, 2, 2, "zbox:L,H"),
    "flat": (Flat, 0, 0, "flat"),
    "wsquare": (WSquare, 0, 0, "wsquare"),
    "pass": (Pass, 0, 0, "pass"),
    "epsilon_plus": (composites.epsilon_plus, 0, 1, "epsilon_plus[:E]"),
    "epsilon_plus_flat": (composites.epsilon_plus_flat, 0, 1, "epsilon_plus_flat[:E]"),
    "epsilon_alpha2_beta1": (composites.epsilon_alpha2_beta1, 0, 1,
                             "epsilon_alpha2_beta1[:E]"),
    "epsilon_alpha2_beta1_flat": (composites.epsilon_alpha2_beta1_flat, 0, 1,
                                  "epsilon_alpha2_beta1_flat[:E]"),
    "epsilon_gamma_box": (composites.epsilon_gamma_box, 2, 3, "epsilon_gamma_box:L,H[,G]"),
    "montavon2019": (composites.montavon2019, 2, 2, "montavon2019:L,H"),
    "attnlrp": (composites.attnlrp, 0, 1, "attnlrp[:E]"),
    "cp_lrp": (composites.cp_lrp, 0, 1, "cp_lrp[:E]"),
}
ALIASES = {"lrp0": "zero", "epsilon": "eps", "ab": "alphabeta",
           "generalized_gamma": "ggamma"}
#: The accepted forms, for help texts and error messages.
SYNTAX = ", ".join(usage for *_, usage in SPECS.values())


def parse_rule(text: str) -> Any:
    """The rule or composite a string names (module docstring).

    Parameters
    ----------
    text : str
        E.g. ``"eps:1e-6"``, ``"alphabeta:2,1"``, ``"epsilon_gamma_box:0,1"``.

    Returns
    -------
    Rule or Composite
        Anything ``Sequential.explain`` accepts as ``rule``.

    Raises
    ------
    ValueError
        Unknown name, wrong number of parameters, a parameter that is not a
        number, or parameters the rule rejects.
    """
    if not isinstance(text, str):
        raise TypeError(f"a rule string is needed, got {text!r}")
    name, _, arguments = text.strip().partition(":")
    name = ALIASES.get(name.lower(), name.lower())
    if name not in SPECS:
        raise ValueError(f"unknown rule {text!r}; write one of: {SYNTAX}")
    make, fewest, most, usage = SPECS[name]
    values = [a.strip() for a in arguments.split(",")] if arguments.strip() else []
    if not fewest <= len(values) <= most:
        count = str(fewest) if fewest == most else f"{fewest} to {most}"
        raise ValueError(f"rule {text!r}: {name} takes {count} number(s), write {usage}")
    numbers = [_number(v, text) for v in values]
    try:
        return make(*numbers)
    except (TypeError, ValueError) as error:
        raise ValueError(f"rule {text!r}: {error}") from None


def _number(value: str, text: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"rule {text!r}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"rule {text!r}: {value!r} is not a finite number")
    return number


__all__ = ["ALIASES", "SPECS", "SYNTAX", "parse_rule"]
