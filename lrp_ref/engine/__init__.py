"""The linear-rule engine: the four steps ``z, s, c, R`` (:mod:`.linear`), their tuning
(:mod:`.kernels`) and the sliding windows of convolution and pooling (:mod:`.patches`)."""
