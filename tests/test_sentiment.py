"""The synthetic sentiment set (labels and deciding tokens follow the template's rule)
and the shipped LSTM (documented test accuracy, explanations)."""

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref.evaluation import relevance_mass_accuracy
from lrp_ref.extensions import text
from lrp_ref.zoo import sentiment


def rule_label(tokens):
    """The label read off the tokens: the last clause (after 'but') decides; a negation
    flips its adjective. Independent of the generator's bookkeeping."""
    last = tokens[len(tokens) - tokens[::-1].index("but"):] if "but" in tokens else tokens
    adjective = [t for t in last if t in sentiment.POSITIVE + sentiment.NEGATIVE]
    assert len(adjective) == 1
    negated = any(t in sentiment.NEGATIONS for t in last)
    return int((adjective[0] in sentiment.POSITIVE) != negated), last


def test_labels_and_deciding_tokens_follow_the_rule():
    data = sentiment.make_sentiment(500, seed=3)
    assert len(data) == 500
    assert 0.4 < data.labels.mean() < 0.6
    for tokens, label, deciding in zip(data.sentences, data.labels, data.deciding):
        expected, last = rule_label(tokens)
        assert label == expected
        marked = [t for t, d in zip(tokens, deciding) if d]
        assert marked == [t for t in last if t in sentiment.POSITIVE + sentiment.NEGATIVE
                          + sentiment.NEGATIONS]
        assert tokens[-1] == "."


def test_generator_is_seeded_and_covers_every_form():
    a, b = sentiment.make_sentiment(300, seed=7), sentiment.make_sentiment(300, seed=7)
    assert a.sentences == b.sentences
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.sentences != sentiment.make_sentiment(300, seed=8).sentences
    words = {t for s in a.sentences for t in s}
    assert {"but", "not", "never"} <= words and words & set(sentiment.INTENSIFIERS)


def test_vocabulary_encodes_and_refuses():
    vocab = sentiment.Vocabulary.of_template()
    ids = vocab.encode(["This movie was brilliant.", ["the", "film", "is", "bad", "."]])
    assert ids.shape == (2, 5)
    assert [vocab.tokens[k] for k in ids[0]] == ["this", "movie", "was", "brilliant", "."]
    with pytest.raises(ValueError, match=r"unknown word\(s\) \['amazing'\]"):
        vocab.encode(["this movie was amazing ."])
    with pytest.raises(ValueError, match=r"equal lengths .*\[4, 5\]"):
        vocab.encode(["this movie was good .", "the film is bad"])
    every = {t for s in sentiment.make_sentiment(300, seed=1).sentences for t in s}
    assert every <= set(vocab.tokens)


@pytest.fixture(scope="module")
def model():
    return sentiment.load_model()


def by_length(sentences):
    lengths = np.array([len(s) for s in sentences])
    return [np.flatnonzero(lengths == n) for n in np.unique(lengths)]


def test_shipped_model_reaches_the_documented_test_accuracy(model):
    net, vocab = model
    test = sentiment.make_sentiment(1000, seed=1)
    correct = 0
    for index in by_length(test.sentences):
        ids = vocab.encode([test.sentences[k] for k in index])
        correct += int((net.forward(ids).argmax(axis=1) == test.labels[index]).sum())
    # deterministic data and model; allow one sentence for a borderline logit under
    # another BLAS summation order
    assert correct / 1000 >= sentiment.TEST_ACCURACY - 0.001
    assert sentiment.TEST_ACCURACY >= 0.95


def test_the_seed_sentence(model):
    """'This movie was brilliant.' is positive, and 'brilliant' carries the most relevance."""
    net, vocab = model
    ids = vocab.encode(["This movie was brilliant."])
    e = net.explain(ids, rule=lrp.Epsilon(1e-3))
    assert sentiment.CLASSES[e.target[0]] == "positive"
    assert np.argmax(e.relevance[0]) == 3
    for record in e.layers:
        scale = np.abs(record.relevance_out).sum() + np.abs(record.relevance_in).sum()
        np.testing.assert_allclose(record.imbalance(), 0, atol=1e-10 * scale)


def test_lrp_concentrates_on_the_deciding_tokens(model):
    """Relevance mass accuracy (positive relevance on the deciding tokens) of LRP-eps
    beats Gradient x Input and sensitivity on held-out sentences (as the tutorial reports)."""
    net, vocab = model
    data = sentiment.make_sentiment(200, seed=11)
    scores = {"lrp": [], "gxi": [], "sa": []}
    for index in by_length(data.sentences):
        ids = vocab.encode([data.sentences[k] for k in index])
        mask = np.stack([data.deciding[k] for k in index])[:, None, :]
        for name, R in (("lrp", net.explain(ids, rule=lrp.Epsilon(1e-3)).relevance),
                        ("gxi", text.gradient_x_input(net, ids)),
                        ("sa", text.sensitivity(net, ids))):
            scores[name] += list(relevance_mass_accuracy(R[:, None, :], mask))
    mean = {name: float(np.mean(v)) for name, v in scores.items()}
    assert mean["lrp"] > 0.5
    assert mean["lrp"] > mean["gxi"] and mean["lrp"] > mean["sa"]
