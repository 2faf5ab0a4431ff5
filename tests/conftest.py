"""Test-suite settings.

Hypothesis runs at least 200 examples per property (the CI requirement); the
``dev`` profile (``HYPOTHESIS_PROFILE=dev``) runs 30 for quick local loops.
Deadlines are off: the machine is shared and timing is not what we test.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
