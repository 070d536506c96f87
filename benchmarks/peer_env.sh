#!/usr/bin/env bash
# Creates (or reuses) benchmarks/.venv: the environment in which benchmarks/train_throughput.py
# runs its PyTorch rows, the native peers (torchvision's mobilenet_v3_large and
# shufflenet_v2_x1_0, timm's ghostnet_100) and the zoo's models on Keras' torch backend, so that
# every PyTorch number of one results table comes from one torch version.
#
# Why a second environment: the project's .venv holds the CPU build torch 2.13.0 (from local disk,
# scripts/constraints.txt), and torchvision's wheels on PyPI are built against the CUDA builds of
# torch: beside the CPU build their compiled ops do not load ("operator torchvision::nms does not
# exist"). A matching pair is torch 2.14.1 + torchvision 0.29.1 (a CUDA build of torch that runs on
# the CPU; about 5.5 GB in the environment), within the `bench` extra of
# pyproject.toml; keras is the version the project's .venv has, so that both environments run the
# same Keras
# (and TensorFlow, which keras_padfree.data imports for tf.data whatever the backend).
#
#     bash benchmarks/peer_env.sh            # prints the environment's python when ready
#     PEER_VENV=/elsewhere bash benchmarks/peer_env.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PEER_VENV:-$ROOT/benchmarks/.venv}"
PY="${PYTHON:-python3}"
TORCH="torch==2.14.1"
TORCHVISION="torchvision==0.29.1"
TIMM="timm==1.0.29"
# keras_padfree's training and data modules import TensorFlow (tf.data) whatever the backend.
KERAS="keras"
TENSORFLOW="tensorflow"
if [ -x "$ROOT/.venv/bin/python" ]; then
    KERAS="keras==$("$ROOT/.venv/bin/python" -c 'import keras; print(keras.__version__)')"
    TENSORFLOW="tensorflow==$("$ROOT/.venv/bin/python" -m pip show tensorflow 2>/dev/null \
        | sed -n 's/^Version: //p')"
    [ "$TENSORFLOW" = "tensorflow==" ] && TENSORFLOW="tensorflow"
fi
WANT="$TORCH $TORCHVISION $TIMM $KERAS $TENSORFLOW"
STAMP="$VENV/.peer_env_installed"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
    echo "$VENV/bin/python"
    exit 0
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
{
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # torch and torchvision first and together, so that nothing else picks another torch.
    "$VENV/bin/python" -m pip install -q "$TORCH" "$TORCHVISION"
    "$VENV/bin/python" -m pip install -q "$TORCH" "$TORCHVISION" "$TIMM" "$KERAS" \
        "$TENSORFLOW" numpy h5py
} >"$log" 2>&1 || {
    status=$?
    echo "[peer_env] failed (exit status $status) creating $VENV. Its output:" >&2
    cat "$log" >&2
    exit "$status"
}
echo "$WANT" > "$STAMP"
echo "$VENV/bin/python"
