#!/usr/bin/env bash
# The test suite: ruff (lint and format, configured in pyproject.toml), then every test under the
# TensorFlow backend (two pytest workers), and the representative `all_backends` tests under JAX
# and PyTorch. The JAX run (mostly one core: XLA
# compiles) starts first in the background so that it overlaps the TensorFlow run; PyTorch follows
# TensorFlow. Extra arguments go to every pytest call, e.g. `bash scripts/test.sh --run-large` or
# `bash scripts/test.sh -k ghostnet`.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
status=0
workers="${PYTEST_WORKERS:-2}"

echo "=== ruff check, ruff format --check"
python -m ruff check --quiet . || status=$?
python -m ruff format --check --quiet . || status=$?

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

# JAX compiles every primitive of an eager op and every initializer shape with XLA; its cheapest
# code generation shortens that compile time, which dominates these small test programs.
# (set -e is on: the status is caught with `||`, so a failing JAX run still gets its log printed.)
(rc=0
 KERAS_BACKEND=jax XLA_FLAGS="${XLA_FLAGS:---xla_backend_optimization_level=0}" \
    python -m pytest -q -p no:cacheprovider "$@" >"$logs/jax.log" 2>&1 || rc=$?
 echo "$rc" >"$logs/jax.rc") &
jax_pid=$!

echo "=== pytest, KERAS_BACKEND=tensorflow ($workers workers; JAX runs alongside)"
KERAS_BACKEND=tensorflow python -m pytest -q -p no:cacheprovider -n "$workers" "$@" || status=$?

echo "=== pytest, KERAS_BACKEND=torch"
KERAS_BACKEND=torch python -m pytest -q -p no:cacheprovider "$@" || status=$?

wait "$jax_pid" || true
echo "=== pytest, KERAS_BACKEND=jax"
cat "$logs/jax.log"
rc="$(cat "$logs/jax.rc")"
[ "$rc" = 0 ] || status=$rc
exit $status
