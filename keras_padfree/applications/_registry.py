"""The model registry: names -> builders, with each model's paper metadata.

Every family module registers its variants at import time with :func:`register_model`; users call
:func:`create_model` and :func:`list_models`. The papers' exact counts come from
``reference_counts.json`` (measured on the reference PyTorch and MXNet code; shipped with the
package), matched by the reference's ``(model, variant)`` key.

Registry names follow one grammar, built by :func:`model_name`::

    <architecture>[_<width>][_<options>][_<variant>]_<dataset>

* architecture: the family's network, with its depth (``ghostnet``, ``mobilenetv3_large``,
  ``bsconv_resnet20``, ``bsconv_wrn40_3``, ``pydmobilenet29``, ``cheap_baseline_mobilenetv2``);
* width: 100 x the width multiplier on three digits (``025``, ``050``, ``100``, ``150``);
* options: architecture options (``bsconvu``, ``bsconvs``, ``add``/``concat``, ``se8``, ...);
* variant: absent for the original; ``pf``, ``stem_only``, ``downsampling_only``, ``effv2_ds``;
* dataset: what the configuration was built for, which also fixes the layout: ``cifar`` (32 px,
  CIFAR strides), ``imagenet32``, ``vegfru``, ``dogs``, ``imagenet`` (224 px).

Names of earlier versions stay registered as aliases (:func:`create_model` accepts them and warns
once); :func:`list_models` lists today's names.
"""

import dataclasses
import difflib
import fnmatch
import functools
import json
import os
import warnings

__all__ = [
    "ModelInfo",
    "ReferenceRow",
    "create_model",
    "get_model_info",
    "list_models",
    "model_name",
    "reference_rows",
    "register_model",
    "width_token",
]

VARIANT_TOKENS = {
    "orig": None,
    "pf": "pf",
    "stem_only": "stem_only",
    "downsampling_only": "downsampling_only",
    "effv2_downsampling": "effv2_ds",
}
# dataset token -> (dataset, classes, recipe style: "small" 32-px images / "large" 224-px ones)
DATASETS = {
    "cifar": ("CIFAR-100", 100, "small"),
    "imagenet32": ("ImageNet 32x32", 1000, "small"),
    "vegfru": ("VegFru-292", 292, "large"),
    "dogs": ("Stanford Dogs", 120, "large"),
    "imagenet": ("ImageNet", 1000, "large"),
}


def width_token(multiplier):
    """A width multiplier in registry names: 100 x it on three digits (0.25 -> "025")."""
    return f"{round(multiplier * 100):03d}"


def model_name(architecture, dataset, variant="orig", options=()):
    """The registry name of a model (see the module docstring for the grammar)."""
    if variant not in VARIANT_TOKENS:
        raise ValueError(f"Unknown variant {variant!r}; known: {list(VARIANT_TOKENS)}.")
    if dataset not in DATASETS:
        raise ValueError(f"Unknown dataset token {dataset!r}; known: {list(DATASETS)}.")
    parts = [architecture, *options, VARIANT_TOKENS[variant], dataset]
    return "_".join(p for p in parts if p)


_REFERENCE_FILE = os.path.join(os.path.dirname(__file__), "reference_counts.json")


@dataclasses.dataclass(frozen=True)
class ReferenceRow:
    """One row of the papers' tables, with the exact counts of the reference implementation."""

    table: str
    model: str
    variant: str
    input_size: int
    classes: int
    params: int
    flops: int
    flops_convention: str
    params_all_weights: int | None = None
    paper_params_M: float | None = None
    paper_flops_M: float | None = None
    paper_top1: float | None = None
    source_file: str | None = None


@functools.lru_cache(maxsize=1)
def _all_reference_rows():
    with open(_REFERENCE_FILE) as f:
        raw = json.load(f)
    rows = []
    for r in raw:
        rows.append(
            ReferenceRow(
                table=r["table"],
                model=r["model"],
                variant=r["variant"],
                input_size=r["input"],
                classes=r["classes"],
                params=r["params"],
                flops=r["flops"],
                flops_convention=r["flops_convention"],
                params_all_weights=r.get("params_all_weights"),
                paper_params_M=r.get("paper_params_M"),
                paper_flops_M=r.get("paper_flops_M"),
                paper_top1=r.get("paper_top1"),
                source_file=r.get("source_file"),
            )
        )
    return tuple(rows)


def reference_rows(model=None, variant=None, table=None):
    """Reference rows whose ``model``/``variant`` equal, and whose ``table`` starts with, the
    args."""
    out = []
    for row in _all_reference_rows():
        if model is not None and row.model != model:
            continue
        if variant is not None and row.variant != variant:
            continue
        if table is not None and not row.table.startswith(table):
            continue
        out.append(row)
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one registered model.

    Attributes:
        name: registry name (snake_case, e.g. ``"ghostnet_pf_cifar"``).
        builder: the public builder function (e.g. ``GhostNetPF``).
        kwargs: keyword arguments the registry passes to the builder (architecture choices).
        family: model family (e.g. ``"ghostnet"``).
        variant: ``"orig"``, ``"pf"``, ``"stem_only"``, ``"downsampling_only"``, ...
        input_shape: default input shape (H, W, C).
        classes: default number of classes.
        dataset: the dataset the paper trained it on.
        description: one line.
        references: the papers' rows for this model (exact params/FLOPs, paper top-1).
        source: where the reference implementation lives.
        test_input_shape: the smallest input the registry-wide tests build it at.
        deviations: documented, deliberate differences from a reference count, as
            ``{"params_all_weights": (delta, "why")}``; the count tests add ``delta`` to the
            reference integer (nothing else is tolerated).
        recipe: the training recipe the reference used for this model on its dataset.
        recipes: the family's recipe per registry dataset token ("imagenet32", ...) and per
            dataset style ("small", "large").
        aliases: names of earlier versions that resolve to this model.
    """

    name: str
    builder: object
    kwargs: dict
    family: str
    variant: str
    input_shape: tuple
    classes: int
    dataset: str
    description: str
    references: tuple
    source: str
    test_input_shape: tuple
    deviations: dict = dataclasses.field(default_factory=dict)
    recipe: str | None = None
    recipes: dict = dataclasses.field(default_factory=dict)
    aliases: tuple = ()

    @property
    def paper_top1(self):
        tops = [r.paper_top1 for r in self.references if r.paper_top1 is not None]
        return tops[0] if tops else None


_REGISTRY = {}
_ALIASES = {}
_WARNED = set()


def register_model(
    name,
    builder,
    *,
    family,
    variant,
    input_shape,
    classes,
    dataset,
    description,
    reference=None,
    source="",
    test_input_shape=None,
    deviations=None,
    recipe=None,
    recipes=None,
    aliases=(),
    **kwargs,
):
    """Registers ``builder(**kwargs)`` under ``name``.

    Args:
        reference: ``(model, variant)`` or ``(model, variant, table_prefix)`` key of the rows in
            ``reference_counts.json`` this model reproduces, a list of such keys (when the
            reference code has several names for one network), or None.
        test_input_shape: input the registry-wide tests use (default ``input_shape``).
        deviations: ``{"params" | "flops" | "params_all_weights": (delta, "reason")}`` for a count
            that deliberately differs from the reference (documented in the builder's docstring).
        recipe: the training recipe of the model's own dataset; recipes: per dataset style.
        aliases: names of earlier versions (they keep working, with a warning).
        **kwargs: architecture arguments passed to ``builder``.
    """
    for key in (name, *aliases):
        if key in _REGISTRY or key in _ALIASES:
            raise ValueError(f"Model name {key!r} is registered twice.")
    rows = ()
    if reference is not None:
        keys = [reference] if isinstance(reference[0], str) else list(reference)
        for key in keys:
            matched = reference_rows(*key)
            if not matched:
                raise ValueError(f"Model {name!r}: no reference row matches {key!r}.")
            rows += matched
    _REGISTRY[name] = ModelInfo(
        name=name,
        builder=builder,
        kwargs=dict(kwargs),
        family=family,
        variant=variant,
        input_shape=tuple(input_shape),
        classes=classes,
        dataset=dataset,
        description=description,
        references=rows,
        source=source,
        test_input_shape=tuple(test_input_shape or input_shape),
        deviations=dict(deviations or {}),
        recipe=recipe,
        recipes=dict(recipes or {}),
        aliases=tuple(aliases),
    )
    for alias in aliases:
        _ALIASES[alias] = name
    return builder


def unregister_model(name):
    """Removes a registered model and its aliases (for tests that register their own)."""
    info = _REGISTRY.pop(name)
    for alias in info.aliases:
        _ALIASES.pop(alias, None)


def _ensure_loaded():
    # Importing the applications package imports every family module, which registers its models.
    import keras_padfree.applications  # noqa: F401


def list_models(pattern="*", family=None, table=None):
    """Sorted registry names matching a glob ``pattern`` (and a ``family``, a paper ``table``)."""
    _ensure_loaded()
    names = []
    for name, info in _REGISTRY.items():
        if not fnmatch.fnmatch(name, pattern):
            continue
        if family is not None and info.family != family:
            continue
        if table is not None and not any(r.table.startswith(table) for r in info.references):
            continue
        names.append(name)
    return sorted(names)


def canonical_name(name):
    """Today's registry name of ``name`` (itself, or the model an earlier name now refers to)."""
    _ensure_loaded()
    if isinstance(name, str) and name in _ALIASES:
        new = _ALIASES[name]
        if name not in _WARNED:
            _WARNED.add(name)
            warnings.warn(
                f"Model name {name!r} is now {new!r}; the old name keeps working.",
                FutureWarning,
                stacklevel=3,
            )
        return new
    return name


def get_model_info(name):
    """The :class:`ModelInfo` of a registered model; unknown names fail with the close matches.

    Names of earlier versions (aliases) resolve to today's model, with a warning once.
    """
    name = canonical_name(name)
    if not isinstance(name, str) or name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=5, cutoff=0.5)
        hint = f" Did you mean one of {close}?" if close else ""
        raise ValueError(
            f"Unknown model name: {name!r}.{hint} `keras_padfree.applications.list_models()` lists "
            f"all {len(_REGISTRY)} registered models."
        )
    return _REGISTRY[name]


def create_model(name, **kwargs):
    """Builds a registered model: ``create_model("ghostnet_pf_cifar", classes=10)``.

    Keyword arguments override the registry's defaults (``input_shape``, ``classes``, ``weights``,
    ``include_top``, ...). Without ``input_shape`` or ``input_tensor`` the registered input is used.
    """
    info = get_model_info(name)
    args = dict(info.kwargs)
    if "input_shape" not in kwargs and "input_tensor" not in kwargs:
        args["input_shape"] = info.input_shape
    if "classes" not in kwargs:
        args["classes"] = info.classes
    args.update(kwargs)
    args.setdefault("name", info.name)
    return info.builder(**args)
