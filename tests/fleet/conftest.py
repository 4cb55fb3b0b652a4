"""The lab-room fleet of the tests: 3 bare Debian 12 hosts + 1 bare Debian 13 host, up for the session."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fleet_harness import build_bases, missing_prerequisites, running_fleet  # noqa: E402

FLEET_NAME = "ci"
LAYOUT = {"bookworm": 3, "trixie": 1}


@pytest.fixture(scope="session")
def fleet() -> Iterator:
    missing = missing_prerequisites()
    if missing:
        pytest.fail(f"the fleet tests need {', '.join(missing)}: run them through scripts/test (as root)")
    build_bases()
    with running_fleet(FLEET_NAME, LAYOUT) as running:
        yield running
