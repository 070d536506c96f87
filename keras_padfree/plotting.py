"""Figures of the paper's results, drawn from the registry and the benchmark results.

The README's figures (``docs/make_figures.py``) and the notebooks use these functions:

* :func:`plot_feature_map_chains`: the feature-map sizes along the downsampling chain of the
  original network (32 -> 16 -> 8 -> 4) and the padding-free one (32 -> 15 -> 7 -> 3), read off
  built models with :func:`feature_map_chain` or computed with :func:`downsampling_chain`.
* :func:`plot_flops_accuracy`: the papers' top-1 accuracy against FLOPs, one panel per table and
  dataset, with an arrow from each original model to its padding-free version
  (:func:`flops_accuracy_points` collects the points from the registry's reference metadata).
* :func:`plot_latency`: the CPU latency measured by ``benchmarks/latency.py``
  (:func:`load_latency_results` reads its JSON file).

matplotlib is imported inside the plotting functions only, so the package does not depend on it.
"""

import json
import math
import os

__all__ = [
    "downsampling_chain",
    "feature_map_chain",
    "flops_accuracy_points",
    "load_latency_results",
    "plot_feature_map_chains",
    "plot_flops_accuracy",
    "plot_latency",
    "save_figure",
]

# Marker per ablation variant of the second set (orig and pf are drawn as the arrow's ends).
_VARIANT_MARKERS = {
    "stem_only": ("^", "hybrid stem only"),
    "downsampling_only": ("s", "padding-free downsampling only"),
    "effv2_downsampling": ("D", "EfficientFormerV2 downsampling"),
}
_ORIG_COLOR = "#7f7f7f"
_PF_COLOR = "#d62728"


def _pyplot():
    try:
        import matplotlib

        if not os.environ.get("MPLBACKEND") and "ipykernel" not in _loaded_modules():
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - matplotlib is in the dev extra
        raise ImportError(
            "keras_padfree.plotting needs matplotlib: pip install matplotlib "
            "(or `pip install keras_padfree[dev]`)."
        ) from e
    return plt


def _loaded_modules():
    import sys

    return sys.modules


def _check_positive_int(value, argname):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"Argument `{argname}` must be a positive int. Received: {argname}={value!r}."
        )


def downsampling_chain(size, steps, *, padding_free, kernel_size=3):
    """Spatial sizes of a ``size``-pixel input through ``steps`` stride-2 convolutions.

    The original networks pad a k x k stride-2 convolution by ``(k - 1) // 2`` (1 for 3x3), which
    gives ``ceil(n / 2)``; padding-free downsampling pads by ``(k - 3) // 2`` (0 for 3x3), which
    gives ``floor((n - 3) / 2) + 1``. The max-pool shortcut (3x3, stride 2, no padding) has the
    same size.

    Args:
        size: input side in pixels.
        steps: number of stride-2 downsamplings.
        padding_free: True for the padding-free convolution, False for the padded one.
        kernel_size: odd kernel size of the stride-2 convolution (3 or 5 in the zoo).

    Returns:
        ``[size, n1, n2, ...]``, ``steps + 1`` sizes.
    """
    _check_positive_int(size, "size")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"Argument `steps` must be an int >= 0. Received: steps={steps!r}.")
    if kernel_size not in (3, 5, 7):
        raise ValueError(
            f"Argument `kernel_size` must be 3, 5 or 7. Received: kernel_size={kernel_size!r}."
        )
    pad = (kernel_size - 3) // 2 if padding_free else (kernel_size - 1) // 2
    chain = [size]
    for _ in range(steps):
        n = (chain[-1] + 2 * pad - kernel_size) // 2 + 1
        if n < 1:
            raise ValueError(
                f"A {size}-pixel input cannot be downsampled {steps} times "
                f"({'padding-free' if padding_free else 'padded'}): the chain "
                f"{chain} ends below one pixel."
            )
        chain.append(n)
    return chain


def feature_map_chain(model, min_size=2):
    """The distinct spatial sizes of a model's 4-D layer outputs, largest first.

    Read off a built Keras model (its input included), so the chain is what the model computes, not
    a formula: e.g. ``[32, 16, 8, 4]`` for a CIFAR GhostNet and ``[32, 15, 7, 3]`` for its
    padding-free version. The outputs of explicit padding layers (``ZeroPadding2D``, the zero
    border a padded convolution reads) and sizes below ``min_size`` (the 1x1 maps of squeeze-excite
    and global pooling) are left out.
    """
    import keras

    sizes = set()
    for layer in model.layers:
        if isinstance(layer, keras.layers.ZeroPadding2D):
            continue
        outputs = layer.output if isinstance(layer.output, (list, tuple)) else [layer.output]
        for out in outputs:
            shape = tuple(out.shape)
            if len(shape) == 4 and shape[1] is not None and shape[1] >= min_size:
                sizes.add(int(shape[1]))
    return sorted(sizes, reverse=True)


def plot_feature_map_chains(chains, *, title=None, ax=None, grid_max=32):
    """Draws downsampling chains as rows of squares whose sides are proportional to the map sizes.

    Args:
        chains: list of ``(label, sizes)``, e.g. ``[("original", [32, 16, 8, 4]),
            ("padding-free", [32, 15, 7, 3])]``. Rows with the same first size share a scale.
        title: axes title.
        ax: a matplotlib Axes to draw into (default: a new figure).
        grid_max: rows whose input side is at most this are drawn with one grid cell per pixel.

    Returns:
        The matplotlib Figure.
    """
    if not chains:
        raise ValueError(
            "Argument `chains` must hold at least one (label, sizes) pair. "
            f"Received: chains={chains!r}."
        )
    for label, sizes in chains:
        if not sizes or any(not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(f"Chain {label!r}: sizes must be positive ints. Received: {sizes!r}.")
    plt = _pyplot()
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.patches import Rectangle

    if ax is None:
        fig, ax = plt.subplots(figsize=(9.0, 1.25 * len(chains) + 0.6))
    else:
        fig = ax.figure
    row_height = 1.6
    unit = 0.85 * row_height  # the largest map of a row is drawn 0.85 rows high
    gap = 0.5
    max_width = 0.0
    for row, (label, sizes) in enumerate(chains):
        y0 = -row * (row_height + 0.25)
        scale = unit / sizes[0]
        color = (
            _PF_COLOR
            if ("free" in label.lower() or "pf" in label.lower() or "ours" in label.lower())
            else _ORIG_COLOR
        )
        x = 0.0
        ax.text(-0.15, y0 + unit / 2, label, ha="right", va="center", fontsize=9)
        for i, s in enumerate(sizes):
            side = max(s * scale, 0.02)
            yc = y0 + (unit - side) / 2
            ax.add_patch(
                Rectangle(
                    (x, yc),
                    side,
                    side,
                    facecolor=color,
                    alpha=0.25 + 0.5 * i / max(1, len(sizes) - 1),
                    edgecolor=color,
                    linewidth=1.0,
                )
            )
            if sizes[0] <= grid_max:  # one cell per pixel, so 16 vs. 15 is visible
                for k in range(1, s):
                    ax.plot(
                        [x + k * scale, x + k * scale],
                        [yc, yc + side],
                        color="white",
                        linewidth=0.35,
                    )
                    ax.plot(
                        [x, x + side],
                        [yc + k * scale, yc + k * scale],
                        color="white",
                        linewidth=0.35,
                    )
            ax.text(x + side / 2, y0 - 0.08, f"{s}", ha="center", va="top", fontsize=8)
            nxt = x + side + gap
            if i + 1 < len(sizes):
                ax.add_patch(
                    FancyArrowPatch(
                        (x + side + 0.05, y0 + unit / 2),
                        (nxt - 0.05, y0 + unit / 2),
                        arrowstyle="->",
                        mutation_scale=8,
                        color="#444444",
                        linewidth=0.8,
                    )
                )
            x = nxt
        max_width = max(max_width, x)
    ax.set_xlim(-2.6, max_width)
    ax.set_ylim(-(len(chains) - 1) * (row_height + 0.25) - 0.35, unit + 0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def _panel_key(row, info):
    table = row.table.split(" (")[0]
    if table.startswith("ablation") or table.startswith("EfficientFormerV2"):
        table = "set2"  # the ablations share the second set's recipe, dataset and counter
    return (table, info.dataset, row.input_size, row.classes, row.flops_convention)


def _pretty_model(model_key):
    name = model_key
    for prefix in ("cifar_",):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    for suffix in ("_dogs", "_imagenet"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def flops_accuracy_points(names=None):
    """The papers' (FLOPs, top-1) points of registered models, grouped into panels.

    Reads each model's reference rows (``get_model_info(name).references``): the exact FLOPs of the
    reference implementation in the table's counting convention and the paper's top-1 accuracy.
    Nothing is built or trained.

    Args:
        names: registry names to consider (default: every registered model).

    Returns:
        A dict ``{panel: {model_key: {variant: {"name", "flops", "params", "top1"}}}}`` where
        ``panel`` is ``(table, dataset, input_size, classes, flops_convention)`` and ``model_key``
        the reference's model name (e.g. ``"cifar_ghostnet"``). Rows without a paper accuracy are
        left out.
    """
    from keras_padfree import applications

    if names is None:
        names = applications.list_models()
    panels = {}
    for name in names:
        info = applications.get_model_info(name)
        for row in info.references:
            if row.paper_top1 is None:
                continue
            key = _panel_key(row, info)
            entry = panels.setdefault(key, {}).setdefault(row.model, {})
            entry[info.variant] = {
                "name": name,
                "flops": row.flops,
                "params": row.params,
                "top1": row.paper_top1,
                "table": row.table,
            }
    return panels


def _panel_title(key):
    table, dataset, size, classes, convention = key
    which = {"set1": "first set", "set2": "second set"}.get(table)
    return f"{dataset}, {which} ({size}x{size})" if which else f"{dataset} ({size}x{size})"


def plot_flops_accuracy(points=None, *, ncols=None, annotate=True):
    """The papers' accuracy-vs-FLOPs figure: original -> padding-free arrows per family.

    Args:
        points: the output of :func:`flops_accuracy_points` (default: computed from the registry).
        ncols: panels per row (default: up to 3).
        annotate: a legend of the families (colours) in every panel.

    Returns:
        The matplotlib Figure (one panel per table/dataset/input size).
    """
    if points is None:
        points = flops_accuracy_points()
    panels = [
        (k, v) for k, v in points.items() if any("orig" in m and "pf" in m for m in v.values())
    ]
    if not panels:
        raise ValueError(
            "No registered model pair (orig and pf) with the paper's accuracy was "
            "found; cannot draw the FLOPs-accuracy figure."
        )
    order = {"set1": 0, "set2": 1}
    panels.sort(key=lambda kv: (order.get(kv[0][0], 2), kv[0][2], kv[0][3]))
    plt = _pyplot()
    n = len(panels)
    ncols = ncols or min(3, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, 3.6 * nrows), squeeze=False)
    cmap = plt.get_cmap("tab10")
    families = sorted({_pretty_model(m) for _, models in panels for m in models})
    colors = {f: cmap(i % 10) for i, f in enumerate(families)}
    handles = {}
    for ax, (key, models) in zip(axes.flat, panels):
        family_handles = []
        for model_key, variants in sorted(models.items()):
            label = _pretty_model(model_key)
            color = colors[label]
            orig, pf = variants.get("orig"), variants.get("pf")
            if orig and pf:
                ax.annotate(
                    "",
                    xy=(pf["flops"] / 1e6, pf["top1"]),
                    xytext=(orig["flops"] / 1e6, orig["top1"]),
                    arrowprops=dict(arrowstyle="->", color=color, linewidth=1.4),
                )
            if orig:
                h = ax.scatter(
                    orig["flops"] / 1e6,
                    orig["top1"],
                    s=28,
                    facecolor="white",
                    edgecolor=color,
                    linewidth=1.4,
                    zorder=3,
                )
                handles.setdefault("original (open circle)", h)
            if pf:
                h = ax.scatter(pf["flops"] / 1e6, pf["top1"], s=32, color=color, zorder=3)
                handles.setdefault("padding-free (filled circle)", h)
            for variant, (marker, text) in _VARIANT_MARKERS.items():
                v = variants.get(variant)
                if v:
                    h = ax.scatter(
                        v["flops"] / 1e6,
                        v["top1"],
                        s=22,
                        marker=marker,
                        facecolor="none",
                        edgecolor=color,
                        linewidth=0.9,
                        zorder=2,
                    )
                    handles.setdefault(text, h)
            if annotate and (pf or orig):
                family_handles.append(
                    plt.Line2D(
                        [], [], color=color, marker="o", linewidth=1.4, markersize=4, label=label
                    )
                )
        if family_handles:
            ax.legend(handles=family_handles, fontsize=6, loc="best", framealpha=0.8)
        table, _, _, _, convention = key
        ax.set_title(_panel_title(key), fontsize=9)
        ax.set_xlabel(f"FLOPs (M, {convention})", fontsize=8)
        ax.set_ylabel("paper top-1 (%)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        xs = [v["flops"] / 1e6 for m in models.values() for v in m.values()]
        if max(xs) / max(min(xs), 1e-9) > 8:
            ax.set_xscale("log")
        ax.margins(x=0.15, y=0.12)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if handles:
        fig.legend(
            list(handles.values()),
            list(handles.keys()),
            loc="lower center",
            ncol=min(5, len(handles)),
            fontsize=8,
            frameon=False,
        )
    fig.suptitle(
        "Padding-free downsampling: paper top-1 vs. exact reference FLOPs "
        "(arrow: original -> padding-free)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    return fig


def load_latency_results(path):
    """Reads the results file of ``benchmarks/latency.py``; returns None when it does not exist.

    Returns:
        The file's dict: ``"pairs"`` (one dict per family and input size with ``family``, ``size``,
        ``orig``/``pf`` registry names, ``orig_flops``/``pf_flops``, ``flops_ratio`` and, per thread
        count ``T``, ``orig_ms_tT``, ``pf_ms_tT``, ``latency_ratio_tT``), ``"settings"`` (with
        ``"threads"``), ``"machine"``, ``"keras_reference"``, ...

    Raises:
        ValueError: the file exists but is not a latency results file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        result = json.load(f)
    _check_latency_result(result, path)
    return result


def _check_latency_result(result, where):
    if not isinstance(result, dict) or not isinstance(result.get("pairs"), list):
        raise ValueError(
            f"{where}: expected the dict written by benchmarks/latency.py, with a "
            f"'pairs' list. Received: {type(result).__name__}."
        )
    threads = result.get("settings", {}).get("threads")
    if not threads:
        raise ValueError(f"{where}: 'settings' has no 'threads' list.")
    for e in result["pairs"]:
        need = ["family", "size", "orig_flops", "pf_flops"]
        need += [f"{k}_ms_t{t}" for t in threads for k in ("orig", "pf")]
        missing = [k for k in need if k not in e]
        if missing:
            raise ValueError(f"{where}: a pair ({e.get('family')!r}) lacks {missing}.")


def plot_latency(result, *, threads=None):
    """The latency benchmark as a figure: orig vs padding-free latency, and the ratios.

    One panel per input size with the median LiteRT latency of each family's original (grey) and
    padding-free (red) model, then a panel comparing each pair's latency ratio (PF / orig) with its
    FLOPs ratio (the benchmark's goal: latency ratio <= FLOPs ratio + 0.05 with one thread).

    Args:
        result: the dict returned by :func:`load_latency_results`.
        threads: the thread count to show (default: 1 if measured, else the first one).

    Returns:
        The matplotlib Figure.
    """
    _check_latency_result(result, "Argument `result`")
    measured = list(result["settings"]["threads"])
    if threads is None:
        threads = 1 if 1 in measured else measured[0]
    if threads not in measured:
        raise ValueError(
            f"Argument `threads` must be one of the measured thread counts {measured}."
            f" Received: threads={threads!r}."
        )
    pairs = result["pairs"]
    if not pairs:
        raise ValueError("The latency results hold no measured pair; nothing to plot.")
    plt = _pyplot()
    sizes = sorted({int(e["size"]) for e in pairs})
    fig, axes = plt.subplots(
        1, len(sizes) + 1, figsize=(4.2 * (len(sizes) + 1), 3.4), squeeze=False
    )
    axes = axes[0]
    for ax, size in zip(axes, sizes):
        rows = [e for e in pairs if int(e["size"]) == size]
        ys = list(range(len(rows)))
        orig = [e[f"orig_ms_t{threads}"] for e in rows]
        pf = [e[f"pf_ms_t{threads}"] for e in rows]
        ax.barh([y - 0.2 for y in ys], orig, height=0.38, color=_ORIG_COLOR, label="original")
        ax.barh([y + 0.2 for y in ys], pf, height=0.38, color=_PF_COLOR, label="padding-free")
        for y, o, p in zip(ys, orig, pf):
            ax.text(o, y - 0.2, f" {o:.2f}", va="center", fontsize=6)
            ax.text(p, y + 0.2, f" {p:.2f}", va="center", fontsize=6)
        ax.set_yticks(ys)
        ax.set_yticklabels([e["family"] for e in rows], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(
            f"median latency (ms), {threads} thread{'s' if threads > 1 else ''}", fontsize=8
        )
        ax.set_title(f"LiteRT, {size}x{size} input", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
        ax.margins(x=0.18)
        ax.legend(fontsize=7, loc="lower right")
    ax = axes[-1]
    cmap = plt.get_cmap("tab10")
    families = sorted({e["family"] for e in pairs})
    markers = {32: "o", 224: "s"}
    lo, hi = 1.0, 0.0
    for e in pairs:
        fr = e["pf_flops"] / e["orig_flops"]
        lr = e[f"pf_ms_t{threads}"] / e[f"orig_ms_t{threads}"]
        lo, hi = min(lo, fr, lr), max(hi, fr, lr)
        ax.scatter(
            fr,
            lr,
            color=cmap(families.index(e["family"]) % 10),
            marker=markers.get(int(e["size"]), "^"),
            s=30,
            zorder=3,
        )
    lo, hi = lo - 0.05, hi + 0.08
    ax.plot([lo, hi], [lo, hi], color="#444444", linewidth=0.8, label="latency = FLOPs ratio")
    ax.plot(
        [lo, hi],
        [lo + 0.05, hi + 0.05],
        color="#444444",
        linewidth=0.8,
        linestyle="--",
        label="goal: FLOPs ratio + 0.05",
    )
    for i, fam in enumerate(families):
        ax.scatter([], [], color=cmap(i % 10), marker="o", s=20, label=fam)
    for size in sizes:
        ax.scatter(
            [], [], color="#999999", marker=markers.get(size, "^"), s=20, label=f"{size}x{size}"
        )
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("FLOPs PF / orig (thop_0.0.31)", fontsize=8)
    ax.set_ylabel(f"latency PF / orig ({threads} thread{'s' if threads > 1 else ''})", fontsize=8)
    ax.set_title("Does the FLOPs saving reach the clock?", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.02, 0.5))
    machine = result.get("machine", {})
    bits = [
        f"measured {result['date_utc']} UTC" if result.get("date_utc") else "",
        f"{machine['cpu_count']} CPU cores" if machine.get("cpu_count") else "",
        f"load {machine['load_average_1_5_15'][0]:.1f}"
        if machine.get("load_average_1_5_15")
        else "",
    ]
    fig.suptitle("benchmarks/latency.py: " + ", ".join(b for b in bits if b), fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return fig


def save_figure(fig, path, *, dpi=100, palette=True):
    """Saves a figure as PNG (creating the folder) and closes it; returns the path.

    With ``palette`` the image is stored with a 256-colour palette (Pillow, a matplotlib
    dependency), which keeps the README's figures around a third of their RGBA size.
    """
    import io

    plt = _pyplot()
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not palette:
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        return path
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, dpi=dpi, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    buf.seek(0)
    image = Image.open(buf).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    image.save(path, format="PNG", optimize=True)
    return path
