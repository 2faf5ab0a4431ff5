"""Convert ``torch.nn.Embedding`` and ``torch.nn.LSTM`` modules to lrp_ref layers.

A hook for the torch importer: :func:`convert_module` returns the lrp_ref layer
for the module types it knows and None for every other module, so a
converter can try it first and fall through. torch is imported lazily (the
optional ``oracle`` extra); nothing here runs at ``import lrp_ref``.

Mapping (forward outputs identical up to float rounding):

* ``nn.Embedding(V, D)`` -> :class:`~lrp_ref.Embedding` with ``weight``
  ``(V, D)``. ``padding_idx`` only affects training and is ignored;
  ``max_norm`` renormalises rows inside forward and is refused.
* ``nn.LSTM(F, H, batch_first=True)`` (one layer, no projection) ->
  :class:`~lrp_ref.LSTM` with torch's ``weight_ih_l0``, ``weight_hh_l0``,
  ``bias_ih_l0``, ``bias_hh_l0`` (zeros when ``bias=False``). With
  ``return_sequences=False`` (the default) it outputs ``h_n[-1]``; with True,
  torch's ``output``.
* ``bidirectional=True`` -> :class:`~lrp_ref.Bidirectional` of the ``_l0``
  and ``_l0_reverse`` parameters; it outputs ``torch.cat([h_n[0], h_n[1]], -1)``,
  or ``output`` with ``return_sequences=True``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..layers import LSTM, Bidirectional, Embedding, Layer
from .peers import import_torch


def convert_module(module: Any, path: str = "", return_sequences: bool = False,
                   dtype: Any = np.float64) -> Layer | None:
    """The lrp_ref layer for an ``nn.Embedding`` or ``nn.LSTM``; None for other modules.

    Parameters
    ----------
    module : torch.nn.Module
    path : str
        The module's name in its model (``named_modules``), used in error messages.
    return_sequences : bool
        For an LSTM: output every step (torch's ``output``) instead of the final
        hidden state (``h_n``).
    dtype : numpy dtype
        The dtype of the converted parameters (float64 by default).

    Raises
    ------
    ValueError
        For a configuration lrp_ref does not compute identically (a stacked or
        projected LSTM, ``batch_first=False``, an Embedding with ``max_norm``).
    """
    torch = import_torch()
    if isinstance(module, torch.nn.Embedding):
        if module.max_norm is not None:
            raise ValueError(f"torch module '{path}' (Embedding): max_norm renormalises rows "
                             "during forward; lrp_ref's Embedding is a plain lookup")
        return Embedding(_array(module.weight, dtype))
    if isinstance(module, torch.nn.LSTM):
        return _convert_lstm(module, path, return_sequences, dtype)
    return None


def _array(tensor: Any, dtype: Any) -> np.ndarray:
    return tensor.detach().cpu().double().numpy().astype(dtype)


def _convert_lstm(module: Any, path: str, return_sequences: bool, dtype: Any) -> Layer:
    where = f"torch module '{path}' (LSTM)"
    if module.num_layers != 1:
        raise ValueError(f"{where}: num_layers={module.num_layers}; lrp_ref converts "
                         "single-layer LSTMs (stack them with return_sequences=True)")
    if not module.batch_first:
        raise ValueError(f"{where}: batch_first=False; lrp_ref's LSTM takes (B, T, F) "
                         "input, build the torch module with batch_first=True")
    if module.proj_size:
        raise ValueError(f"{where}: proj_size={module.proj_size}; projections are not supported")

    def direction(suffix: str) -> LSTM:
        params = {name: getattr(module, f"{name}_l0{suffix}", None)
                  for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        return LSTM(**{name: None if p is None else _array(p, dtype)
                       for name, p in params.items()}, return_sequences=return_sequences)

    if module.bidirectional:
        return Bidirectional(direction(""), direction("_reverse"))
    return direction("")
