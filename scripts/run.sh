#!/usr/bin/env bash
# The main job on the bundled default: see README.md. Extra arguments go to the command.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
if [ -f training/fit.py ]; then
    exec python training/fit.py "$@"
fi
exec python -m keras_padfree.profile "$@"
