"""LSTM and Embedding against torch.nn (the optional oracle extra), via the converters
of lrp_ref.interop.torch_rnn. Skipped, with the reason, when torch is not importable."""

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref.interop import peers
from lrp_ref.interop.torch_rnn import convert_module

try:
    torch = peers.import_torch()
except ImportError as exc:
    pytest.skip(f"torch not importable, oracle tests skipped: {exc}", allow_module_level=True)


def torch_lstm(F, H, bidirectional=False, bias=True, seed=0):
    torch.manual_seed(seed)
    return torch.nn.LSTM(F, H, batch_first=True, bidirectional=bidirectional,
                         bias=bias).double()


def close(actual, expected, rtol):
    scale = float(np.abs(expected).max()) + 1e-300
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * scale)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_forward_matches_torch(bidirectional, bias):
    module = torch_lstm(3, 4, bidirectional, bias)
    x = np.random.default_rng(0).standard_normal((2, 6, 3))
    with torch.no_grad():
        output, (h_n, _) = module(torch.from_numpy(x))
    final = torch.cat(list(h_n), dim=-1).numpy()
    # sigmoid as (1 + tanh(x/2))/2 and another summation order: a few ulps per step
    close(convert_module(module, "lstm").forward(x), final, 1e-12)
    close(convert_module(module, "lstm", return_sequences=True).forward(x), output.numpy(),
          1e-12)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradients_match_torch_autograd(bidirectional):
    module = torch_lstm(2, 3, bidirectional, seed=1)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 2))
    layer = convert_module(module, "lstm", return_sequences=True)
    r = rng.standard_normal(layer.forward(x).shape)
    grad_x = layer.backward(r)
    x_t = torch.from_numpy(x).requires_grad_(True)
    (module(x_t)[0] * torch.from_numpy(r)).sum().backward()
    close(grad_x, x_t.grad.numpy(), 1e-12)
    directions = [("", layer)] if not bidirectional else [("", layer.lstm_fwd),
                                                          ("_reverse", layer.lstm_bwd)]
    for suffix, lstm in directions:
        for name in lstm.array_names:
            close(getattr(lstm, f"grad_{name}"),
                  getattr(module, f"{name}_l0{suffix}").grad.numpy(), 1e-12)


def test_text_classifier_matches_torch():
    torch.manual_seed(2)
    embedding, lstm, linear = (torch.nn.Embedding(9, 3).double(), torch_lstm(3, 5, seed=2),
                               torch.nn.Linear(5, 2).double())
    ids = np.random.default_rng(2).integers(0, 9, (3, 7))
    with torch.no_grad():
        _, (h_n, _) = lstm(embedding(torch.from_numpy(ids)))
        logits = linear(h_n[-1]).numpy()
    net = lrp.Sequential([convert_module(embedding, "embedding"), convert_module(lstm, "lstm"),
                          lrp.Dense(linear.weight.detach().numpy().T,
                                    linear.bias.detach().numpy())])
    close(net.forward(ids), logits, 1e-12)
    e = net.explain(ids, rule=lrp.Epsilon(1e-6))
    assert e.relevance.shape == ids.shape


def test_embedding_converts_exactly_and_padding_idx_is_kept():
    module = torch.nn.Embedding(6, 4, padding_idx=0).double()
    ids = np.array([[0, 5, 2]])
    layer = convert_module(module, "emb")
    with torch.no_grad():
        np.testing.assert_array_equal(layer.forward(ids), module(torch.from_numpy(ids)).numpy())
    np.testing.assert_array_equal(layer.weight[0], 0)


@pytest.mark.parametrize("module, message", [
    (lambda: torch.nn.LSTM(3, 4, num_layers=2, batch_first=True), "num_layers=2"),
    (lambda: torch.nn.LSTM(3, 4), "batch_first=False"),
    (lambda: torch.nn.LSTM(3, 4, batch_first=True, proj_size=2), "proj_size=2"),
    (lambda: torch.nn.Embedding(5, 2, max_norm=1.0), "max_norm"),
])
def test_unsupported_configurations_are_refused(module, message):
    with pytest.raises(ValueError, match=rf"torch module 'm' \(\w+\): {message}"):
        convert_module(module(), "m")


def test_other_modules_are_left_to_the_caller():
    assert convert_module(torch.nn.Linear(2, 2), "fc") is None
