"""Data tests write the data cache into a temporary folder, never into the user's cache."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _session_data_cache(tmp_path_factory):
    old = os.environ.get("XLIR_DATA_CACHE")
    os.environ["XLIR_DATA_CACHE"] = str(tmp_path_factory.mktemp("xlir-data-cache"))
    yield
    if old is None:
        os.environ.pop("XLIR_DATA_CACHE", None)
    else:
        os.environ["XLIR_DATA_CACHE"] = old


@pytest.fixture
def mirror():
    """The shared data mirror; tests that need it are `real` and skip without it."""
    path = os.environ.get("XLIR_DATA_MIRROR")
    if not path or not os.path.isdir(path):
        pytest.skip("no data mirror (XLIR_DATA_MIRROR)")
    return path
