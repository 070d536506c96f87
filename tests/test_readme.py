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


def test_readme_pyramid_table_is_up_to_date():
    with open(model_table.README) as f:
        text = f.read()
    table = model_table.pyramid_markdown(model_table.pyramid_rows())
    assert "| ghostnet | P4 (/16) | 112 | 14x14 | 13x13 |" in table
    expected = model_table.render_readme(
        text, table, model_table.PYRAMID_START, model_table.PYRAMID_END
    )
    assert text == expected, (
        "README.md's pyramid table is stale: run `python -m keras_padfree.model_table --write`."
    )


def test_readme_quotes_the_two_commands():
    with open(model_table.README) as f:
        text = f.read()
    assert "bash scripts/run.sh" in text and "bash scripts/test.sh" in text
    root = os.path.dirname(model_table.README)
    with open(os.path.join(root, ".ci", "run")) as f:
        assert "scripts/test.sh" in f.read()
