"""Train the shipped sentiment transformer: ``python scripts/train_sentiment_transformer.py``.

:func:`lrp_ref.zoo.transformer.train` (one pre-LayerNorm encoder block, two heads, mean
pooling; lrp_ref's own backward pass, Adam, seeded) on ``make_sentiment(4000, seed=0)``;
writes ``lrp_ref/zoo/data/sentiment_transformer.npz`` and prints the loss per epoch and
the accuracy on the held-out ``make_sentiment(1000, seed=1)``, to be copied into
``lrp_ref.zoo.models.SENTIMENT_TRANSFORMER_ACCURACY``. About 25 seconds on one core;
bit-for-bit reproducible with the same NumPy (``tests/test_sentiment_transformer.py``
retrains and compares).
"""

from __future__ import annotations

import time
from pathlib import Path

import lrp_ref as lrp
from lrp_ref.zoo import transformer

DATA = Path(__file__).resolve().parent.parent / "lrp_ref" / "zoo" / "data"


def main() -> None:
    start = time.perf_counter()
    net, vocab, history = transformer.train()
    for epoch, loss in enumerate(history, start=1):
        print(f"epoch {epoch:2d}  loss {loss:.4f}")
    accuracy = transformer.held_out_accuracy(net, vocab)
    print(f"test accuracy {accuracy:.4f} ({round(accuracy * transformer.TEST_N)}/"
          f"{transformer.TEST_N}), {time.perf_counter() - start:.0f} s")
    lrp.save(net, DATA / "sentiment_transformer.npz")


if __name__ == "__main__":
    main()
