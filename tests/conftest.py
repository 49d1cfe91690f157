import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
sys.path.insert(0, str(TESTS))  # tests/fabricate.py


@pytest.fixture
def study_config() -> dict:
    """The repository's config.yaml, validated, as a fresh dict."""
    from advmri.config import load_config

    return load_config(REPO / "config.yaml")


@pytest.fixture
def tiny_synthesis(study_config) -> dict:
    """Synthesis settings of the paper config (a fresh copy to modify)."""
    return study_config["synthesis"]
