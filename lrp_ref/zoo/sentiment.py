"""A synthetic sentiment data set with known deciding tokens, and a small shipped LSTM.

The recurrent example of docs/theory.md (section 5) asks why "This movie was brilliant." is
classified positive; Arras et al. (2017, "Explaining recurrent neural network
predictions in sentiment analysis", WASSA@EMNLP) answer such questions with LRP
on an LSTM. Here the sentences come from one template whose label is decided
by known tokens::

    [opener] [clause , but] clause [closer] .
    clause = subject verb [negation] [intensifier] adjective

    honestly , the long film was not very good in my opinion .    -> negative
    the plot was dull , but this movie is really brilliant .       -> positive

* the adjective is positive (``good``, ``brilliant``, ...) or negative
  (``bad``, ``boring``, ...);
* a negation (``not``, ``never``) flips it: label = positive adjective XOR negation;
* with a ``, but`` contrast, the clause after ``but`` decides; the first
  clause is a distractor that carries sentiment of its own;
* intensifiers (``very``, ``really``, ...) strengthen without flipping; openers,
  subjects (with neutral modifiers such as ``long``), verbs and closers are
  neutral fillers.

The *deciding tokens* of a sentence are the adjective and the negation (if
any) of its last clause.
Labels: 0 negative, 1 positive (:data:`CLASSES`).

The shipped model ``lrp_ref/zoo/data/sentiment_lstm.npz`` (vocabulary in
``sentiment_vocab.json``) is ``Embedding(V, 16) -> LSTM(16, 24) -> Dense(24, 2)``,
trained by ``scripts/train_sentiment.py`` with lrp_ref's own BPTT
(Adam, seeded) on ``make_sentiment(4000, seed=0)``. Its accuracy on the held-out
``make_sentiment(1000, seed=1)`` is :data:`TEST_ACCURACY`
(``tests/test_sentiment.py`` checks it).

Usage::

    from lrp_ref.zoo import sentiment
    net, vocab = sentiment.load_model()
    ids = vocab.encode(["This movie was brilliant."])       # (1, 5) token ids
    e = net.explain(ids, rule=lrp_ref.Epsilon(1e-3))         # e.relevance: (1, 5)
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files

import numpy as np

from ..io import load
from ..layers.base import Layer

__all__ = [
    "CLASSES",
    "INTENSIFIERS",
    "NEGATIONS",
    "NEGATIVE",
    "POSITIVE",
    "TEST_ACCURACY",
    "SentimentData",
    "Vocabulary",
    "load_model",
    "make_sentiment",
    "tokenize",
]

CLASSES = ("negative", "positive")
POSITIVE = ("good", "great", "brilliant", "wonderful", "excellent", "superb", "lovely", "fun")
NEGATIVE = ("bad", "awful", "boring", "terrible", "dull", "poor", "horrible", "weak")
NEGATIONS = ("not", "never")
INTENSIFIERS = ("very", "really", "so", "truly", "extremely")
OPENERS = ("", "honestly ,", "overall ,", "i think", "in the end ,", "to be fair ,")
DETERMINERS = ("this", "the")
MODIFIERS = ("", "", "new", "long", "old", "french")
NOUNS = ("movie", "film", "plot", "acting", "story", "ending", "music", "show")
VERBS = ("was", "is", "seemed", "felt")
CLOSERS = ("", "", "to me", "at times", "in my opinion", "overall")

#: Test accuracy of the shipped model on ``make_sentiment(1000, seed=1)``: 1000/1000
#: (the template's rule is learnable exactly; the train loss is ~1e-4 after 8 epochs).
TEST_ACCURACY = 1.0

_MODEL_FILE = "sentiment_lstm.npz"
_VOCAB_FILE = "sentiment_vocab.json"


def tokenize(text: str) -> list[str]:
    """Lower-case words and the punctuation marks ``. , ! ?`` as separate tokens."""
    return re.findall(r"[a-z]+|[.,!?]", text.lower())


@dataclass(frozen=True)
class SentimentData:
    """Sentences with labels and their deciding tokens.

    Attributes
    ----------
    sentences : list of list of str
        Tokens of each sentence (lengths vary).
    labels : ndarray of int, shape (N,)
        0 negative, 1 positive.
    deciding : list of ndarray of bool
        Per sentence, True at the adjective and the negation.
    """

    sentences: list[list[str]]
    labels: np.ndarray
    deciding: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.sentences)


def make_sentiment(n: int, seed: int = 0, negation: float = 0.35, intensifier: float = 0.35,
                   contrast: float = 0.3) -> SentimentData:
    """Generate ``n`` sentences from the template (module docstring).

    Parameters
    ----------
    n : int
    seed : int
        Seeds ``np.random.default_rng``; the same seed gives the same sentences.
    negation, intensifier : float
        Probabilities that a clause has a negation or an intensifier.
    contrast : float
        Probability of a leading distractor clause joined by ``, but``.

    Returns
    -------
    SentimentData
    """
    rng = np.random.default_rng(seed)

    def pick(words: Sequence[str]) -> list[str]:
        return words[rng.integers(len(words))].split()

    def clause() -> tuple[list[str], list[bool], int]:
        """subject verb [negation] [intensifier] adjective; marks on the deciding tokens."""
        positive, negated = bool(rng.integers(2)), bool(rng.random() < negation)
        tokens = pick(DETERMINERS) + pick(MODIFIERS) + pick(NOUNS) + pick(VERBS)
        marks = [False] * len(tokens)
        if negated:
            tokens, marks = tokens + pick(NEGATIONS), marks + [True]
        if rng.random() < intensifier:
            tokens, marks = tokens + pick(INTENSIFIERS), marks + [False]
        return (tokens + pick(POSITIVE if positive else NEGATIVE), marks + [True],
                int(positive != negated))

    sentences, labels, deciding = [], [], []
    for _ in range(n):
        tokens = pick(OPENERS)
        if rng.random() < contrast:
            tokens += clause()[0] + [",", "but"]
        marks = [False] * len(tokens)
        last, last_marks, label = clause()
        closer = pick(CLOSERS) + ["."]
        sentences.append(tokens + last + closer)
        deciding.append(np.array(marks + last_marks + [False] * len(closer)))
        labels.append(label)
    return SentimentData(sentences, np.array(labels), deciding)


class Vocabulary:
    """Token <-> id mapping (id = position in ``tokens``)."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = list(tokens)
        self.ids = {token: k for k, token in enumerate(self.tokens)}
        if len(self.ids) != len(self.tokens):
            raise ValueError("Vocabulary: tokens must be unique")

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def of_template(cls) -> Vocabulary:
        """Every token the template can produce, sorted."""
        words = {w for group in (POSITIVE, NEGATIVE, NEGATIONS, INTENSIFIERS, OPENERS,
                                 DETERMINERS, MODIFIERS, NOUNS, VERBS, CLOSERS)
                 for phrase in group for w in phrase.split()}
        return cls(sorted(words | {".", ",", "but"}))

    def encode(self, sentences: Sequence[str | Sequence[str]]) -> np.ndarray:
        """Token ids ``(B, T)`` of sentences of equal length (text or token lists).

        Raises
        ------
        ValueError
            For unknown words (naming them) or sentences of different lengths.
        """
        token_lists = [tokenize(s) if isinstance(s, str) else list(s) for s in sentences]
        unknown = sorted({t for tokens in token_lists for t in tokens if t not in self.ids})
        if unknown:
            raise ValueError(f"unknown word(s) {unknown}; the vocabulary is {self.tokens}")
        lengths = {len(tokens) for tokens in token_lists}
        if len(lengths) != 1:
            raise ValueError(f"sentences must have equal lengths to be batched, got "
                             f"{sorted(lengths)}; encode them separately")
        return np.array([[self.ids[t] for t in tokens] for tokens in token_lists])


def load_model() -> tuple[Layer, Vocabulary]:
    """The shipped LSTM classifier and its vocabulary (module docstring)."""
    data = files("lrp_ref.zoo") / "data"
    with (data / _VOCAB_FILE).open("r", encoding="utf-8") as f:
        vocab = Vocabulary(json.load(f)["tokens"])
    with (data / _MODEL_FILE).open("rb") as f:
        return load(f), vocab
