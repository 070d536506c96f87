"""benchmarks/train_throughput.py and benchmarks/peers.py: the plan, the layout check, the report.

The benchmark itself runs outside the test suite; the native peers need torchvision and timm
(``benchmarks/peer_env.sh``), so the test that builds them is skipped where they do not import.
"""

import importlib.util
import os
import sys
from collections import Counter

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")


def _module(name):
    if BENCH not in sys.path:
        sys.path.insert(0, BENCH)
    spec = importlib.util.spec_from_file_location(f"bench_{name}", os.path.join(BENCH, name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _layout(sizes, stats):
    return {
        "trainable": sum(sizes),
        "statistics": sum(stats),
        "trainable_sizes": Counter(sizes),
        "statistics_sizes": Counter(stats),
    }


def test_compare_layouts_names_the_tensors_that_differ():
    peers = _module("peers.py")
    same = peers.compare_layouts(_layout([432, 16, 16], [16, 16]), _layout([16, 432, 16], [16, 16]))
    assert same["equal"] and same["differences"] == []
    # Same total, different tensors (a bias moved): not the same network.
    moved = peers.compare_layouts(_layout([432, 16, 16], [16]), _layout([440, 8, 16], [16]))
    assert not moved["equal"]
    assert moved["differences"] == [
        "trainable tensors only in the peer: {16: 1, 432: 1}, only in the zoo: {8: 1, 440: 1}"
    ]
    stats = peers.compare_layouts(_layout([4], [16, 16]), _layout([4], [16]))
    assert (
        not stats["equal"]
        and "statistics tensors only in the peer: {16: 1}" in (stats["differences"][0])
    )


def test_the_plan_times_every_family_and_the_peers_only_on_torch():
    tt = _module("train_throughput.py")
    args = tt.parse_args([])
    assert args.size == 64 and args.batch_size == 128
    torch_plan = tt.plan("torch", args)
    tf_plan = tt.plan("tensorflow", args)
    assert [c["id"] for c in torch_plan] == list(range(len(torch_plan)))
    natives = [c for c in torch_plan if c["kind"] == "native"]
    assert {c["model"] for c in natives} == {
        "torchvision.mobilenet_v3_large",
        "torchvision.shufflenet_v2_x1_0",
        "timm.ghostnet_100",
    }
    assert not [c for c in tf_plan if c["kind"] == "native"]
    float32 = {(c["model"], c["variant"]) for c in tf_plan if c["policy"] == "float32"}
    assert ("shufflenetv2_pf_vegfru", "pf") in float32 and ("ghostnet_vegfru", "orig") in float32
    # Mixed policies and evidence rows: the first family only, by default.
    mixed = {c["family"] for c in torch_plan if c["policy"] != "float32"}
    assert mixed == {"MobileNetV3-large"}
    assert [c.get("jit_compile") for c in tf_plan if c.get("jit_compile")] == [True]
    narrow = tt.parse_args(["--families", "GhostNet 1.0x", "--policies", "float32"])
    narrow.mixed_families = narrow.evidence_families = []
    assert {c["family"] for c in tt.plan("jax", narrow)} == {"GhostNet 1.0x"}
    with pytest.raises(SystemExit):
        tt.parse_args(["--families", "ResNet"])


def test_opt_in_kernels_are_installed_for_the_all_rows_whatever_the_defaults():
    from keras_padfree.training import speed

    tt = _module("train_throughput.py")
    # JAX installs nothing by default; its "all" row must still time the opt-in kernel.
    jax = speed.default_settings("jax", "cpu")
    assert not jax["fast_kernels"]
    assert tt.kernel_choice("all", "jax", jax) == (True, speed.KERNELS["jax"])
    assert tt.kernel_choice("fast", "jax", jax) == (False, None)
    torch = speed.default_settings("torch", "cpu")
    assert tt.kernel_choice("fast", "torch", torch) == (True, None)  # DEFAULT_KERNELS
    assert tt.kernel_choice("keras", "torch", torch) == (False, ())
    tf = speed.default_settings("tensorflow", "cpu")
    assert tt.kernel_choice("all", "tensorflow", tf) == (True, speed.KERNELS["tensorflow"])
    assert tt.kernel_choice("fast", "tensorflow", tf) == (False, None)
    with pytest.raises(ValueError, match="kernels 'some'"):
        tt.kernel_choice("some", "jax", jax)


def test_workers_start_with_fit_py_environment_and_the_callers_wins(monkeypatch):
    import platform

    tt = _module("train_throughput.py")
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    env = tt.worker_env("tensorflow", EXTRA="x")
    assert env["KERAS_BACKEND"] == "tensorflow" and env["EXTRA"] == "x"
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert env["TF_ENABLE_ONEDNN_OPTS"] == "1"  # as training/fit.py runs
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert tt.worker_env("tensorflow")["TF_ENABLE_ONEDNN_OPTS"] == "0"
    assert tt.worker_env("jax", TF_ENABLE_ONEDNN_OPTS="1")["TF_ENABLE_ONEDNN_OPTS"] == "1"


def test_the_report_gives_ratios_against_the_faster_native_layout(tmp_path):
    tt = _module("train_throughput.py")
    fam = "MobileNetV3-large"

    def zoo(i, variant, kernels="fast", jit=False):
        return {
            "id": i,
            "family": fam,
            "kind": "zoo",
            "variant": variant,
            "model": "m",
            "policy": "float32",
            "kernels": kernels,
            "jit_compile": jit,
        }

    def settings(jit):
        return {"jit_compile": jit, "steps_per_execution": 1, "fast_kernels": True, "why": []}

    results = {
        "date": "d",
        "machine": "x86_64",
        "cpu_flags": ["avx2"],
        "cpus": 2,
        "size": 64,
        "batch": 128,
        "classes": 100,
        "steps": 1,
        "rounds": 3,
        "warmup": 2,
        "load_before": [0.1, 0.2, 0.3],
        "load_after": [0.4, 0.5, 0.6],
        "wall_s": 10.0,
        "note": None,
        "backends": {
            "tensorflow": {
                "keras": "3",
                "tensorflow": "2",
                "settings": settings(False),
                "configs": [zoo(0, "orig"), zoo(1, "pf"), zoo(2, "orig", jit=True)],
                "rates": {"0": [90, 100, 110], "1": [120, 120, 130], "2": [20, 25, 30]},
            },
            "torch": {
                "keras": "3",
                "torch": "2.14",
                "settings": settings(False),
                "configs": [
                    zoo(0, "orig"),
                    {
                        "id": 1,
                        "family": fam,
                        "kind": "native",
                        "variant": "native",
                        "model": "tv",
                        "policy": "float32",
                        "layout": "nchw",
                    },
                    {
                        "id": 2,
                        "family": fam,
                        "kind": "native",
                        "variant": "native",
                        "model": "tv",
                        "policy": "float32",
                        "layout": "channels_last",
                    },
                    zoo(3, "orig", kernels="keras"),
                ],
                "rates": {"0": [60], "1": [40], "2": [50], "3": [30]},
            },
        },
    }
    md, js = tmp_path / "r.md", tmp_path / "r.json"
    tt.write_report(results, str(md), str(js))
    text = md.read_text()
    # best Keras orig (TensorFlow 100) / best native (channels-last 50)
    assert (
        "| 40.0 | 50.0 | 100 | 120 | n/a | n/a | 60.0 | n/a | **2.00x** | 2.00 / - / 1.20 |" in text
    )
    assert "| torch | MobileNetV3-large | Keras' own kernels" in text and "| 2.00x |" in text
    assert "| tensorflow | MobileNetV3-large | jit_compile=True | 25.0 | 100 | 4.00x |" in text
    assert "0.10 / 0.20 / 0.30" in text and js.exists()
    # Older results files held every family at once and stored one load triple after warm-up.
    assert "one process per backend, all models built" in text  # no load_after_warmup at all
    for loads, per_family in (([0.5, 0.6, 0.7], False), ([[0.5, 0.6, 0.7], [0.4, 0.5, 0.6]], True)):
        tt.write_report({**results, "load_after_warmup": loads}, str(md), str(js))
        assert ("one family at a time" in md.read_text()) is per_family, loads


def test_native_peers_hold_the_parameters_of_the_zoo_originals():
    pytest.importorskip("torchvision")
    pytest.importorskip("timm")
    from keras_padfree.applications import create_model

    peers = _module("peers.py")
    for _, orig, _, library, name in peers.FAMILIES:
        check = peers.compare_layouts(
            peers.torch_layout(peers.build_peer(library, name, 100)),
            peers.keras_layout(create_model(orig, classes=100)),
        )
        assert check["equal"], (orig, check)


def test_families_are_timed_one_after_the_other_with_their_own_workers(tmp_path, monkeypatch):
    """Each family gets fresh workers; its configurations are numbered after the previous
    families' and its rates land on its own rows."""
    tt = _module("train_throughput.py")
    started = []

    class FakeWorker:
        def __init__(self, backend, args, log_dir, families):
            self.backend, self.where, self.family = backend, "fake", families[0]
            self.closed = False
            started.append((backend, tuple(families)))
            self.rate = 100.0 * (1 + len(started))

        def read(self):
            configs = [
                {"id": i, "family": self.family, "kind": "zoo", "variant": v, "model": v}
                for i, v in enumerate(("orig", "pf"))
            ]
            return {"ready": {"backend": self.backend, "configs": configs}}

        def ask_round(self):
            return {"0": self.rate, "1": self.rate + 1}

        def close(self):
            self.closed = True

    monkeypatch.setattr(tt, "_Worker", FakeWorker)
    args = tt.parse_args(
        ["--backends", "tensorflow,jax", "--families", "MobileNetV3-large,GhostNet 1.0x"]
        + ["--rounds", "2", "--out-dir", str(tmp_path), "--no-peers"]
    )
    results = tt.run(args)
    assert started == [
        ("tensorflow", ("MobileNetV3-large",)),
        ("jax", ("MobileNetV3-large",)),
        ("tensorflow", ("GhostNet 1.0x",)),
        ("jax", ("GhostNet 1.0x",)),
    ]
    tf = results["backends"]["tensorflow"]
    assert [(c["id"], c["family"], c["variant"]) for c in tf["configs"]] == [
        (0, "MobileNetV3-large", "orig"),
        (1, "MobileNetV3-large", "pf"),
        (2, "GhostNet 1.0x", "orig"),
        (3, "GhostNet 1.0x", "pf"),
    ]
    assert tf["rates"] == {"0": [200.0] * 2, "1": [201.0] * 2, "2": [400.0] * 2, "3": [401.0] * 2}
    assert len(results["load_after_warmup"]) == 2
