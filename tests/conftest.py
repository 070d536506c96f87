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
    """Fresh Keras state (layer names, TensorFlow's graph and kernel cache) after every test.

    Without the full garbage collection ``clear_session`` runs by default: in a process holding
    a test run's many models it took 0.2-2 s per test, for nothing Python's own collector does
    not do anyway (measured: tests/layers + two more files on TensorFlow, 87.5 s -> 51.1 s; on
    JAX tests/layers + test_speed.py 141 s -> 112 s; peak memory the same, 2.9 / 4.1 GB).
    """
    import keras

    yield
    keras.backend.clear_session(free_memory=False)
