"""A tiny family, written as a new family is: one file with its table, quirks and block function.

Used by tests/applications/test_builder.py (and shown in CONTRIBUTING.md). ``register()`` adds its
models to the registry; the tests remove them again.
"""

from keras_padfree import normalization
from keras_padfree.applications import _builder
from keras_padfree.applications._arch import parse
from keras_padfree.applications._family import Config
from keras_padfree.applications._family import Family
from keras_padfree.applications._family import Head
from keras_padfree.applications._family import conv_unit
from keras_padfree.applications._family import hybrid_stem
from keras_padfree.blocks import common
from keras_padfree.blocks.inverted_residual import inverted_residual
from keras_padfree.layers import SqueezeExcite

# kernel, expanded and output width, SE, activation, stride at 224 px and in the CIFAR layout.
TABLE = parse("""
    # k  exp  out  se  nl  s  s32
      3   16   16   -  RE  1   1
      3   48   24   -  RE  2   1
      5   72   40   y  HS  2   2
      3   96   40   -  HS  1   1
""")

QUIRKS = common.Quirks(init=common.KAIMING_NORMAL_FAN_OUT, join="after_bn")


def _squeeze_excite(x, expanded, name):
    return SqueezeExcite(expanded // 4, kernel_initializer=QUIRKS.init.conv(), name=name)(x)


def _block(x, row, ctx, *, strides, name):
    return inverted_residual(
        x,
        ctx,
        expanded=row.exp,
        filters=row.out,
        kernel_size=row.k,
        strides=strides,
        activation=row.nl,
        name=name,
        squeeze_excite=_squeeze_excite if row.se else None,
    )


FAMILY = Family(
    name="tiny",
    title="TinyNet",
    description="A four-block inverted-residual network for the tests.",
    source="tests/applications/tiny_family.py",
    configs=(
        Config("imagenet", 224, "s", ((3, 2, 1),), normalization.IMAGENET, {"stem_strides": 2}),
        Config("cifar", 32, "s32", (), normalization.CIFAR100, {"stem_strides": 1}),
    ),
    table=TABLE,
    quirks=QUIRKS,
    block=_block,
    block_name="block{index}",
    stem=conv_unit(16, 3, "relu", "stem", strides_key="stem_strides"),
    hybrid_stem=hybrid_stem(16, "relu"),
    tail=conv_unit(64, 1, "hard_silu", "last"),
    head=lambda ctx: Head(dropout=0.1),
    head_has_dropout=True,
    default_name=lambda args, variant: "tiny" + ("" if variant == "orig" else f"_{variant}"),
    recipes={"small": "second_set_cifar", "large": "vegfru292"},
    module=__name__,
)

TinyNet = _builder.make_builder(FAMILY, "TinyNet", "A tiny network for the tests.")


def register():
    """Registers ``tiny_cifar`` and ``tiny_pf_cifar``; returns their names."""
    return [
        _builder.register(FAMILY, TinyNet, architecture="tiny", dataset="cifar", variant=variant)
        for variant in ("orig", "pf")
    ]
