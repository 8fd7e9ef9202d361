from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.exists():
        pytest.skip("shared/ data folder not present beside the checkout")
    return SHARED


@pytest.fixture(autouse=True)
def _packaged_profiles():
    """--stack/--profile install profiles process-wide (cli/bands_opts.py); every test starts
    from the packaged ones."""
    from siliconomics.catalog.registry import override_efficiency

    override_efficiency({})
    yield
    override_efficiency({})


@pytest.fixture(scope="session")
def shared_cv(shared):
    """Leave-one-source-out cross-validation of the shared file (computed once per session)."""
    from siliconomics.cli.calibrate_cmds import run_cv

    return run_cv([shared / "validation/measured.csv"])
