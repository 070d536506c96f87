"""What the padding-free paper's second set shares: its four families (MobileNetV3-large, GhostNet,
ParC-MobileNetV2, ShuffleNetV2) come from one repository, train with the same recipes on the same
datasets, and register the same rows (VegFru-292 at 224 px; CIFAR-100 at 32 px with the ablations
and the EfficientFormerV2 comparison)."""

from keras_padfree import normalization
from keras_padfree.applications import _builder
from keras_padfree.applications._family import Config
from keras_padfree.applications._family import Family
from keras_padfree.applications._family import conv_unit
from keras_padfree.applications._family import hybrid_stem

SOURCE = "https://github.com/xiaohe725/Padding-free-Downsampling-And-Hybrid-Stem"
RECIPES = {"small": "second_set_cifar", "large": "vegfru292"}

# The layouts of the four families: the reference's 224-px files (stem stride 2) and its CIFAR
# files (stem stride 1, the table's ``s32`` strides).
CONFIGS = (
    Config("imagenet", 224, "s", ((3, 2, 1),), normalization.IMAGENET, {"stem_strides": 2}),
    Config("cifar", 32, "s32", (), normalization.CIFAR100, {"stem_strides": 1}),
)

# The paper's table of each CIFAR-100 variant.
CIFAR_TABLES = {
    "orig": "set2",
    "pf": "set2",
    "stem_only": "ablation",
    "downsampling_only": "ablation",
    "effv2_downsampling": "EfficientFormerV2",
}


def family(architecture, stem, **fields):
    """A second-set :class:`Family` named ``architecture``: the set's source, layouts, recipes
    and model names (``architecture[_variant]``), the family's own ``fields``.

    ``stem`` is ``(filters, activation)`` of the reference's stem, a 3x3 conv -> BN -> act with the
    layout's stride, and of its hybrid stem (PyTorch's default BN); or a stem function, with
    ``hybrid_stem`` in ``fields``.
    """
    if isinstance(stem, tuple):
        filters, activation = stem
        stem = conv_unit(filters, 3, activation, "stem", strides_key="stem_strides")
        fields.setdefault("hybrid_stem", hybrid_stem(filters, activation))
    fields.setdefault("configs", CONFIGS)
    fields.setdefault("block_name", "block{index}")
    fields.setdefault("convert_options", {})
    return Family(
        name=architecture,
        source=SOURCE,
        recipes=RECIPES,
        stem=stem,
        default_name=lambda args, variant: (
            architecture + ("" if variant == "orig" else f"_{variant}")
        ),
        **fields,
    )


def builders(family, name, summary, pf_summary):
    """The family's two public builders: ``name`` (every variant) and ``name + "PF"``."""
    return (
        _builder.make_builder(family, name, summary),
        _builder.make_builder(
            family, name + "PF", pf_summary, stem="hybrid", downsampling="padding_free"
        ),
    )


def register(family, builder, architecture, reference, deviations=None):
    """Registers the second set's seven rows of a family.

    ``<architecture>_vegfru`` and ``<architecture>_pf_vegfru`` (224 px; named ``<architecture>``
    and ``<architecture>_pf`` in version 0.1.0) and the five CIFAR-100 variants. ``reference`` is
    the family's model key in the reference counts (its CIFAR rows are ``cifar_<reference>``);
    ``deviations(variant)`` gives a variant's documented count deviations.
    """
    deviations = deviations or (lambda variant: None)
    for variant in ("orig", "pf"):
        _builder.register(
            family,
            builder,
            architecture=architecture,
            dataset="vegfru",
            variant=variant,
            reference=(reference, variant, "VegFru"),
            deviations=deviations(variant),
            aliases=(architecture + ("_pf" if variant == "pf" else ""),),
        )
    for variant, table in CIFAR_TABLES.items():
        _builder.register(
            family,
            builder,
            architecture=architecture,
            dataset="cifar",
            variant=variant,
            reference=(f"cifar_{reference}", variant, table),
            deviations=deviations(variant),
        )
