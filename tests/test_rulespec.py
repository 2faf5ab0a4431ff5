"""lrp_ref.rulespec: rule strings of the command line."""

import pytest

from lrp_ref.rules import (
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
from lrp_ref.rules.spec import SPECS, parse_rule


@pytest.mark.parametrize("text, rule", [
    ("zero", Zero()), ("lrp0", Zero()),
    ("eps", Epsilon()), ("eps:0.25", Epsilon(0.25)), ("EPSILON:1e-3", Epsilon(1e-3)),
    ("alphabeta", AlphaBeta(2, 1)), ("alphabeta:2,1", AlphaBeta(2, 1)),
    ("ab:1, 0", AlphaBeta(1, 0)),
    ("zplus", ZPlus()), ("gamma", Gamma()), ("gamma:0.5", Gamma(0.5)),
    ("ggamma", GeneralizedGamma()), ("generalized_gamma:0.5", GeneralizedGamma(0.5)),
    ("zbox:-1,1", ZBox(-1, 1)), ("flat", Flat()), ("wsquare", WSquare()), ("pass", Pass()),
    (" eps:1e-6 ", Epsilon(1e-6)),
])
def test_rule_strings(text, rule):
    assert parse_rule(text) == rule


@pytest.mark.parametrize("text, composite", [
    ("epsilon_plus", composites.epsilon_plus()),
    ("epsilon_plus:0.1", composites.epsilon_plus(0.1)),
    ("epsilon_plus_flat", composites.epsilon_plus_flat()),
    ("epsilon_alpha2_beta1", composites.epsilon_alpha2_beta1()),
    ("epsilon_alpha2_beta1_flat:0.5", composites.epsilon_alpha2_beta1_flat(0.5)),
    ("epsilon_gamma_box:0,1", composites.epsilon_gamma_box(0, 1)),
    ("epsilon_gamma_box:0,1,0.5", composites.epsilon_gamma_box(0, 1, 0.5)),
    ("montavon2019:0,1", composites.montavon2019(0, 1)),
    ("attnlrp", composites.attnlrp()),
    ("cp_lrp:0.01", composites.cp_lrp(0.01)),
])
def test_composite_strings(text, composite):
    assert repr(parse_rule(text)) == repr(composite)


@pytest.mark.parametrize("text, match", [
    ("foo", "unknown rule 'foo'; write one of: zero, eps"),
    ("eps:1,2", r"eps takes 0 to 1 number\(s\), write eps\[:E\]"),
    ("zbox:0", r"zbox takes 2 number\(s\), write zbox:L,H"),
    ("zero:1", "zero takes 0 number"),
    ("eps:abc", "'abc' is not a number"),
    ("eps:nan", "not a finite number"),
    ("eps:-1", "epsilon must be a finite number >= 0"),
    ("alphabeta:1,1", "does not conserve relevance"),
    ("zbox:1,0", "low must be <= high"),
    ("", "unknown rule ''"),
])
def test_bad_rule_strings_give_one_line_value_errors(text, match):
    with pytest.raises(ValueError, match=match) as info:
        parse_rule(text)
    assert "\n" not in str(info.value)


def test_every_spec_parses_with_its_required_numbers():
    for name, (_, fewest, _, usage) in SPECS.items():
        text = name if fewest == 0 else f"{name}:" + ",".join(["0", "1"][:fewest])
        assert parse_rule(text) is not None, usage


def test_a_rule_string_must_be_a_string():
    with pytest.raises(TypeError, match="rule string"):
        parse_rule(Epsilon())
