"""Command line: the papers' tables reproduced from the registry.

    python -m keras_padfree.profile                      # every model with paper figures
    python -m keras_padfree.profile --table set1         # one table (prefix of its name)
    python -m keras_padfree.profile --model "ghostnet*"  # registry names matching a glob
    python -m keras_padfree.profile --json               # machine-readable
    python -m keras_padfree.profile --layers bsconv_resnet20_pf_cifar --convention bsconv_profile

For each reference row it builds the registered model at the row's input size and number of classes,
counts parameters and FLOPs in the row's convention, and prints them next to the reference
implementation's exact counts and the paper's printed values, with the differences. The exit status
is
1 when any count differs from the reference.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def reproduce(pattern="*", table=None):
    """Yields one dict per reference row of every registered model matching
    ``pattern``/``table``."""
    import keras

    from keras_padfree import applications
    from keras_padfree import profiling

    for name in applications.list_models(pattern, table=table):
        info = applications.get_model_info(name)
        for row in info.references:
            if table is not None and not row.table.startswith(table):
                continue
            model = applications.create_model(
                name, input_shape=(row.input_size, row.input_size, 3), classes=row.classes
            )
            convention = profiling.normalize_convention(row.flops_convention)
            params = profiling.count_params(model, convention)
            flops = profiling.count_flops(model, convention)
            all_weights = sum(profiling._prod(w.shape) for w in model.trainable_weights)
            dev = info.deviations
            yield {
                "model": name,
                "table": row.table,
                "input": row.input_size,
                "classes": row.classes,
                "convention": convention,
                "params": params,
                "reference_params": row.params,
                "params_diff": params - row.params - dev.get("params", (0, ""))[0],
                "params_all_weights": all_weights,
                "reference_params_all_weights": row.params_all_weights,
                "params_all_weights_diff": (
                    None
                    if row.params_all_weights is None
                    else all_weights
                    - row.params_all_weights
                    - dev.get("params_all_weights", (0, ""))[0]
                ),
                "flops": flops,
                "reference_flops": row.flops,
                "flops_diff": flops - row.flops - dev.get("flops", (0, ""))[0],
                "paper_params_M": row.paper_params_M,
                "paper_flops_M": row.paper_flops_M,
                "paper_top1": row.paper_top1,
                "deviations": {k: v[1] for k, v in dev.items()},
            }
            del model
            keras.backend.clear_session()


def _fmt_m(value):
    return "-" if value is None else f"{value:g}"


def _print_table(rows, out):
    header = (
        f"{'model':40s} {'table':12s} {'in':>4s} {'cls':>5s} {'params':>10s} {'ref':>10s} "
        f"{'diff':>5s} {'paper M':>8s} {'FLOPs':>12s} {'ref':>12s} {'diff':>5s} "
        f"{'paper M':>8s} {'top-1':>6s}"
    )
    print(header, file=out)
    print("-" * len(header), file=out)
    for r in rows:
        print(
            f"{r['model'][:40]:40s} {r['table'].split(' (')[0][:12]:12s} {r['input']:4d} "
            f"{r['classes']:5d} {r['params']:10,d} {r['reference_params']:10,d} "
            f"{r['params_diff']:5d} {_fmt_m(r['paper_params_M']):>8s} {r['flops']:12,d} "
            f"{r['reference_flops']:12,d} {r['flops_diff']:5d} {_fmt_m(r['paper_flops_M']):>8s} "
            f"{_fmt_m(r['paper_top1']):>6s}",
            file=out,
        )


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m keras_padfree.profile",
        description="Parameters and FLOPs of the zoo next to the papers' tables.",
    )
    parser.add_argument("--model", default="*", help="registry names matching this glob")
    parser.add_argument(
        "--table",
        default=None,
        help="only rows of tables whose name starts with this (e.g. set1, set2, "
        "ablation, VegFru, PydMobileNet, cheap)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--layers",
        metavar="NAME",
        default=None,
        help="print the per-layer profile of one registered model and exit",
    )
    parser.add_argument(
        "--convention",
        default="macs",
        help="with --layers: macs (default), bsconv_profile or thop_0.0.31",
    )
    parser.add_argument("--input-size", type=int, default=None, help="with --layers: input side")
    args = parser.parse_args(argv)

    from keras_padfree import applications
    from keras_padfree import profiling

    if args.layers:
        info = applications.get_model_info(args.layers)
        kwargs = {}
        if args.input_size:
            kwargs["input_shape"] = (args.input_size, args.input_size, info.input_shape[-1])
        model = applications.create_model(args.layers, **kwargs)
        print(profiling.profile_model(model, args.convention).table())
        return 0

    rows = list(reproduce(args.model, args.table))
    if not rows:
        print(
            f"No registered model with paper figures matches --model {args.model!r} "
            f"--table {args.table!r}.",
            file=sys.stderr,
        )
        return 2
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
    else:
        _print_table(rows, sys.stdout)
        bad = [r for r in rows if _differs(r)]
        print(f"\n{len(rows)} reference rows, {len(rows) - len(bad)} exact, {len(bad)} differing.")
    return 1 if any(_differs(r) for r in rows) else 0


def _differs(row):
    return bool(row["params_diff"] or row["flops_diff"] or row["params_all_weights_diff"])


if __name__ == "__main__":
    sys.exit(main())
