"""Test-suite settings.

Hypothesis runs at least 200 examples per property (the CI requirement); the
``dev`` profile (``HYPOTHESIS_PROFILE=dev``) runs 30 for quick local loops; the
``fuzz`` profile (``pytest --hypothesis-profile=fuzz``, a nightly run) runs ten times
the ``ci`` examples (tests/test_fuzz.py runs a quarter of the profile's examples).
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
settings.register_profile(
    "fuzz", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
