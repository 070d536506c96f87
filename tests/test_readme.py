"""The README's generated parts are up to date."""

import os

from keras_padfree import model_table


def test_readme_model_table_is_up_to_date():
    with open(model_table.README) as f:
        text = f.read()
    expected = model_table.render_readme(text, model_table.markdown(model_table.table_rows()))
    assert text == expected, (
        "README.md's model table is stale: run `python -m keras_padfree.model_table --write`."
    )


def test_readme_quotes_the_two_commands():
    with open(model_table.README) as f:
        text = f.read()
    assert "bash scripts/run.sh" in text and "bash scripts/test.sh" in text
    root = os.path.dirname(model_table.README)
    with open(os.path.join(root, ".ci", "run")) as f:
        assert "scripts/test.sh" in f.read()
