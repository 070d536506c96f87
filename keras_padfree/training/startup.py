"""Quiet start-up: TensorFlow's C++ start-up lines are kept out of the command-line output.

TensorFlow writes some lines straight to the process's stderr (file descriptor 2) while its shared
libraries load, before Python or ``TF_CPP_MIN_LOG_LEVEL`` can act: ``cudart_stub.cc ... Could not
find cuda drivers`` (once per library that carries the CUDA stub, hence twice: the core library and
the profiler plugin both print it during ``import tensorflow``; it is one process), absl's
"All log messages before absl::InitializeLog()" banner, ``cpu_feature_guard`` and, when the devices
are first listed, ``E0000 ... failed call to cuInit`` on machines without a usable GPU (an error
line that only means "training on the CPU").

:func:`configure_environment` sets ``TF_CPP_MIN_LOG_LEVEL=2`` and, on x86-64, turns on TensorFlow's
oneDNN kernels (``TF_ENABLE_ONEDNN_OPTS=1``; see :func:`environment_defaults`), with
``setdefault``: a value the user set wins. :func:`quiet_native_stderr` wraps the two moments those
lines appear (the import and the first device listing): file descriptor 2 goes to a temporary
file, and afterwards every line that is not one of the known start-up lines is written back to
stderr, so nothing else is lost.
With ``TF_CPP_MIN_LOG_LEVEL=0`` nothing is filtered.

This module uses the standard library only: ``training/fit.py`` loads it before TensorFlow.
"""

import contextlib
import os
import platform
import re
import sys
import tempfile

__all__ = [
    "STARTUP_NOISE",
    "configure_environment",
    "environment_defaults",
    "is_startup_noise",
    "quiet_native_stderr",
]

STARTUP_NOISE = re.compile(
    r"cudart_stub\.cc.*Could not find cuda drivers"
    r"|All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|cpu_feature_guard\.cc"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler"
    r"|oneDNN custom operations are on"
    r"|failed call to cuInit"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
    r"|TF-TRT Warning: Could not find TensorRT"
)


def environment_defaults():
    """The environment variables :func:`configure_environment` sets where the user has not.

    ``TF_CPP_MIN_LOG_LEVEL=2``; on x86-64, ``TF_ENABLE_ONEDNN_OPTS=1``: TensorFlow's oneDNN
    kernels (convolutions, fused BatchNormalization), which TensorFlow itself turns on only on
    CPUs with AVX512-VNNI/BF16 or AMX. On a 2-core AVX2 CPU they train a MobileNetV3 step in
    about 0.91x the time of TensorFlow's Eigen kernels, and with the fused BatchNormalization
    kernel that ``training.speed`` installs with them in 0.78x (455 against 582 ms:
    benchmarks/results/train_profile.md). TensorFlow reads the variable once, when it loads: it
    must be set before ``import tensorflow``.
    """
    defaults = {"TF_CPP_MIN_LOG_LEVEL": "2"}
    if platform.machine().lower() in ("x86_64", "amd64"):
        defaults["TF_ENABLE_ONEDNN_OPTS"] = "1"
    return defaults


def configure_environment():
    """Sets :func:`environment_defaults` (``os.environ.setdefault``: a value the user set wins)."""
    for key, value in environment_defaults().items():
        os.environ.setdefault(key, value)


def _filtering():
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0")) >= 1
    except ValueError:
        return True


def is_startup_noise(line):
    """Whether ``line`` is one of TensorFlow's known start-up lines."""
    return STARTUP_NOISE.search(line) is not None


@contextlib.contextmanager
def quiet_native_stderr():
    """Drops TensorFlow's start-up lines written to file descriptor 2 inside the block.

    Everything else written to stderr inside the block (Python warnings, other native messages)
    is written to stderr when the block ends, also when it raises.
    """
    if not _filtering():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield  # no real descriptor 2 (an embedding host): nothing to filter
        return
    capture = tempfile.TemporaryFile()
    try:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = "".join(
                line for line in text.splitlines(keepends=True) if not is_startup_noise(line)
            )
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()
    finally:
        os.close(saved)
        capture.close()
