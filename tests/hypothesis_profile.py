"""Bounded hypothesis profiles, so the property tests stay fast in `make test` on 2 cores.

"repbench" (default): 150 examples per test; "repbench-deep" (HYPOTHESIS_PROFILE=repbench-deep): 5,000, for
a long fuzzing session. No deadline: a loaded CI machine must not turn slowness into failures.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
           "derandomize": os.environ.get("CI") == "true"}
settings.register_profile("repbench", max_examples=150, **_COMMON)
settings.register_profile("repbench-deep", max_examples=5000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repbench"))
