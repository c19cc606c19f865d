"""Where the real recorded data sets are: ``../shared/datasets/`` beside the repository, as in CI, or
beside the folder of its worktrees (a checkout under ``/work/wt/``)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
_SHARED = (REPO_ROOT.parent / "shared", REPO_ROOT.parent.parent / "shared")
NAB_DIR = next((p for p in _SHARED if (p / "datasets" / "nab").is_dir()), _SHARED[0]) / "datasets" / "nab"


def nab_file(name: str) -> Path:
    """A file of the shared NAB copy; a test fails (never skips) when it is missing."""
    path = NAB_DIR / name
    if not path.is_file():
        pytest.fail(f"{name} (NAB, github.com/numenta/NAB) is missing from {NAB_DIR}; see its README.md")
    return path
