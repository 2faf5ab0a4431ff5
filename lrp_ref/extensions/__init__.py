"""Developments of LRP built on ``explain``: concept relevance (:mod:`.crp`), contrastive
LRP (:mod:`.contrastive`) and the helpers for token-id networks (:mod:`.text`)."""
