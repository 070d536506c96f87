"""Architecture tables: one text format for every family, decoded in one place.

A family writes its architecture the way the paper prints it, one block (or one stage of repeated
blocks) per line, under a header of column names::

    MOBILENETV3_LARGE = parse('''
        # k  exp  out  se  nl  s  s32
          3   16   16   -  RE  1   1
          3   64   24   -  RE  2   1
    ''')

Conventions shared by every table:

* ``s`` is the block's stride in the ImageNet layout, ``s32`` (when present) its stride in the CIFAR
  layout of the same network (the column where the papers' CIFAR versions differ).
* ``n`` (when present) repeats a line ``n`` times; only the first copy keeps the line's strides, the
  others have stride 1 (MobileNetV2's ``t, c, n, s`` convention).
* ``-`` is "none" (no SE, ...); ``y`` is "yes"; the activation column ``nl`` takes the papers'
  abbreviations ``RE`` (ReLU), ``R6`` (ReLU6) and ``HS`` (h-swish).
* Numbers become ints or floats (the column ``id`` stays text); ``{name}`` placeholders are filled
by :func:`parse`'s keyword
  arguments first (e.g. a depth-dependent ``n``).

Each decoded :class:`Row` knows its position: ``index`` (1-based over the whole table), ``stage``
(1-based line of the text it came from) and ``unit`` (1-based copy within that line).
"""

from __future__ import annotations

import dataclasses
from typing import Any

ACTIVATIONS = {"RE": "relu", "R6": "relu6", "HS": "hard_silu", "-": None}
STRIDE_COLUMNS = ("s", "s32")


@dataclasses.dataclass(frozen=True)
class Row:
    """One decoded block of an architecture table; columns are attributes (``row.k``)."""

    index: int
    stage: int
    unit: int
    values: dict

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(
            f"Architecture table row has no column {name!r}; it has {list(values)}."
        )

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def stride(self, column: str = "s") -> int:
        """The block's stride in the layout whose stride column is ``column`` (``s`` or ``s32``).

        A table without that column has the same strides in both layouts (``s``).
        """
        return self.values[column] if column in self.values else self.values["s"]

    def replace(self, **values: Any) -> Row:
        return dataclasses.replace(self, values={**self.values, **values})


class Table(tuple):
    """A decoded architecture table: a tuple of :class:`Row`."""

    @property
    def columns(self) -> tuple:
        return tuple(self[0].values) if self else ()

    def with_columns(self, **columns: tuple) -> Table:
        """A copy whose rows get (or replace) the given columns, one value per row."""
        for name, values in columns.items():
            if len(values) != len(self):
                raise ValueError(
                    f"Column {name!r} has {len(values)} values for a table of {len(self)} rows."
                )
        return Table(
            row.replace(**{name: values[i] for name, values in columns.items()})
            for i, row in enumerate(self)
        )

    def column(self, name: str) -> tuple:
        return tuple(row[name] for row in self)

    def staged(self, column: str = "s") -> Table:
        """A copy whose ``stage``/``unit`` restart at every stride-2 row of ``column``.

        For tables written one block per line whose stages are delimited by their downsampling
        blocks (MobileNetV3's table has no stage column; the BSConv library names its units by
        stage).
        """
        rows, stage, unit = [], 0, 0
        for i, row in enumerate(self):
            if i == 0 or row.stride(column) == 2:
                stage, unit = stage + 1, 0
            unit += 1
            rows.append(dataclasses.replace(row, stage=stage, unit=unit))
        return Table(rows)


def _value(column: str, text: str) -> Any:
    if column == "id":
        return text
    if column == "nl":
        if text not in ACTIVATIONS:
            raise ValueError(
                f"Unknown activation {text!r} in column 'nl'; use {list(ACTIVATIONS)}."
            )
        return ACTIVATIONS[text]
    if text == "-":
        return None
    if text == "y":
        return True
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse(text: str, **fields: Any) -> Table:
    """Decodes an architecture table (see the module docstring) into a :class:`Table`.

    Args:
        text: the table; ``#`` starts a comment, except on the header line, whose ``#`` only
            marks it (so the header can sit in a comment-styled line above the rows).
        **fields: values for ``{name}`` placeholders in the text.
    """
    if fields:
        text = text.format(**fields)
    header = None
    lines = []
    for raw in text.splitlines():
        line = raw.strip()
        if header is None and line.startswith("#") and len(line) > 1:
            candidate = line[1:].split("#")[0].split()
            if candidate and all(c.isidentifier() for c in candidate):
                header = candidate
            continue
        line = line.split("#")[0].strip()
        if not line:
            continue
        if header is None:
            header = line.split()
            continue
        lines.append(line.split())
    if not header or not lines:
        raise ValueError("An architecture table needs a header line and at least one row.")
    rows = []
    for stage, cells in enumerate(lines, start=1):
        if len(cells) != len(header):
            raise ValueError(
                f"Architecture table line {stage} has {len(cells)} cells for the "
                f"{len(header)} columns {header}: {' '.join(cells)!r}."
            )
        values = {c: _value(c, t) for c, t in zip(header, cells)}
        repeats = values.pop("n", 1)
        for unit in range(1, repeats + 1):
            copy = dict(values)
            if unit > 1:
                copy.update({c: 1 for c in STRIDE_COLUMNS if c in copy})
            rows.append(Row(index=len(rows) + 1, stage=stage, unit=unit, values=copy))
    return Table(rows)


# --------------------------------------------------------------------------------------------------
# Tables that several families share.

# MobileNetV3-large (Howard et al. 2019, table 1): kernel, expanded and output width, SE,
# activation,
# stride at 224 px and in the CIFAR layout (the papers' 32-px rows run block 2 at stride 1). The
# torchvision-style, BSConv-library and cheap-operation MobileNetV3s are all this table.
MOBILENETV3_LARGE = parse("""
    # k  exp  out  se  nl  s  s32
      3   16   16   -  RE  1   1
      3   64   24   -  RE  2   1
      3   72   24   -  RE  1   1
      5   72   40   y  RE  2   2
      5  120   40   y  RE  1   1
      5  120   40   y  RE  1   1
      3  240   80   -  HS  2   2
      3  200   80   -  HS  1   1
      3  184   80   -  HS  1   1
      3  184   80   -  HS  1   1
      3  480  112   y  HS  1   1
      3  672  112   y  HS  1   1
      5  672  160   y  HS  2   2
      5  960  160   y  HS  1   1
      5  960  160   y  HS  1   1
""")

# MobileNetV2 (Sandler et al. 2018, table 2): expansion t, output width, repeats, stride at 224 px
# and in the CIFAR layout (stride 1 for the 24-wide stage). ParC-MobileNetV2 and the cheap-operation
# repository's MobileNetV2 are this table.
MOBILENETV2 = parse("""
    # t  out  n  s  s32
      1   16  1  1   1
      6   24  2  2   1
      6   32  3  2   2
      6   64  4  2   2
      6   96  3  1   1
      6  160  3  2   2
      6  320  1  1   1
""")
