"""Developments of LRP built on ``explain``: concept relevance (:mod:`.crp`), contrastive
LRP (:mod:`.contrastive`), relative attributing propagation as its authors' code computes
it (:mod:`.rap`) and the helpers for token-id networks (:mod:`.text`)."""
