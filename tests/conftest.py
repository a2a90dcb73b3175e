"""Shared pytest fixtures for the end-to-end tests, which drive the real radixlm binary."""
import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = REPO.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def radixlm_bin() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("RADIXLM_BIN", REPO / "build" / "release" / "src" / "apps" / "radixlm"))
    if not path.exists():
        pytest.fail(f"radixlm binary not found at {path}: build first (scripts/test.sh does)")
    return path


@pytest.fixture(scope="session")
def fixtures_dir() -> pathlib.Path:
    return FIXTURES
