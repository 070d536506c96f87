"""The main command as a newcomer runs it: quiet start-up, the next commands, a helpful rerun.

It runs as the README writes it, ``bash scripts/run.sh`` (shortened by extra arguments, which the
script passes to training/fit.py), when the project's .venv is up to date: the setup script must
then start training silently, without reinstalling. With a stale .venv (a test run outside
``scripts/test.sh``) it runs ``python training/fit.py`` in this interpreter instead.
"""

import json
import os
import platform
import re
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIT = os.path.join(ROOT, "training", "fit.py")

# TensorFlow's C++ start-up lines (absl/TSL logging, printed before Python can filter them).
NOISE = re.compile(
    r"cudart_stub|cuInit|cuda_platform|cpu_feature_guard|oneDNN custom operations|"
    r"absl::InitializeLog|"
    r"^[IWE]\d{4} \d\d:\d\d:\d\d",
    re.MULTILINE,
)


MAIN_COMMAND = ["bash", "scripts/run.sh"]  # README.md's main command


def venv_is_current():
    stamp = os.path.join(ROOT, ".venv", ".keras_padfree_installed")
    if not os.path.isfile(stamp):
        return False
    import hashlib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        want = hashlib.sha256(f.read()).hexdigest()
    with open(stamp) as f:
        return f.read().strip() == want


def _run(args, **env):
    full_env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    full_env.update({"PYTHONPATH": ROOT, "KERAS_BACKEND": "tensorflow", **env})
    command = MAIN_COMMAND if venv_is_current() else [sys.executable, FIT]
    return subprocess.run(
        command + args,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )


@pytest.mark.heavy
def test_main_command_is_quiet_ends_with_the_next_commands_and_reruns_helpfully(tmp_path):
    out = str(tmp_path / "default")
    args = [
        "--output-dir",
        out,
        "--epochs",
        "1",
        "--steps-per-epoch",
        "2",
        "--eval-steps",
        "1",
        "--batch-size",
        "16",
        "--verbose",
        "2",
    ]
    first = _run(args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert not NOISE.search(first.stdout + first.stderr), first.stdout + first.stderr
    assert "[setup]" not in first.stdout  # an up-to-date environment is used silently
    best = os.path.join(out, "best.keras")
    with open(os.path.join(out, "final.json")) as f:
        model = json.load(f)["model"]  # the default model's registered name
    assert "resnet20" in model and "FutureWarning" not in first.stderr
    if platform.machine().lower() in ("x86_64", "amd64"):
        # fit.py turns on TensorFlow's oneDNN kernels before TensorFlow loads, and with them the
        # fused BatchNormalization (training.startup, training.speed).
        speed_line = next(ln for ln in first.stdout.splitlines() if ln.startswith("speed:"))
        assert "kernels=tensorflow.batch_normalization" in speed_line, speed_line
    evaluate = f"python training/evaluate.py --model-path {best} --dataset digits"
    export = (
        f"python training/export_tflite.py --model-path {best} --output "
        f"{os.path.join(out, model + '.tflite')}"
    )
    lines = first.stdout.rstrip().splitlines()
    assert lines[-2:] == [f"  {evaluate}", f"  {export}"], first.stdout
    with open(best, "rb") as f:
        best_bytes = f.read()

    # The same command again: nothing retrained or overwritten, the same next steps.
    second = _run(args)
    assert second.returncode == 0, second.stderr[-3000:]
    assert not NOISE.search(second.stdout + second.stderr), second.stdout + second.stderr
    assert "already finished" in second.stdout and "--no-resume" in second.stdout
    assert second.stdout.rstrip().splitlines()[-2:] == lines[-2:]
    with open(best, "rb") as f:
        assert f.read() == best_bytes
