"""Pictures (matplotlib): heatmaps and ledger charts (:mod:`.plot`) and the README's
figures (:mod:`.figures`). Imported only when asked for: the core needs NumPy only."""
