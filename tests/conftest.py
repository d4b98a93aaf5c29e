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
