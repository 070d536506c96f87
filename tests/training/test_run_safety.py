"""Training runs that never lose or mix work (issue 15).

Each test injects one fault (a rerun, changed flags, a second process, a diverging run, a kill
between renames, a full disk, a damaged backup) and checks the message, the exit status and that
nothing written earlier was lost. Shared runs are trained once per module and copied per test.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import warnings

import keras
import numpy as np
import pytest

from tests.training import tiny_model

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
TINY_SCRIPT = os.path.join(HERE, "tiny_model.py")
BACKEND = keras.backend.backend()

# One epoch of 4 batches of 16 digits, 2 evaluation batches: about a second of training.
ARGS = [
    "--model",
    tiny_model.TINY,
    "--batch-size",
    "16",
    "--steps-per-epoch",
    "4",
    "--eval-steps",
    "2",
    "--verbose",
    "0",
    "--no-tensorboard",
    "--learning-rate",
    "0.05",
]


class _Killed(BaseException):
    """A simulated SIGKILL: nothing catches it and no cleanup code of the run sees it."""


@pytest.fixture(scope="module")
def fit():
    tiny_model.register()
    yield tiny_model.load_fit()
    tiny_model.unregister()


def _env(**extra):
    env = {**os.environ, "PYTHONPATH": ROOT, "KERAS_BACKEND": BACKEND}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env.update(extra)
    return env


def _snapshot(out):
    """Every file under ``out`` and its bytes (the lock file of a live run excepted)."""
    files = {}
    for dirpath, _, names in os.walk(out):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, out)] = f.read()
    return files


def _strict_json(path):
    def refuse(token):
        raise ValueError(f"{path} holds the non-JSON literal {token}")

    with open(path) as f:
        return json.loads(f.read(), parse_constant=refuse)


def _copy(src, tmp_path, name="run"):
    dst = str(tmp_path / name)
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="module")
def finished_run(fit, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("finished") / "run")
    fit.main(ARGS + ["--epochs", "1", "--output-dir", out])
    return out


@pytest.fixture(scope="module")
def interrupted_run(fit, tmp_path_factory):
    """A run of 2 epochs x 8 steps, backed up every 3 steps, stopped by Ctrl-C in epoch 1 after
    step 6 (exit status 130)."""
    from keras_padfree.training import callbacks

    out = str(tmp_path_factory.mktemp("interrupted") / "run")
    original = callbacks.TrainingBackup.on_train_batch_end
    calls = []

    def stop_after_the_14th_batch(self, batch, logs=None):
        original(self, batch, logs)
        calls.append(batch)
        if len(calls) == 14:  # epoch 1, step 6: just after its backup
            raise KeyboardInterrupt()

    callbacks.TrainingBackup.on_train_batch_end = stop_after_the_14th_batch
    try:
        assert fit.run(_interrupted_args(out)) == 130
    finally:
        callbacks.TrainingBackup.on_train_batch_end = original
    assert _strict_json(os.path.join(out, "run.json"))["status"] == "interrupted"
    return out


def _interrupted_args(out, **changes):
    flags = {"--epochs": "2", "--steps-per-epoch": "8", "--backup-freq": "3"}
    flags.update(changes)
    args = [a for a in ARGS]
    for key, value in flags.items():
        if key in args:
            args[args.index(key) + 1] = value
        else:
            args += [key, value]
    return args + ["--output-dir", out]


# -- 1. A finished run is never overwritten silently ---------------------------------------------


@pytest.mark.all_backends
def test_rerun_of_a_finished_run_keeps_it(fit, finished_run, tmp_path, capsys):
    out = _copy(finished_run, tmp_path)
    before = _snapshot(out)
    final = _strict_json(os.path.join(out, "final.json"))
    capsys.readouterr()
    result = fit.main(ARGS + ["--epochs", "1", "--output-dir", out])
    assert "already finished" in capsys.readouterr().out
    assert result["top1"] == final["top1"] and result["optimizer_steps"] == 4
    assert _snapshot(out) == before  # nothing retrained, deleted or rewritten


def test_finished_run_with_other_settings_is_refused_unchanged(fit, finished_run, tmp_path):
    out = _copy(finished_run, tmp_path)
    before = _snapshot(out)
    with pytest.raises(ValueError) as err:
        fit.main(ARGS + ["--epochs", "1", "--seed", "7", "--output-dir", out])
    message = str(err.value)
    assert "seed" in message and "--no-resume" in message and out in message
    assert _snapshot(out) == before


def test_no_resume_with_a_bad_flag_deletes_nothing(fit, interrupted_run, tmp_path):
    out = _copy(interrupted_run, tmp_path)
    before = _snapshot(out)
    with pytest.raises(SystemExit) as exit_info:
        fit.main(_interrupted_args(out) + ["--no-resume", "--backup-freq", "-1"])
    assert exit_info.value.code == 2
    from keras_padfree.training import TrainConfig
    from keras_padfree.training import train

    with pytest.raises(ValueError, match="backup_freq"):
        train(TrainConfig(model=tiny_model.TINY, output_dir=out, resume=False, backup_freq=-1))
    # A failure found late (the model cannot take 8x8 inputs) deletes nothing either.
    with pytest.raises(ValueError):
        fit.main(_interrupted_args(out, **{"--image-size": "2"}) + ["--no-resume"])
    assert _snapshot(out) == before


def test_a_run_folder_of_an_earlier_version_is_refused_not_overwritten(fit, tmp_path):
    # An earlier keras_padfree's interrupted run: a backup without recorded settings, no run.json.
    out = tmp_path / "old"
    (out / "backup").mkdir(parents=True)
    (out / "backup" / "state.json").write_text('{"epoch": 1, "step": 4, "iterations": 12}')
    (out / "backup" / "model.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n old weights")
    (out / "train_log.csv").write_text("epoch,loss\n0,2.3\n")
    before = _snapshot(str(out))
    with pytest.raises(ValueError) as err:
        fit.main(ARGS + ["--epochs", "1", "--output-dir", str(out)])
    message = str(err.value)
    assert "earlier version" in message and "--no-resume" in message
    assert _snapshot(str(out)) == before
    # A folder with another program's run files (no backup) is refused the same way.
    (out / "backup" / "state.json").unlink()
    (out / "backup" / "model.weights.h5").unlink()
    with pytest.raises(ValueError, match=r"train_log.csv.*without a run record"):
        fit.main(ARGS + ["--epochs", "1", "--output-dir", str(out)])
    # --no-resume replaces them.
    result = fit.main(ARGS + ["--epochs", "1", "--output-dir", str(out), "--no-resume"])
    assert result["optimizer_steps"] == 4 and not (out / "backup" / "state.json").exists()


def _as_before_models_held_their_normalisation(out):
    """Rewrites the recorded settings of a run folder as keras_padfree wrote them before its
    models held their normalisation: no "input" (its pipeline normalised the images). Nothing
    else differs: the backup's weights would load into today's model without any error."""
    from keras_padfree.training.callbacks import read_backup_manifest

    manifest = read_backup_manifest(os.path.join(out, "backup"))
    path = os.path.join(manifest.pop("path"), "manifest.json")
    assert manifest["settings"].pop("input") == "raw_pixels"
    with open(path, "w") as f:
        json.dump(manifest, f)
    record = _strict_json(os.path.join(out, "run.json"))
    assert record["settings"].pop("input") == "raw_pixels"
    with open(os.path.join(out, "run.json"), "w") as f:
        json.dump(record, f)


def test_a_run_started_before_models_held_their_normalisation_is_not_resumed(
    fit, interrupted_run, finished_run, tmp_path, capsys
):
    runs = [
        ("interrupted", interrupted_run, _interrupted_args),
        ("finished", finished_run, lambda out: ARGS + ["--epochs", "1", "--output-dir", out]),
    ]
    for name, src, args in runs:
        out = _copy(src, tmp_path, name)
        _as_before_models_held_their_normalisation(out)
        before = _snapshot(out)
        for extra in ([], ["--epochs", "3", "--allow-changes", "epochs"]):
            with pytest.raises(ValueError) as err:
                fit.main(args(out) + extra)
            message = str(err.value)
            assert "earlier version" in message, message
            assert "normalised by the input pipeline" in message and "raw RGB pixels" in message
            assert "--no-resume" in message and out in message
            assert _snapshot(out) == before  # nothing resumed, retrained or deleted
        assert fit.run(args(out)) == 2
        assert capsys.readouterr().err.startswith("error: The run in ")
    # --no-resume starts over, in today's convention.
    result = fit.main(args(out) + ["--no-resume"])
    assert result["input"] == "raw_pixels" and result["settings"]["input"] == "raw_pixels"


def test_a_run_record_without_a_backup_is_checked_for_the_input_convention(tmp_path):
    from keras_padfree.training import run_folder

    settings = {"model": "m", "epochs": 1, "input": "raw_pixels"}
    old = dict(settings)
    del old["input"]
    run_folder.write_record(str(tmp_path), run_folder.new_record(old))
    with pytest.raises(ValueError, match=r"run record .*earlier version .*raw RGB pixels"):
        run_folder.plan_run(str(tmp_path), settings)
    assert run_folder.input_convention(old) == run_folder.NORMALIZED
    # The same convention: the run is simply restarted (it never backed up).
    run_folder.write_record(str(tmp_path), run_folder.new_record(settings))
    assert run_folder.plan_run(str(tmp_path), settings).kind == "fresh"


# -- 2. A resume checks the settings that define the position and the result ---------------------


@pytest.mark.parametrize(
    "flag,value,keys",
    [
        ("--batch-size", "32", ("batch_size",)),
        ("--seed", "3", ("seed",)),
        ("--learning-rate", "0.1", ("learning_rate",)),
        ("--epochs", "3", ("epochs",)),
        ("--steps-per-epoch", "5", ("steps_per_epoch",)),
    ],
)
def test_resume_with_changed_settings_is_refused_naming_them(
    fit, interrupted_run, tmp_path, flag, value, keys
):
    out = _copy(interrupted_run, tmp_path)
    before = _snapshot(out)
    with pytest.raises(ValueError) as err:
        fit.main(_interrupted_args(out, **{flag: value}))
    message = str(err.value)
    for key in keys:
        assert key in message, message
    assert "--no-resume" in message and os.path.join(out, "backup") in message
    assert _snapshot(out) == before


@pytest.mark.all_backends
def test_allowed_change_resumes_and_final_json_records_it(fit, interrupted_run, tmp_path):
    out = _copy(interrupted_run, tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit.main(
            _interrupted_args(out, **{"--epochs": "3"}) + ["--allow-changes", "epochs"]
        )
    assert not [w for w in caught if "Skipping variable loading" in str(w.message)]
    assert result["epochs"] == 3 and result["optimizer_steps"] == 3 * 8
    final = _strict_json(os.path.join(out, "final.json"))
    assert final["settings"]["epochs"] == 3
    assert final["settings_changes"] == [
        {"at": {"epoch": 1, "step": 6}, "changed": {"epochs": [2, 3]}}
    ]
    with pytest.raises(ValueError, match="allow_changes"):
        fit.main(_interrupted_args(out) + ["--allow-changes", "seed"])


# -- 3. One run per output folder ----------------------------------------------------------------


@pytest.mark.heavy
def test_a_second_run_on_a_busy_folder_fails_at_once_and_a_killed_ones_lock_is_stale(
    fit, tmp_path, capsys
):
    out = str(tmp_path / "run")
    first = subprocess.Popen(
        [sys.executable, TINY_SCRIPT]
        + ARGS
        + ["--epochs", "40", "--steps-per-epoch", "8", "--backup-freq", "2", "--output-dir", out],
        env=_env(TINY_SLOW_BATCH="0.25"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and first.poll() is None:
            if os.path.exists(os.path.join(out, "train_log.csv")):
                break
            time.sleep(0.05)
        assert first.poll() is None, first.stdout.read()
        # The command line's exit status 2 and one error line, at once (before any data is read).
        start = time.time()
        status = fit.run(
            ARGS
            + [
                "--epochs",
                "40",
                "--steps-per-epoch",
                "8",
                "--backup-freq",
                "2",
                "--output-dir",
                out,
            ]
        )
        err = capsys.readouterr().err
        assert status == 2 and err.startswith("error: "), err
        assert f"in use by another training run (process {first.pid}" in err
        assert time.time() - start < 5
        assert first.poll() is None  # the live run goes on
    finally:
        first.kill()
        first.wait()
    # The killed run's lock is stale: the next run takes the folder over and resumes its backup
    # (to the end of the epoch it was in).
    from keras_padfree.training.callbacks import read_backup_state

    state = read_backup_state(os.path.join(out, "backup"))
    epochs = state["epoch"] + 1
    result = fit.main(
        ARGS
        + [
            "--epochs",
            str(epochs),
            "--steps-per-epoch",
            "8",
            "--backup-freq",
            "2",
            "--output-dir",
            out,
            "--allow-changes",
            "epochs",
        ]
    )
    assert result["optimizer_steps"] == epochs * 8


def test_a_locked_folder_is_refused_in_process_and_an_unusable_one_with_exit_2(
    fit, tmp_path, capsys
):
    from keras_padfree.training.run_folder import RunLock

    out = str(tmp_path / "run")
    with RunLock(out):
        status = fit.run(ARGS + ["--epochs", "1", "--output-dir", out])
        err = capsys.readouterr().err
        assert status == 2 and err.startswith("error: The output folder ")
        assert f"in use by another training run (process {os.getpid()}" in err
        assert os.listdir(out) == ["run.lock"]  # nothing written by the refused run
    assert not os.path.exists(out)  # the lock's own folder is gone with it
    nested = tmp_path / "runs" / "a" / "b"
    with pytest.raises(SystemExit):  # a bad flag: nothing created
        fit.main(ARGS + ["--epochs", "0", "--output-dir", str(nested)])
    with pytest.raises(ValueError, match="Unknown dataset"):
        fit.main(ARGS + ["--dataset", "mnist", "--output-dir", str(nested)])
    with pytest.raises(ValueError):  # found after the lock: no 2x2 input for this model
        fit.main(ARGS + ["--epochs", "1", "--image-size", "2", "--output-dir", str(nested)])
    assert not os.path.exists(tmp_path / "runs")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    status = fit.run(ARGS + ["--epochs", "1", "--output-dir", str(blocker / "run")])
    err = capsys.readouterr().err
    assert status == 2 and "Cannot use the output folder" in err and str(blocker) in err
    assert blocker.read_text() == "not a folder"


# -- 4. Non-finite numbers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "flag,value",
    [
        ("--learning-rate", "inf"),
        ("--learning-rate", "nan"),
        ("--val-fraction", "nan"),
        ("--backup-freq", "-1"),
    ],
)
def test_non_finite_and_negative_numbers_are_refused_up_front(fit, tmp_path, flag, value):
    out = str(tmp_path / "run")
    with pytest.raises(SystemExit) as exit_info:
        fit.main(ARGS + ["--epochs", "1", flag, value, "--output-dir", out])
    assert exit_info.value.code == 2
    assert not os.path.exists(out)
    from keras_padfree.training import TrainConfig
    from keras_padfree.training import train

    with pytest.raises(ValueError, match="learning_rate"):
        train(TrainConfig(model=tiny_model.TINY, learning_rate=float("inf"), output_dir=out))
    assert not os.path.exists(out)


def test_a_diverging_run_stops_and_keeps_only_finite_work(fit, tmp_path):
    out = str(tmp_path / "run")
    # A finite but absurd learning rate: the first update leaves huge finite weights, the
    # second batch's loss is NaN.
    with pytest.raises(RuntimeError, match=r"non-finite") as err:
        fit.main(
            ARGS
            + [
                "--epochs",
                "2",
                "--learning-rate",
                "1e30",
                "--backup-freq",
                "1",
                "--output-dir",
                out,
            ]
        )
    assert "--learning-rate" in str(err.value) and "--no-resume" in str(err.value)
    for name in os.listdir(out):
        if name.endswith(".json"):
            _strict_json(os.path.join(out, name))  # valid JSON, no NaN literals
    assert not os.path.exists(os.path.join(out, "final.keras"))
    assert not os.path.exists(os.path.join(out, "best.keras"))  # no finite epoch to be "best"
    from keras_padfree.training import TrainingBackup

    model = _tiny_compiled(recipe_optimizer=True)
    state = TrainingBackup.restore(model, os.path.join(out, "backup"))
    assert (state["epoch"], state["step"]) == (0, 1)  # the last finite backup
    for v in model.variables + model.optimizer.variables:
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(v.value))), v.path
    run = _strict_json(os.path.join(out, "run.json"))
    assert run["status"] == "diverged"


def test_the_cli_exit_status_of_a_diverging_run_is_1(fit, tmp_path, capsys):
    out = str(tmp_path / "run")
    status = fit.run(ARGS + ["--epochs", "1", "--learning-rate", "1e30", "--output-dir", out])
    err = capsys.readouterr().err
    assert status == 1 and err.startswith("error: ") and "non-finite" in err


# -- 5. Backups as one unit; models written aside and renamed ------------------------------------


def _tiny_compiled(recipe_optimizer=False):
    """The tiny model, compiled with momentum SGD or (``recipe_optimizer``) as fit.py does."""
    model = tiny_model.tiny_cnn(input_shape=(32, 32, 3), classes=10)
    if recipe_optimizer:
        from keras_padfree.training import get_recipe

        optimizer = get_recipe("digits").make_optimizer(4, epochs=2)
    else:
        optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    return model


def _fill(model, value):
    """Gives every variable of the model and its optimizer a value that identifies ``value``."""
    for i, v in enumerate(model.variables + model.optimizer.variables):
        if "int" in str(v.dtype):
            v.assign(np.full(v.shape, value * 10 + i % 7, dtype=str(v.dtype)))
        else:
            v.assign(np.full(v.shape, value + i / 1000.0, dtype="float32"))


def _values(model):
    return [
        keras.ops.convert_to_numpy(v.value).copy()
        for v in model.variables + model.optimizer.variables
    ]


def _backup_once(model, backup_dir, epoch, steps=3):
    """Runs a TrainingBackup through one epoch of ``steps`` batches: it backs up (epoch + 1, 0)."""
    from keras_padfree.training import TrainingBackup

    backup = TrainingBackup(backup_dir, 0, steps)
    backup.set_model(model)
    backup.on_epoch_begin(epoch)
    for batch in range(steps):
        backup.on_train_batch_end(batch)
    backup.on_epoch_end(epoch)


def test_a_kill_between_backup_renames_restores_one_consistent_backup(tmp_path, monkeypatch):
    from keras_padfree.training import TrainingBackup

    model = _tiny_compiled()
    real_replace = os.replace
    renames = []
    monkeypatch.setattr(os, "replace", lambda a, b: (renames.append(b), real_replace(a, b)))
    _backup_once(model, str(tmp_path / "count"), 0)
    per_backup = len(renames)
    assert per_backup >= 1

    for kill_at in range(per_backup + 1):
        # Killed during the very first backup: no backup at all, or the complete first one.
        first_dir = str(tmp_path / f"first{kill_at}" / "backup")
        _fill(model, 1)
        calls = []

        def dying_replace(a, b, calls=calls, kill_at=kill_at):
            if len(calls) == kill_at:
                raise _Killed()
            calls.append(b)
            return real_replace(a, b)

        monkeypatch.setattr(os, "replace", dying_replace)
        try:
            _backup_once(model, first_dir, 0)
        except _Killed:
            pass
        monkeypatch.setattr(os, "replace", real_replace)
        restored = _tiny_compiled()
        state = TrainingBackup.restore(restored, first_dir)
        if kill_at == 0:
            assert state is None
        else:
            assert state["epoch"] == 1
            for got, want in zip(_values(restored), _values(model)):
                np.testing.assert_array_equal(got, want)

        backup_dir = str(tmp_path / f"kill{kill_at}" / "backup")
        _fill(model, 1)
        _backup_once(model, backup_dir, 0)  # position (1, 0)
        saved = {1: _values(model)}
        _fill(model, 2)
        saved[2] = _values(model)
        calls = []

        def dying_replace(a, b, calls=calls, kill_at=kill_at):
            if len(calls) == kill_at:
                raise _Killed()
            calls.append(b)
            return real_replace(a, b)

        monkeypatch.setattr(os, "replace", dying_replace)
        try:
            _backup_once(model, backup_dir, 1)  # position (2, 0), killed before rename kill_at
        except _Killed:
            pass
        monkeypatch.setattr(os, "replace", real_replace)
        restored = _tiny_compiled()
        state = TrainingBackup.restore(restored, backup_dir)
        assert state["epoch"] in (1, 2), (kill_at, state)
        if kill_at == per_backup:
            assert state["epoch"] == 2
        for got, want in zip(_values(restored), saved[state["epoch"]]):
            np.testing.assert_array_equal(got, want, err_msg=f"kill before rename {kill_at}")
        # The next backup after the kill is whole again.
        _fill(model, 3)
        _backup_once(model, backup_dir, 2)
        restored = _tiny_compiled()
        assert TrainingBackup.restore(restored, backup_dir)["epoch"] == 3
        for got, want in zip(_values(restored), _values(model)):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("which,nth", [("best", 1), ("last", 2)])
def test_a_kill_while_saving_a_model_leaves_the_previous_file(
    fit, tmp_path, monkeypatch, which, nth
):
    out = str(tmp_path / "run")
    real_save = keras.Model.save
    seen = []

    def dying_save(self, filepath, *args, **kwargs):
        if os.path.basename(str(filepath)).startswith(which):
            seen.append(filepath)
            if len(seen) == nth:
                with open(filepath, "wb") as f:
                    f.write(b"PK\x03\x04 half a zip")
                raise _Killed()
        return real_save(self, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save", dying_save)
    with pytest.raises(_Killed):
        fit.main(ARGS + ["--epochs", "2", "--output-dir", out])
    monkeypatch.setattr(keras.Model, "save", real_save)
    path = os.path.join(out, f"{which}.keras")
    if nth == 1:
        assert not os.path.exists(path)
    else:
        keras.saving.load_model(path)  # the previous epoch's model, whole


# -- 7. Full disks, unwritable folders and damaged backups ---------------------------------------


def _damaged_copies(src, tmp_path):
    """(description, folder) pairs: the backup with one file truncated, overwritten, removed or
    (arrays) replaced by a valid file of other values, as if it came from another backup."""
    backup = os.path.join(src, "backup")
    files = sorted(
        os.path.relpath(os.path.join(d, n), backup)
        for d, _, names in os.walk(backup)
        for n in names
    )
    assert files
    for i, rel in enumerate(files):
        kinds = ("truncated", "garbage", "missing") + (("other",) if rel.endswith(".npz") else ())
        for how in kinds:
            out = _copy(src, tmp_path, f"{i}_{how}")
            path = os.path.join(out, "backup", rel)
            if how == "missing":
                os.remove(path)
            elif how == "other":
                with np.load(path) as saved:
                    arrays = {k: saved[k] + 1 for k in saved.files}
                with open(path, "wb") as f:
                    np.savez(f, **arrays)
            else:
                with open(path, "r+b" if how == "truncated" else "wb") as f:
                    if how == "truncated":
                        f.truncate(max(0, os.path.getsize(path) // 2))
                    else:
                        f.write(b"\x00garbage" * 5)
            yield f"{rel} {how}", out


def test_a_damaged_backup_is_named_with_the_way_out(fit, interrupted_run, tmp_path):
    for what, out in _damaged_copies(interrupted_run, tmp_path):
        if what == "latest.json missing":
            # Not damage: the state of a run killed between renaming its first checkpoint into
            # place and publishing it. The complete checkpoint is resumed (the kill test above).
            continue
        with pytest.raises(ValueError) as err:
            fit.main(_interrupted_args(out))
        message = str(err.value)
        assert os.path.join(out, "backup") in message, (what, message)
        assert "--no-resume" in message, (what, message)


def _tmpfs_namespace_available():
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /tmp && echo ok"],
        capture_output=True,
        text=True,
    )
    return probe.stdout.strip() == "ok"


@pytest.mark.heavy
def test_a_full_disk_during_a_backup_is_a_clear_error_and_keeps_the_last_backup(fit, tmp_path):
    if not _tmpfs_namespace_available():
        pytest.skip("needs `unshare -rm` and a tmpfs mount (Linux user namespaces)")
    mnt, copy = tmp_path / "mnt", tmp_path / "copy"
    mnt.mkdir()
    out = str(mnt / "run")
    args = " ".join(
        [sys.executable, TINY_SCRIPT]
        + ARGS
        + ["--epochs", "40", "--steps-per-epoch", "8", "--backup-freq", "2", "--output-dir", out]
    )
    # In a private mount namespace: a 2 MiB tmpfs; once the run has backed up, fill the disk.
    script = f"""
        mount -t tmpfs -o size=2m tmpfs {mnt} || exit 99
        {args} > {tmp_path}/stdout 2> {tmp_path}/stderr &
        pid=$!
        while kill -0 $pid 2>/dev/null && ! ls {out}/backup/*/* >/dev/null 2>&1 \\
              && [ ! -f {out}/backup/state.json ]; do sleep 0.05; done
        sleep 0.3
        dd if=/dev/zero of={mnt}/filler bs=4k 2>/dev/null
        wait $pid
        echo $? > {tmp_path}/status
        rm -f {mnt}/filler
        cp -a {out} {copy}
    """
    subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], env=_env(TINY_SLOW_BATCH="0.05"), timeout=300
    )
    status = int((tmp_path / "status").read_text())
    stderr = (tmp_path / "stderr").read_text()
    assert status == 1, (status, stderr[-3000:])  # not 139 (a segfault), not 0
    assert "error: " in stderr and "No space left on device" in stderr, stderr[-3000:]
    assert out in stderr and "Traceback" not in stderr, stderr[-3000:]
    from keras_padfree.training import TrainingBackup

    state = TrainingBackup.restore(_tiny_compiled(recipe_optimizer=True), str(copy / "backup"))
    assert state["step"] % 2 == 0 and state["iterations"] >= 2


def test_a_failed_write_names_the_file_and_keeps_the_last_backup(
    fit, tmp_path, capsys, monkeypatch
):
    from keras_padfree.training import files

    out = str(tmp_path / "run")
    real_write = files.write_bytes
    writes = []

    def full_disk_after_the_first_backup(path, data, what, **kwargs):
        if "backup" in what and "(epoch 0, step 2)" not in what:
            raise OSError(28, "No space left on device", path)
        writes.append(what)
        return real_write(path, data, what, **kwargs)

    monkeypatch.setattr(files, "write_bytes", full_disk_after_the_first_backup)
    status = fit.run(ARGS + ["--epochs", "2", "--backup-freq", "2", "--output-dir", out])
    err = capsys.readouterr().err
    assert status == 1 and err.startswith("error: "), err
    assert "No space left on device" in err and os.path.join(out, "backup") in err
    assert "epoch 0, step 2" in err  # the backup that is kept
    from keras_padfree.training import TrainingBackup

    state = TrainingBackup.restore(
        _tiny_compiled(recipe_optimizer=True), os.path.join(out, "backup")
    )
    assert (state["epoch"], state["step"]) == (0, 2)
