#!/usr/bin/env bash
# The test suite: ruff (lint and format, configured in pyproject.toml), then every test under the
# TensorFlow backend (two pytest workers), and the representative `all_backends` tests under JAX
# and PyTorch, which run one after the other in the background, alongside TensorFlow. Extra
# arguments go to every pytest call, e.g. `bash scripts/test.sh --run-large` or
# `bash scripts/test.sh -k ghostnet`.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
status=0
workers="${PYTEST_WORKERS:-2}"

echo "=== ruff check, ruff format --check"
python -m ruff check --quiet . || status=$?
python -m ruff format --check --quiet . || status=$?

# One compute thread per test process: two TensorFlow workers and the JAX run share two cores, and
# each library's default pool (a thread per core, spinning while it waits) would otherwise fight
# the others for them (measured: tests/applications + tests/layers on two workers, 335 s -> 299 s).
# Callers may set their own.
export TF_NUM_INTRAOP_THREADS="${TF_NUM_INTRAOP_THREADS:-1}"
export TF_NUM_INTEROP_THREADS="${TF_NUM_INTEROP_THREADS:-1}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

# The JAX and PyTorch runs (one process each, one after the other) go in the background, alongside
# the TensorFlow run and its two workers, so that the two cores stay busy until the end.
# JAX compiles every primitive of an eager op and every initializer shape with XLA; its cheapest
# code generation shortens that compile time, which dominates these small test programs.
# (set -e is on: the statuses are caught with `||`, so a failing run still gets its log printed.)
(rc=0
 KERAS_BACKEND=jax \
    XLA_FLAGS="${XLA_FLAGS:---xla_backend_optimization_level=0 --xla_cpu_multi_thread_eigen=false}" \
    python -m pytest -q -p no:cacheprovider "$@" >"$logs/jax.log" 2>&1 || rc=$?
 echo "$rc" >"$logs/jax.rc"
 rc=0
 KERAS_BACKEND=torch python -m pytest -q -p no:cacheprovider "$@" >"$logs/torch.log" 2>&1 || rc=$?
 echo "$rc" >"$logs/torch.rc") &
others_pid=$!

echo "=== pytest, KERAS_BACKEND=tensorflow ($workers workers; JAX, then PyTorch, run alongside)"
KERAS_BACKEND=tensorflow python -m pytest -q -p no:cacheprovider -n "$workers" "$@" || status=$?

wait "$others_pid" || true
for backend in jax torch; do
    echo "=== pytest, KERAS_BACKEND=$backend"
    cat "$logs/$backend.log"
    rc="$(cat "$logs/$backend.rc")"
    [ "$rc" = 0 ] || status=$rc
done
exit $status
