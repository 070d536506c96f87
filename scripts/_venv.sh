# Sourced by the scripts: creates (or reuses) the project's virtual environment at .venv and installs
# the project with every backend and the test tools. Reinstalls only when pyproject.toml changed.
# Each setup step prints one line; the tools' own output (pip's warnings, build banners) goes to a
# log that is shown only when the step fails.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

_setup_step() {  # _setup_step "what it does" command [args...]
    local what="$1" log status=0
    shift
    echo "[setup] $what"
    log="$(mktemp)"
    "$@" >"$log" 2>&1 || status=$?
    if [ "$status" != 0 ]; then
        echo "[setup] failed (exit status $status): $what. Its output:" >&2
        cat "$log" >&2
        rm -f "$log"
        exit "$status"
    fi
    rm -f "$log"
}

if [ ! -x "$VENV/bin/python" ]; then
    _setup_step "creating the virtual environment $VENV" "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.keras_padfree_installed"
WANT="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    # scripts/constraints.txt pins torch to the CPU build this project's machines install from
    # local disk (the published `torch` extra is not pinned); installed first, so that nothing
    # pulls a multi-GB CUDA build.
    _setup_step "upgrading pip" "$VENV/bin/python" -m pip install -q --upgrade pip
    _setup_step "installing torch (CPU build, scripts/constraints.txt)" \
        "$VENV/bin/python" -m pip install -q -c "$ROOT/scripts/constraints.txt" torch
    _setup_step "installing keras_padfree and its dependencies (first run: a few minutes)" \
        "$VENV/bin/python" -m pip install -q -c "$ROOT/scripts/constraints.txt" \
        -e "$ROOT[tensorflow,litert,onnx,jax,torch,plotting,dev]"
    echo "$WANT" > "$STAMP"
    echo "[setup] done: $VENV is ready"
fi
export PATH="$VENV/bin:$PATH"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
cd "$ROOT"
