#!/usr/bin/env bash
# The test suite: the whole suite under the TensorFlow backend, then the representative
# `all_backends` cases under JAX and PyTorch. Extra arguments go to every pytest call
# (e.g. `bash scripts/test.sh --run-large`, `bash scripts/test.sh -k ghostnet`).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
status=0
for backend in tensorflow jax torch; do
    echo "=== pytest, KERAS_BACKEND=$backend"
    KERAS_BACKEND=$backend python -m pytest -q -p no:cacheprovider "$@" || status=$?
done
exit $status
