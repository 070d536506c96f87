"""CONTRIBUTING.md's two recipes stay true: its family diff is tests/applications/tiny_family.py
(which test_builder.py builds and registers), and its downsampling-mode diff applies to today's
blocks/downsampling.py and adds a mode that builds."""

import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _diffs():
    with open(os.path.join(ROOT, "CONTRIBUTING.md")) as f:
        return re.findall(r"```diff\n(.*?)```", f.read(), flags=re.S)


def test_the_family_recipe_is_the_tested_tiny_family():
    family = next(d for d in _diffs() if "tiny_family.py" in d.splitlines()[0])
    added = [line[1:] for line in family.splitlines()[5:] if line.startswith("+")]
    with open(os.path.join(ROOT, "tests", "applications", "tiny_family.py")) as f:
        assert added == f.read().splitlines()


def test_the_mode_recipe_applies_and_builds(tmp_path, monkeypatch):
    mode = next(d for d in _diffs() if "downsampling.py" in d.splitlines()[0])
    patch = tmp_path / "mode.diff"
    patch.write_text(mode)
    check = subprocess.run(
        ["git", "apply", "--check", str(patch)], cwd=ROOT, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    added = "\n".join(
        line[1:]
        for line in mode.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    )
    from keras_padfree.blocks import downsampling

    namespace = dict(vars(downsampling))
    exec(compile(added, "CONTRIBUTING.md", "exec"), namespace)  # noqa: S102 - our own document
    monkeypatch.setitem(downsampling.MODES, "valid_only", namespace["ValidOnly"]())
    from keras_padfree import applications

    model = applications.MobileNetV3Large(
        input_shape=(32, 32, 3), classes=3, downsampling="valid_only"
    )
    assert model.get_layer("last_conv").output.shape[1:3] == (3, 3)
    with pytest.raises(ValueError, match="downsampling"):
        applications.MobileNetV3Large(downsampling="no_such_mode")
