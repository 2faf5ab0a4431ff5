"""What lrp_ref ships: small data sets (:mod:`.datasets`, :mod:`.sentiment`), trained
models (:mod:`.models`, files in ``data/``) and the training loop that made them
(:mod:`.train`)."""
