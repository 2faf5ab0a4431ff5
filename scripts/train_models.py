"""Train the shipped models and write ``lrp_ref/zoo/data/<name>.npz``.

Usage (from the repository root; about two minutes on 2 cores)::

    PYTHONPATH=. python scripts/train_models.py            # all four models
    PYTHONPATH=. python scripts/train_models.py digits_cnn # one of them

Every model is trained with lrp_ref's own ``forward``/``backward`` and the
NumPy Adam of ``lrp_ref.train`` (softmax cross-entropy), from He-initialised
weights drawn with ``np.random.default_rng(seed)``; the splits are those of
``lrp_ref.models.data``. The script prints the test accuracy of each model: it
is the number documented in ``lrp_ref/models.py`` and ``docs/models.md``.

BatchNorm (``digits_cnn``). lrp_ref's BatchNorm is the inference-mode affine
map with frozen running statistics. To train with batch statistics, the
script uses :class:`BatchStatsNorm2d`, a BatchNorm2d that normalises with the
mean and variance of the current batch and back-propagates through them
(Ioffe and Szegedy 2015). After training, the running statistics are set to the
exact mean and (biased) variance of each BatchNorm input over the whole
training set, computed layer by layer with the final weights, and every
BatchStatsNorm2d is replaced by a plain ``BatchNorm2d`` with those statistics
and the learned ``gamma``, ``beta``. The shipped network is therefore an honest
inference network: its forward pass is exactly the affine BatchNorm that the
LRP treatments (affine rule, ``Pass()``, folding) explain, and the documented
accuracy is that network's.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import lrp_ref as lrp
from lrp_ref.layers.base import Layer
from lrp_ref.zoo import models
from lrp_ref.zoo.train import accuracy, fit

OUT = Path(__file__).resolve().parent.parent / "lrp_ref" / "zoo" / "data"
BN_EPS = 1e-5


class BatchStatsNorm2d(lrp.BatchNorm2d):
    """BatchNorm2d in training mode: normalises with the statistics of the batch.

    ``y = gamma x_hat + beta`` with ``x_hat = (x - mu_B) / sqrt(var_B + eps)``
    per channel; the gradient flows through ``mu_B`` and ``var_B``::

        dL/dx = gamma / sqrt(var_B + eps) * (g - mean(g) - x_hat * mean(g x_hat))

    (means over batch and positions, ``g = dL/dy``). Used only while training.
    """

    def __init__(self, channels: int) -> None:
        super().__init__(np.ones(channels), np.zeros(channels), np.zeros(channels),
                         np.ones(channels), eps=BN_EPS)
        self._x_hat: np.ndarray | None = None

    def _forward(self, x: np.ndarray) -> np.ndarray:
        mean = x.mean(axis=(0, 2, 3), keepdims=True)
        self._inv_std = 1 / np.sqrt(x.var(axis=(0, 2, 3), keepdims=True) + self.eps)
        self._x_hat = (x - mean) * self._inv_std
        return self._per_channel(self.gamma) * self._x_hat + self._per_channel(self.beta)

    def _compute_parameter_gradients(self, x: np.ndarray, g: np.ndarray) -> dict[str, np.ndarray]:
        # grad_gamma, grad_beta (read through gradients()) from this backward's x and g
        axes = (0, 2, 3)
        inv_std = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + self.eps)
        x_hat = (x - x.mean(axis=axes, keepdims=True)) * inv_std
        return {"gamma": (g * x_hat).sum(axis=axes), "beta": g.sum(axis=axes)}

    def _backward(self, g: np.ndarray) -> np.ndarray:
        super()._backward(g)        # books (x, g) for _compute_parameter_gradients
        axes = (0, 2, 3)
        x_hat = self._x_hat
        centred = (g - g.mean(axis=axes, keepdims=True)
                   - x_hat * (g * x_hat).mean(axis=axes, keepdims=True))
        return self._per_channel(self.gamma) * self._inv_std * centred


def he(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    """He et al. 2015 initialisation: normal with variance ``2 / fan_in``."""
    return rng.standard_normal(shape) * np.sqrt(2 / fan_in)


def dense(rng: np.random.Generator, n_in: int, n_out: int) -> lrp.Dense:
    return lrp.Dense(he(rng, (n_in, n_out), n_in), np.zeros(n_out))


def conv(rng: np.random.Generator, c_in: int, c_out: int, k: int = 3) -> lrp.Conv2d:
    return lrp.Conv2d(he(rng, (c_out, c_in, k, k), c_in * k * k), np.zeros(c_out), padding=k // 2)


def digits_mlp(rng: np.random.Generator) -> lrp.Sequential:
    return lrp.Sequential([lrp.Flatten(), dense(rng, 64, 64), lrp.ReLU(),
                           dense(rng, 64, 32), lrp.ReLU(), dense(rng, 32, 10)])


def digits_cnn(rng: np.random.Generator) -> lrp.Sequential:
    return lrp.Sequential([
        conv(rng, 1, 8), BatchStatsNorm2d(8), lrp.ReLU(), lrp.MaxPool2d(2),     # 8 x 4 x 4
        conv(rng, 8, 16), BatchStatsNorm2d(16), lrp.ReLU(), lrp.MaxPool2d(2),   # 16 x 2 x 2
        lrp.Flatten(), dense(rng, 64, 32), lrp.ReLU(), dense(rng, 32, 10),
    ])


def credit_mlp(rng: np.random.Generator) -> lrp.Sequential:
    return lrp.Sequential([dense(rng, 7, 16), lrp.ReLU(), dense(rng, 16, 8), lrp.ReLU(),
                           dense(rng, 8, 2)])


def shapes_cnn(rng: np.random.Generator) -> lrp.Sequential:
    block = lrp.Sequential([conv(rng, 8, 8), lrp.ReLU(), conv(rng, 8, 8)])
    block.layers[-1].weight[...] *= 0.5          # start the residual branch small
    return lrp.Sequential([
        conv(rng, 1, 8), lrp.ReLU(), lrp.MaxPool2d(2),                           # 8 x 16 x 16
        lrp.Residual(block), lrp.ReLU(), lrp.MaxPool2d(2),                       # 8 x 8 x 8
        conv(rng, 8, 16), lrp.ReLU(), lrp.MaxPool2d(2),                          # 16 x 4 x 4
        lrp.Flatten(), dense(rng, 256, 3),
    ])


#: name -> (architecture, epochs, batch size, learning rate, seed)
RECIPES = {
    "digits_mlp": (digits_mlp, 60, 32, 1e-3, 0),
    "digits_cnn": (digits_cnn, 20, 32, 3e-3, 0),
    "credit_mlp": (credit_mlp, 40, 64, 1e-3, 0),
    "shapes_cnn": (shapes_cnn, 6, 32, 2e-3, 0),
}


def freeze_batchnorm(net: lrp.Sequential, x: np.ndarray) -> lrp.Sequential:
    """Replace every BatchStatsNorm2d by a BatchNorm2d with full-training-set statistics.

    The statistics of each BatchNorm's input are computed with the final weights
    and the BatchNorms before it already frozen, so they are exactly the mean and
    biased variance that layer sees at inference on the training set.
    """
    layers: list[Layer] = []
    a = x
    for layer in net.layers:
        if isinstance(layer, BatchStatsNorm2d):
            layer = lrp.BatchNorm2d(layer.gamma.copy(), layer.beta.copy(),
                                    a.mean(axis=(0, 2, 3)), a.var(axis=(0, 2, 3)), eps=BN_EPS)
        a = layer.forward(a)
        layers.append(layer)
    return lrp.Sequential(layers)


def train(name: str) -> tuple[lrp.Sequential, float]:
    """Train model ``name``; return the inference network and its test accuracy."""
    architecture, epochs, batch_size, lr, seed = RECIPES[name]
    net = architecture(np.random.default_rng(seed))
    x, y = models.data(name, "train")
    history = fit(net, x, y, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    net = freeze_batchnorm(net, x)
    print(f"{name}: loss {history[0]:.4f} -> {history[-1]:.4f} over {epochs} epochs, "
          f"train accuracy {accuracy(net, x, y):.4f}")
    x_test, y_test = models.data(name, "test")
    return net, accuracy(net, x_test, y_test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"models to train, of {list(RECIPES)} (default: all)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"directory (default {OUT})")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(RECIPES))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {list(RECIPES)}")
    for name in args.names or list(RECIPES):
        start = time.perf_counter()
        net, acc = train(name)
        n_test = len(models.data(name, "test")[1])
        lrp.save(net, args.out / f"{name}.npz")
        print(f"{name}: test accuracy {acc:.4f} ({round(acc * n_test)}/{n_test}), "
              f"{time.perf_counter() - start:.0f} s -> {args.out / f'{name}.npz'}")


if __name__ == "__main__":
    main()
