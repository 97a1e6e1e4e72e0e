"""Settings every test shares.

Hypothesis: CI runs on two cores shared with other work, so no property test may depend on how
fast examples are generated or run. The profile loaded here (before any test module is imported,
so every ``@settings(...)`` inherits it) turns off the speed-dependent health checks and the
per-example deadline.
"""
from hypothesis import HealthCheck, settings

settings.register_profile(
    "dockyard",
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
settings.load_profile("dockyard")
