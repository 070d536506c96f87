"""Image-folder scans of these tests are cached in a temporary folder, not in the user's cache."""

import pytest


@pytest.fixture(autouse=True)
def _scan_cache_in_tmp(tmp_path_factory, monkeypatch):
    # Not under the test's tmp_path: tests use that folder itself as an image-folder dataset.
    monkeypatch.setenv("KERAS_PADFREE_CACHE_DIR", str(tmp_path_factory.mktemp("scan_cache")))
