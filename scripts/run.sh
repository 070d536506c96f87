#!/usr/bin/env bash
# The main job (see README.md): train on the bundled digits. Extra arguments go to training/fit.py,
# e.g. `bash scripts/run.sh --epochs 1` or `bash scripts/run.sh --help`.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
exec python training/fit.py "$@"
