"""Test configuration.

The backend is chosen by KERAS_BACKEND before Keras is imported (`scripts/test.sh` runs pytest once
per backend). Under JAX and PyTorch only the tests marked `all_backends` run; `large` tests run with
`--run-large`.
"""

import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BACKEND = os.environ["KERAS_BACKEND"]
REFERENCE_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference")


def pytest_addoption(parser):
    parser.addoption(
        "--run-large", action="store_true", default=False, help="also run the tests marked large"
    )


def pytest_collection_modifyitems(config, items):
    run_large = config.getoption("--run-large")
    skip_large = pytest.mark.skip(reason="large: run with --run-large")
    kept, deselected = [], []
    for item in items:
        if BACKEND != "tensorflow" and "all_backends" not in item.keywords:
            deselected.append(item)
            continue
        if "large" in item.keywords and not run_large:
            item.add_marker(skip_large)
        kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
    # The heavy tests first (stable sort): pytest-xdist hands out the tail of the list on demand, a
    # few tests at a time, so no worker is left running a long test alone at the end of the run.
    items.sort(key=lambda item: "heavy" not in item.keywords)


@pytest.fixture(autouse=True)
def _clear_keras_session():
    import keras

    yield
    keras.backend.clear_session()
