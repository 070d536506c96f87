"""Every command block of README.md and docs/*.md runs, so a wrong flag fails the suite.

Shell blocks (```bash, ```sh, ```shell) are split into commands (continuation lines joined, comments
dropped) and each command is run the way its kind allows, in a fresh working directory that holds
``runs/default/{best,final}.keras`` from the README's main command (run once, shortened):

- ``python training/fit.py`` on the bundled digits: trained for real, shortened (one epoch of two
  steps, one evaluation batch, output in the working directory); under another ``KERAS_BACKEND``:
  its flags parsed by fit.py's parser, and run in a subprocess (large).
- a command on a dataset that cannot be present here (CIFAR, Stanford Dogs, ImageNet, an image
  folder): run as written (``~`` is an empty home, ``--data-dir`` of a folder dataset an empty
  folder): it must stop within seconds with exit status 2 and an ``error:`` line, not an argparse
  usage error.
- ``python training/evaluate.py`` / ``python training/export_tflite.py``: run as written.
- ``python training/fit.py --list-...``: run as written.
- ``python -m keras_padfree.profile``: ``--layers`` runs as written; the table commands (minutes
  each) run with the model builds replaced by the registry's reference rows, which checks their
  flags and that they select rows; the real runs are marked large.
- ``bash scripts/run.sh``: run as a subprocess, shortened, by tests/training/test_fit_cli.py (with
  its output checked); here: that it is the command that test runs. ``bash scripts/test.sh`` is
  this suite: only its syntax is checked.

Python blocks run statement by statement, per file in one namespace (like a notebook), in a working
directory as above. Names the docs leave to the reader (``calibration_images``, a ``model``) are
given; a statement that reads a file a user downloads (the MXNet weights) must fail with an error
that names the file. The CLIs run in-process (no interpreter start-up per command).
"""

import ast
import contextlib
import dataclasses
import glob
import io
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

keras = pytest.importorskip("keras")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DOC_FILES = ["README.md"] + sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md"))
)
SHELL_LANGS = ("bash", "sh", "shell")
# Datasets that cannot be present on a test machine (downloads or licences).
ABSENT_DATASETS = (
    "cifar10",
    "cifar100",
    "stanford_dogs",
    "imagenet2012",
    "imagenet_resized/32x32",
    "folder",
)
SHORT_TRAINING = [
    "--epochs",
    "1",
    "--steps-per-epoch",
    "2",
    "--eval-steps",
    "1",
    "--no-tensorboard",
]
# Files a user downloads that the docs' Python blocks name; statements reading them must fail
# with an error naming the file.
USER_FILES = ("cifar100_pydmobilenet29_0.25_concat-0000.params",)
MAX_ERROR_SECONDS = 30  # "datasets that need a download fail within seconds"


@dataclasses.dataclass
class Command:
    file: str
    line: int
    env: dict
    argv: list
    text: str

    @property
    def id(self):
        return f"{self.file}:{self.line}"


def code_blocks(path):
    """``[(language, first line number, text)]`` of the fenced code blocks of a Markdown file."""
    blocks, lang, start, lines = [], None, 0, []
    with open(os.path.join(ROOT, path)) as f:
        for number, line in enumerate(f, 1):
            fence = re.match(r"^```(\S*)\s*$", line)
            if fence and lang is None:
                lang, start, lines = fence.group(1), number + 1, []
            elif fence:
                blocks.append((lang, start, "".join(lines)))
                lang = None
            elif lang is not None:
                lines.append(line)
    assert lang is None, f"{path}: unclosed code block from line {start}"
    return blocks


def shell_commands(path):
    commands = []
    for lang, start, text in code_blocks(path):
        if lang not in SHELL_LANGS:
            continue
        joined, first = "", None
        for offset, line in enumerate(text.splitlines()):
            if first is None:
                first = start + offset
            if line.rstrip().endswith("\\"):
                joined += line.rstrip()[:-1] + " "
                continue
            joined += line
            tokens = shlex.split(joined, comments=True)
            if tokens:
                env = {}
                while tokens and re.match(r"^[A-Z_][A-Z0-9_]*=", tokens[0]):
                    key, value = tokens.pop(0).split("=", 1)
                    env[key] = value
                commands.append(Command(path, first, env, tokens, joined.strip()))
            joined, first = "", None
    return commands


ALL_COMMANDS = [c for path in DOC_FILES for c in shell_commands(path)]
SHELL_OPERATORS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1"}


def _option(argv, name, default=None):
    for i, token in enumerate(argv):
        if token == name and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith(name + "="):
            return token.split("=", 1)[1]
    return default


def kind(cmd):
    """What the test does with a command (see the module docstring)."""
    a = cmd.argv
    if a[:2] == ["bash", "scripts/test.sh"]:
        return "suite"
    if a[:2] == ["bash", "scripts/run.sh"]:
        return "main"
    if a[:3] == ["python", "-m", "keras_padfree.profile"]:
        return "profile-layers" if "--layers" in a else "profile-table"
    if (
        a[:1] == ["python"]
        and len(a) > 1
        and a[1] in ("training/fit.py", "training/evaluate.py", "training/export_tflite.py")
    ):
        script = a[1]
        if _option(a, "--dataset", "digits") in ABSENT_DATASETS:
            return "absent-dataset"
        if script == "training/fit.py":
            if any(t.startswith("--list-") for t in a):
                return "fit-list"
            other = cmd.env.get("KERAS_BACKEND", keras.backend.backend())
            return "fit" if other == keras.backend.backend() else "fit-other-backend"
        return "evaluate" if script == "training/evaluate.py" else "export"
    return "unknown"


def _commands(*kinds, exclude=()):
    return pytest.mark.parametrize(
        "cmd",
        [c for c in ALL_COMMANDS if kind(c) in kinds and c not in exclude],
        ids=lambda c: c.id,
    )


def doc_command(script, quantization=None):
    """The docs' command line of ``script`` (with ``--quantization quantization``; None: without
    the flag) on the README run's model and the digits, preferring the README's."""
    for cmd in ALL_COMMANDS:
        if cmd.argv[:2] != ["python", script] or cmd.env:
            continue
        if (
            _option(cmd.argv, "--quantization") == quantization
            and _option(cmd.argv, "--dataset") in (None, "digits")
            and _option(cmd.argv, "--model-path") == "runs/default/best.keras"
        ):
            return cmd
    raise AssertionError(f"no command for {script} --quantization {quantization} in the docs")


# The evaluate command and the float32 / float16 / int8 export commands that
# tests/test_end_to_end.py runs as written (on a longer-trained model, then LiteRT on raw pixels);
# the test below runs the other evaluate/export commands.
END_TO_END_COMMANDS = [doc_command("training/evaluate.py")] + [
    doc_command("training/export_tflite.py", q) for q in (None, "float16", "int8")
]


def test_every_command_is_a_single_known_command():
    assert len(ALL_COMMANDS) >= 20, [c.id for c in ALL_COMMANDS]
    for cmd in ALL_COMMANDS:
        operators = SHELL_OPERATORS & set(cmd.argv)
        assert not operators, f"{cmd.id}: {cmd.text!r} is not one command ({operators})"
        assert kind(cmd) != "unknown", (
            f"{cmd.id}: {cmd.text!r} is a command this test cannot check; add a rule to "
            "tests/test_readme_commands.py"
        )
    kinds = {kind(c) for c in ALL_COMMANDS}
    assert {
        "main",
        "suite",
        "fit",
        "absent-dataset",
        "evaluate",
        "export",
        "fit-list",
        "profile-table",
    } <= kinds, kinds


# --- running the command lines in-process ---------------------------------------------------


def run_script(path, argv, cwd, env=None, monkeypatch=None):
    """Runs ``python path argv`` in this process as ``__main__``; ``(status, stdout, stderr)``."""
    out, err = io.StringIO(), io.StringIO()
    saved_argv, saved_cwd = sys.argv, os.getcwd()
    sys.argv = [path, *argv]
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    os.chdir(cwd)
    status = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                if path.startswith("-m "):
                    runpy.run_module(path[3:], run_name="__main__", alter_sys=True)
                else:
                    runpy.run_path(os.path.join(ROOT, path), run_name="__main__")
            except SystemExit as e:
                status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        keras.config.set_dtype_policy("float32")  # a --mixed-precision command must not leak
    return status, out.getvalue(), err.getvalue()


def _script_and_args(cmd):
    if cmd.argv[1] == "-m":
        return "-m " + cmd.argv[2], cmd.argv[3:]
    return cmd.argv[1], cmd.argv[2:]


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory):
    """``runs/default`` of the README's main command (``python training/fit.py``), shortened."""
    ws = tmp_path_factory.mktemp("readme_main")
    mp = pytest.MonkeyPatch()
    try:
        status, out, err = run_script("training/fit.py", SHORT_TRAINING, ws, monkeypatch=mp)
    finally:
        mp.undo()
    assert status == 0, out + err
    assert os.path.isfile(ws / "runs" / "default" / "best.keras"), out
    return ws / "runs"


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """A small model that holds its preprocessing, for the commands that stop before using it."""
    from tests.export.conftest import tiny_model

    path = tmp_path_factory.mktemp("small_model") / "small.keras"
    tiny_model().save(path)
    return path


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh working directory and an empty home (``~/tensorflow_datasets`` holds nothing)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    return tmp_path


@pytest.fixture
def trained_workdir(workdir, trained_runs):
    """``workdir`` with a copy of the README run's ``runs/``."""
    shutil.copytree(trained_runs, workdir / "runs")
    return workdir


def _prepare(argv, workdir, model=None):
    """``~`` expanded (to the empty home); a ``--model-path`` the docs name that the README run
    did not write (``runs/cifar100/best.keras``) stands for ``model`` (default: the README run's
    ``best.keras``)."""
    argv = [os.path.expanduser(t) if t.startswith("~") else t for t in argv]
    path = _option(argv, "--model-path")
    if path and not os.path.exists(workdir / path):
        os.makedirs(os.path.dirname(workdir / path), exist_ok=True)
        shutil.copy(model or workdir / "runs" / "default" / "best.keras", workdir / path)
    return argv


@pytest.mark.heavy
@_commands("fit")
def test_training_command_runs(cmd, workdir, trained_runs, monkeypatch):
    if cmd.argv == ["python", "training/fit.py"] and not cmd.env:
        # The README's main command: the module's trained run is this command, shortened.
        assert os.path.isfile(trained_runs / "default" / "final.keras")
        return
    script, argv = _script_and_args(cmd)
    argv = _prepare(argv, workdir) + SHORT_TRAINING + ["--output-dir", str(workdir / "run")]
    status, out, err = run_script(script, argv, workdir, cmd.env, monkeypatch)
    assert status == 0, f"{cmd.text}\n{out}\n{err}"
    assert os.path.isfile(workdir / "run" / "final.keras")


@_commands("fit-list")
def test_listing_command_runs(cmd, workdir, monkeypatch):
    script, argv = _script_and_args(cmd)
    status, out, err = run_script(script, argv, workdir, cmd.env, monkeypatch)
    assert status == 0 and len(out.splitlines()) >= 5, f"{cmd.text}\n{out}\n{err}"


@_commands("absent-dataset")
def test_command_on_an_absent_dataset_stops_at_once_with_a_clear_error(
    cmd, workdir, small_model, monkeypatch
):
    script, argv = _script_and_args(cmd)
    argv = _prepare(argv, workdir, small_model)
    if _option(argv, "--dataset") == "folder":
        (workdir / "empty_folder").mkdir()
        argv = argv + ["--data-dir", str(workdir / "empty_folder")]
    argv += ["--output-dir", str(workdir / "run")] if script == "training/fit.py" else []
    t0 = time.perf_counter()
    status, out, err = run_script(script, argv, workdir, cmd.env, monkeypatch)
    seconds = time.perf_counter() - t0
    assert status == 2, f"{cmd.text}\n{out}\n{err}"
    assert "usage:" not in err and "Traceback" not in err, err  # not an argparse error
    assert err.startswith("error: "), err
    if _option(argv, "--dataset") != "folder":
        assert "is not prepared" in err, err
    assert seconds < MAX_ERROR_SECONDS, seconds


def run_as_written(cmd, workdir, monkeypatch):
    """Runs an evaluate/export command as written in ``workdir``: exit status 0, nothing on
    stderr, an export's three files written. Returns its stdout."""
    script, argv = _script_and_args(cmd)
    status, out, err = run_script(script, _prepare(argv, workdir), workdir, cmd.env, monkeypatch)
    assert status == 0, f"{cmd.text}\n{out}\n{err}"
    assert err == "", err
    if script == "training/export_tflite.py":
        output = _option(argv, "--output")
        stem = os.path.splitext(output)[0]
        for path in (output, stem + ".json", stem + ".labels.txt"):
            assert os.path.isfile(workdir / path), path
    return out


def test_the_end_to_end_test_runs_the_readme_commands():
    assert len({c.id for c in END_TO_END_COMMANDS}) == 4
    assert {c.file for c in END_TO_END_COMMANDS[:2]} == {"README.md"}
    assert [_option(c.argv, "--quantization") for c in END_TO_END_COMMANDS] == [
        None,
        None,
        "float16",
        "int8",
    ]


@pytest.mark.heavy
@_commands("evaluate", "export", exclude=END_TO_END_COMMANDS)
def test_evaluate_and_export_commands_run_as_written(cmd, trained_workdir, monkeypatch):
    run_as_written(cmd, trained_workdir, monkeypatch)


@_commands("profile-layers")
def test_profile_layers_command_runs(cmd, workdir, monkeypatch):
    script, argv = _script_and_args(cmd)
    status, out, err = run_script(script, argv, workdir, cmd.env, monkeypatch)
    assert status == 0 and "total" in out, f"{cmd.text}\n{out}\n{err}"


def _reference_rows(pattern="*", table=None):
    """``keras_padfree.profile.reproduce`` without building models: every selected reference
    row, counted exactly as the reference."""
    from keras_padfree import applications

    for name in applications.list_models(pattern, table=table):
        for row in applications.get_model_info(name).references:
            if table is not None and not row.table.startswith(table):
                continue
            yield {
                "model": name,
                "table": row.table,
                "input": row.input_size,
                "classes": row.classes,
                "convention": row.flops_convention,
                "params": row.params,
                "reference_params": row.params,
                "params_diff": 0,
                "params_all_weights": row.params_all_weights,
                "reference_params_all_weights": row.params_all_weights,
                "params_all_weights_diff": None,
                "flops": row.flops,
                "reference_flops": row.flops,
                "flops_diff": 0,
                "paper_params_M": row.paper_params_M,
                "paper_flops_M": row.paper_flops_M,
                "paper_top1": row.paper_top1,
                "deviations": {},
            }


@_commands("profile-table")
def test_profile_table_command_parses_and_selects_rows(cmd, workdir, monkeypatch):
    import keras_padfree.profile as profile

    monkeypatch.setattr(profile, "reproduce", _reference_rows)
    script, argv = _script_and_args(cmd)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = profile.main(argv)
    assert status == 0, f"{cmd.text}\n{out.getvalue()}\n{err.getvalue()}"
    assert out.getvalue().strip(), cmd.text


@pytest.mark.large
@_commands("profile-table")
def test_profile_table_command_runs(cmd, workdir, monkeypatch):
    script, argv = _script_and_args(cmd)
    status, out, err = run_script(script, argv, workdir, cmd.env, monkeypatch)
    assert status == 0, f"{cmd.text}\n{out}\n{err}"


@_commands("suite")
def test_test_script_is_valid_bash(cmd):
    script = os.path.join(ROOT, cmd.argv[1])
    subprocess.run(["bash", "-n", script], check=True)


@_commands("main")
def test_main_command_is_the_one_the_fit_cli_test_runs(cmd):
    """The README's main command runs (shortened, twice, in a subprocess) in
    tests/training/test_fit_cli.py."""
    from tests.training.test_fit_cli import MAIN_COMMAND

    assert cmd.argv == MAIN_COMMAND and not cmd.env, cmd.text


@_commands("fit-other-backend")
def test_training_command_under_another_backend_parses(cmd):
    """Its flags, checked by fit.py's own parser here; the run itself is large (JAX compiles
    for a minute)."""
    script, argv = _script_and_args(cmd)
    parser = runpy.run_path(os.path.join(ROOT, script))["build_parser"]()
    parser.parse_args(argv)


@pytest.mark.large
@_commands("fit-other-backend")
def test_training_command_under_another_backend_runs(cmd, tmp_path):
    argv = [sys.executable, *cmd.argv[1:], *SHORT_TRAINING, "--output-dir", str(tmp_path / "r")]
    env = {**os.environ, **cmd.env, "PYTHONPATH": ROOT}
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert os.path.isfile(tmp_path / "r" / "final.keras")


# --- Python blocks -------------------------------------------------------------------------------

PYTHON_FILES = [p for p in DOC_FILES if any(lang == "python" for lang, _, _ in code_blocks(p))]


@pytest.mark.heavy
@pytest.mark.parametrize("path", PYTHON_FILES)
def test_python_blocks_run(path, trained_workdir, monkeypatch):
    from tests.export.conftest import digits_pixels

    workdir = trained_workdir
    monkeypatch.chdir(workdir)
    namespace = {"__name__": "__readme__", "calibration_images": digits_pixels("train")[0][:64]}
    # The docs build untrained models: the same random weights on every run, so that a failure
    # (e.g. a float32 parity of random weights near its tolerance) reproduces.
    keras.utils.set_random_seed(0)
    ran = 0
    for lang, start, text in code_blocks(path):
        if lang != "python":
            continue
        if "model" not in namespace:
            namespace["model"] = keras.saving.load_model(
                str(workdir / "runs" / "default" / "best.keras")
            )
        tree = ast.parse(text)
        for node in tree.body:
            source = ast.get_source_segment(text, node)
            where = f"{path}:{start + node.lineno - 1}"
            code = compile(ast.Module(body=[node], type_ignores=[]), where, "exec")
            user_file = next((f for f in USER_FILES if f in source), None)
            if user_file:
                with pytest.raises((ValueError, FileNotFoundError), match=re.escape(user_file)):
                    exec(code, namespace)
                continue
            try:
                exec(code, namespace)
            except Exception as e:
                raise AssertionError(f"{where}: {source!r} raised {type(e).__name__}: {e}") from e
            ran += 1
    assert ran >= 3
    np.testing.assert_equal(namespace["calibration_images"].shape[1:], (32, 32, 3))
