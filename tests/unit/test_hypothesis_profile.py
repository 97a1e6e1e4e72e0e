"""Every property test runs under the shared profile of tests/conftest.py: nothing depends on
how fast the (shared, loaded) machine generates or runs examples."""
from hypothesis import HealthCheck, settings


def test_default_profile_has_no_speed_dependent_checks():
    current = settings.default
    assert current.deadline is None
    for check in (HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                  HealthCheck.large_base_example):
        assert check in current.suppress_health_check


def test_per_test_settings_inherit_the_profile():
    # what `@settings(max_examples=…)` on a test builds: the profile's checks survive
    assert settings(max_examples=7).deadline is None
    assert HealthCheck.too_slow in settings(max_examples=7).suppress_health_check
