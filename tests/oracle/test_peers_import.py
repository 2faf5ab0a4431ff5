"""The oracle libraries import through tests/oracle/peer_imports.py and give known LRP values."""

from types import SimpleNamespace

import numpy as np
import pytest

import peer_imports as peers


def epsilon_lrp(x, weight, bias, relevance_out, eps):
    """Epsilon-LRP through one dense layer, by hand.

    ``R_i = sum_j a_i w_ji / (z_j + eps * sign(z_j)) * R_j`` with sign(0) = +1,
    ``z = weight @ x + bias``; ``weight`` has torch's (out, in) layout, so
    ``w_ji = weight[j, i]``.
    """
    z = weight @ x + bias
    sign = np.where(z >= 0, 1.0, -1.0)
    return x * (weight.T @ (relevance_out / (z + eps * sign)))


def test_zennit_and_captum_import_through_peers(oracle: SimpleNamespace) -> None:
    assert peers.import_zennit() is oracle.zennit
    assert peers.import_captum() is oracle.captum
    assert hasattr(oracle.zennit.rules, "Epsilon")
    assert hasattr(oracle.captum.attr, "LRP")


@pytest.mark.parametrize(
    "weight, bias, x",
    [
        # z = [-0.5, 0.0]: a negative and an exactly-zero pre-activation
        ([[0.5, -0.25, 1.0], [1.0, 1.0, 3.0]], [0.5, 0.0], [1.0, 2.0, -1.0]),
        ([[0.3, -1.2, 0.7], [-0.4, 0.9, 2.1]], [0.1, -0.2], [0.8, -0.5, 1.5]),
    ],
)
def test_zennit_epsilon_matches_hand_computation(oracle, weight, bias, x) -> None:
    torch, zennit = oracle.torch, oracle.zennit
    eps, relevance_out = 0.25, np.array([1.0, -2.0])
    weight, bias, x = np.array(weight), np.array(bias), np.array(x)

    model = torch.nn.Sequential(torch.nn.Linear(3, 2)).to(torch.float64)
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(weight))
        model[0].bias.copy_(torch.from_numpy(bias))
    composite = zennit.composites.LayerMapComposite(
        [(torch.nn.Linear, zennit.rules.Epsilon(epsilon=eps))]
    )
    inputs = torch.from_numpy(x[None]).requires_grad_(True)
    with zennit.attribution.Gradient(model, composite) as attributor:
        _, relevance = attributor(inputs, torch.from_numpy(relevance_out[None]))

    expected = epsilon_lrp(x, weight, bias, relevance_out, eps)
    assert relevance.dtype == torch.float64
    np.testing.assert_allclose(relevance[0].detach().numpy(), expected, rtol=1e-12, atol=0)
