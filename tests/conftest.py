import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for `import naive`

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def camera():
    from nlmeans.io import read_image

    return read_image(DATA / "camera.png").data


@pytest.fixture(scope="session")
def astronaut():
    from nlmeans.io import read_image

    return read_image(DATA / "astronaut.png").data


# Hypothesis: a quick profile for the default run, a long one for the dedicated fuzz step
# (`pytest -m fuzz -p no:cacheprovider --hypothesis-profile=fuzz`, see .ci/run).
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "default", max_examples=25, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "fuzz", max_examples=2500, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("default")
