import os

from hypothesis import HealthCheck, settings

# CI runs derandomized so that a green run stays green; locally each run explores new inputs.
settings.register_profile(
    "minigrad",
    deadline=None,
    max_examples=25,
    derandomize=os.environ.get("CI") == "true",
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("minigrad")
