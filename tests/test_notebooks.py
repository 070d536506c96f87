"""The notebooks run top to bottom (TensorFlow backend), are stored without outputs, and write
nothing into the repository.

Each notebook is executed with nbclient in a kernel started from the interpreter running the tests
(``sys.executable``, i.e. the project's .venv on a fresh clone): a kernel spec is written to a
temporary Jupyter path, so no kernel needs to be installed beforehand.
"""

import json
import os
import sys
import time

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK_DIR = os.path.join(ROOT, "notebooks")
NOTEBOOKS = ("quickstart.ipynb", "paper_tables.ipynb", "dense_prediction.ipynb")
KERNEL_NAME = "keras_padfree_test_python"
# A hang detector, not the time budget (both notebooks take a few minutes on 2 idle cores): the
# training cell takes over 10 minutes on a heavily shared machine.
CELL_TIMEOUT_S = int(os.environ.get("KERAS_PADFREE_NOTEBOOK_CELL_TIMEOUT", "1800"))


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory):
    """A kernel spec running ``sys.executable -m ipykernel_launcher`` on the TensorFlow backend."""
    jupyter_dir = tmp_path_factory.mktemp("jupyter")
    spec_dir = jupyter_dir / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"keras_padfree tests ({sys.executable})",
        "language": "python",
        # The inline backend even when the test environment sets MPLBACKEND=Agg: the figures
        # must reach the notebook's outputs.
        "env": {
            "KERAS_BACKEND": "tensorflow",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        },
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(
            "JUPYTER_PATH",
            os.pathsep.join(p for p in (str(jupyter_dir), os.environ.get("JUPYTER_PATH")) if p),
        )
        # Kernel runtime files (connection files) go to a temporary folder too.
        mp.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path_factory.mktemp("jupyter_runtime")))
        yield KERNEL_NAME


def _read(name):
    with open(os.path.join(NOTEBOOK_DIR, name)) as f:
        return nbformat.read(f, as_version=4)


def _listing(directory):
    return sorted(os.listdir(directory))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_stored_without_outputs(name):
    nb = _read(name)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{name} has no code cell"
    for i, cell in enumerate(code):
        assert cell.get("outputs") == [], f"{name}: code cell {i} is stored with outputs"
        assert cell.get("execution_count") is None, f"{name}: code cell {i} has an execution count"


@pytest.mark.heavy
@pytest.mark.parametrize(
    "name, cwd",
    [
        ("quickstart.ipynb", NOTEBOOK_DIR),
        ("paper_tables.ipynb", ROOT),
        ("dense_prediction.ipynb", NOTEBOOK_DIR),
    ],
)
def test_notebook_runs(name, cwd, kernel_name):
    nb = _read(name)
    before = {d: _listing(d) for d in (ROOT, NOTEBOOK_DIR)}
    client = nbclient.NotebookClient(
        nb,
        kernel_name=kernel_name,
        timeout=CELL_TIMEOUT_S,
        allow_errors=False,
        resources={"metadata": {"path": cwd}},
    )
    t0 = time.time()
    client.execute()  # raises CellExecutionError (with the traceback) when a cell fails
    elapsed = time.time() - t0
    print(f"{name}: executed in {elapsed:.1f} s (cwd {os.path.relpath(cwd, ROOT) or '.'})")
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.get("output_type") == "error"
    ]
    assert not errors, errors
    text = "".join(
        o.get("text", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.get("output_type") == "stream"
    )
    assert "notebook ran in" in text, "the last cell did not run"
    images = sum(
        1
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "image/png" in o.get("data", {})
    )
    assert images >= 1, f"{name} displayed no figure"
    after = {d: _listing(d) for d in (ROOT, NOTEBOOK_DIR)}
    for d in before:
        new = sorted(set(after[d]) - set(before[d]))
        assert not new, f"{name} wrote {new} into {os.path.relpath(d, ROOT) or '.'}"


# The plotting helpers the notebooks and docs/make_figures.py use (cheap, no notebook kernel).


def test_downsampling_chain_padded_vs_padding_free():
    from keras_padfree import plotting

    assert plotting.downsampling_chain(32, 3, padding_free=False) == [32, 16, 8, 4]
    assert plotting.downsampling_chain(32, 3, padding_free=True) == [32, 15, 7, 3]
    assert plotting.downsampling_chain(112, 4, padding_free=False) == [112, 56, 28, 14, 7]
    assert plotting.downsampling_chain(112, 4, padding_free=True) == [112, 55, 27, 13, 6]
    # 5x5 kernels: padding 2 (orig) and 1 (padding-free) give the same sizes as 3x3.
    assert plotting.downsampling_chain(112, 4, padding_free=True, kernel_size=5) == [
        112,
        55,
        27,
        13,
        6,
    ]
    with pytest.raises(ValueError, match="size"):
        plotting.downsampling_chain(0, 3, padding_free=True)
    with pytest.raises(ValueError, match="steps"):
        plotting.downsampling_chain(32, -1, padding_free=True)
    with pytest.raises(ValueError, match="kernel_size"):
        plotting.downsampling_chain(32, 1, padding_free=True, kernel_size=4)
    with pytest.raises(ValueError, match="below one pixel"):
        plotting.downsampling_chain(8, 3, padding_free=True)


def test_feature_map_chain_ignores_padding_layers():
    import keras

    from keras_padfree import plotting

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.ZeroPadding2D(1)(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2)(x)  # padded: 16
    x = keras.layers.Conv2D(4, 3, strides=2)(x)  # padding-free: 7
    x = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)  # 1x1: left out
    model = keras.Model(inputs, x)
    assert plotting.feature_map_chain(model) == [32, 16, 7]


def test_flops_accuracy_points_come_from_the_registry():
    from keras_padfree import applications
    from keras_padfree import plotting

    points = plotting.flops_accuracy_points(["ghostnet_cifar", "ghostnet_pf_cifar"])
    ((panel, models),) = points.items()
    assert panel == ("set2", "CIFAR-100", 32, 100, "thop_0.0.31")
    ghost = models["cifar_ghostnet"]
    for variant, name in (("orig", "ghostnet_cifar"), ("pf", "ghostnet_pf_cifar")):
        row = applications.get_model_info(name).references[0]
        assert ghost[variant]["flops"] == row.flops
        assert ghost[variant]["top1"] == row.paper_top1
        assert ghost[variant]["name"] == name


def test_latency_results_missing_bad_and_plotted(tmp_path):
    from keras_padfree import plotting

    assert plotting.load_latency_results(tmp_path / "absent.json") is None
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"model": "x"}]))
    with pytest.raises(ValueError, match="pairs"):
        plotting.load_latency_results(bad)
    good = tmp_path / "latency.json"
    good.write_text(
        json.dumps(
            {
                "settings": {"threads": [1]},
                "machine": {"cpu_count": 2},
                "pairs": [
                    {
                        "family": "GhostNet",
                        "size": 32,
                        "orig_flops": 100,
                        "pf_flops": 78,
                        "orig_ms_t1": 2.0,
                        "pf_ms_t1": 1.6,
                    }
                ],
            }
        )
    )
    result = plotting.load_latency_results(good)
    fig = plotting.plot_latency(result)
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="threads"):
        plotting.plot_latency(result, threads=4)
    path = plotting.save_figure(fig, tmp_path / "latency.png")
    assert os.path.getsize(path) > 1000
