#!/usr/bin/env bash
# The test suite: every test under the TensorFlow backend (two pytest workers), then the
# representative `all_backends` tests under JAX and PyTorch (the two in parallel). Extra arguments go
# to every pytest call, e.g. `bash scripts/test.sh --run-large` or `bash scripts/test.sh -k ghostnet`.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
status=0
workers="${PYTEST_WORKERS:-2}"
echo "=== pytest, KERAS_BACKEND=tensorflow ($workers workers)"
KERAS_BACKEND=tensorflow python -m pytest -q -p no:cacheprovider -n "$workers" "$@" || status=$?
logs="$(mktemp -d)"
echo "=== pytest, KERAS_BACKEND=jax and KERAS_BACKEND=torch (in parallel)"
# JAX compiles every primitive of an eager op and every initializer shape with XLA; its cheapest
# code generation halves that compile time, which dominates these small test programs.
for backend in jax torch; do
    (KERAS_BACKEND=$backend XLA_FLAGS="${XLA_FLAGS:---xla_backend_optimization_level=0}" \
     python -m pytest -q -p no:cacheprovider "$@" >"$logs/$backend.log" 2>&1
     echo $? >"$logs/$backend.rc") &
done
wait
for backend in jax torch; do
    echo "--- KERAS_BACKEND=$backend"
    cat "$logs/$backend.log"
    rc="$(cat "$logs/$backend.rc")"
    [ "$rc" = 0 ] || status=$rc
done
rm -rf "$logs"
exit $status
