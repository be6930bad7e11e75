"""The seeds' experiment: a linear probe on every stage of jigsaw, PIRL, rotation and SimCLR
backbones trained the same way on Fashion-MNIST.

    python experiments/layerwise_pretext_vs_pirl.py [--workdir runs/layerwise]
        [--only jigsaw pirl] [--epochs 1] [--width 16]

The claim it tests (Misra & van der Maaten 2020, Fig. 6; Goyal et al. 2019): a jigsaw
model's probe accuracy peaks in the middle stages and falls at the last one, which
specialises in solving the puzzle, while PIRL's, which asks for invariance to the jigsaw
transform instead, keeps rising to the last stage. Each method's
`configs/<method>_fashion_mnist.py` is trained with one shared backbone (a CIFAR-stem
ResNet-18 of ``--width`` channels, the seeds' backbone family at CPU size) for
``--epochs`` into WORKDIR/<method> (resuming or, when finished, only re-evaluating), then
its stages are probed with the evaluation job's kNN and L-BFGS linear probe; the same
backbone at its random initialisation is probed too (the control: what the architecture
gives untrained). Each result is kept in WORKDIR (a rerun only computes what is
missing). Writes
WORKDIR/layerwise.png (linear-probe and kNN accuracy per stage, one line per method) and
WORKDIR/layerwise_run.md (the table, the times, the command, date, machine and commit):
the record the README's table is copied from.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import demo  # noqa: E402  (experiments/ is this script's directory)
from absl import logging  # noqa: E402

from jax_ssl import parallel, train  # noqa: E402
from jax_ssl.config import from_file  # noqa: E402
from jax_ssl.data import recipes, sources  # noqa: E402
from jax_ssl.evaluate import features, layers  # noqa: E402
from jax_ssl.evaluate.job import evaluate, random_backbone_variables  # noqa: E402
from jax_ssl.evaluate.layers import PROTOCOLS  # noqa: E402
from jax_ssl.methods import common  # noqa: E402

METHODS = ("jigsaw", "pirl", "rotation", "simclr")


def shared_backbone_config(method: str, *, epochs: float, width: int):
    """The method's Fashion-MNIST config with the experiment's backbone and length."""
    config = from_file(demo.CONFIGS / f"{method}_fashion_mnist.py")
    config.model.backbone = "resnet18"
    config.model.backbone_kwargs = dict(cifar_stem=True, width=width)
    config.epochs = epochs
    config.total_steps = None
    return config


CONTROL = "random init"  # the same backbone untrained: what the architecture alone gives


def random_init_layers(config) -> list[dict]:
    """The per-stage probes of the shared backbone at its random initialisation, through
    the evaluation job's extraction and probes."""
    backbone = common.build_backbone(config, None)
    variables = random_backbone_variables(backbone, config, config.seed + 1)
    data = config.data
    recipe = recipes.make_recipe("eval", size=data.crop_size,
                                 resize_size=data.eval_resize_size,
                                 normalization=data.recipe_kwargs.normalization)
    embed, mesh = layers.layer_embedder(backbone, variables), parallel.data_mesh()
    (train_x, train_y), (test_x, test_y) = (
        features.extract(embed, sources.get_source(data.source, split), recipe, mesh)
        for split in (data.split, data.eval_split))
    return layers.probe_layers(backbone, train_x, train_y, test_x, test_y,
                               num_classes=10)["layers"]


def measured(path: pathlib.Path, run) -> dict:
    """``run()``'s result, kept in ``path`` (JSON): a rerun reuses what is done."""
    if path.exists():
        return json.loads(path.read_text())
    result = run()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result


def table(runs: dict[str, dict]) -> str:
    """Markdown: a row per method and protocol, a column per stage, then the times."""
    stages = [row["layer"] for row in next(iter(runs.values()))["layers"]]
    lines = ["| method | probe | " + " | ".join(stages) + " | best stage | pretraining "
             "| evaluation |", "|---|---|" + "---:|" * (len(stages) + 3)]
    for method, run in runs.items():
        for protocol in PROTOCOLS:
            accuracies = [100 * row[protocol] for row in run["layers"]]
            best = stages[max(range(len(stages)), key=accuracies.__getitem__)]
            lines.append(f"| {method} | {protocol} | "
                         + " | ".join(f"{a:.1f}" for a in accuracies)
                         + f" | {best} | {run['train_s'] / 60:.1f} min "
                         f"| {run['eval_s'] / 60:.1f} min |")
    return "\n".join(lines)


def figure(runs: dict[str, dict], path: pathlib.Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PROTOCOLS), figsize=(5 * len(PROTOCOLS), 4), sharey=True)
    for axis, protocol in zip(axes, PROTOCOLS, strict=True):
        for method, run in runs.items():
            stages = [row["layer"] for row in run["layers"]]
            style = dict(color="grey", linestyle="--") if method == CONTROL else {}
            axis.plot(stages, [100 * row[protocol] for row in run["layers"]], marker="o",
                      label=method, **style)
        axis.set_title(f"{protocol} probe per stage")
        axis.set_xlabel("ResNet-18 stage (global average pool)")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("top-1 accuracy (%), Fashion-MNIST test")
    axes[0].legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/layerwise")
    parser.add_argument("--only", nargs="+", choices=METHODS, default=METHODS)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--width", type=int, default=16)
    args = parser.parse_args()
    logging.set_verbosity(logging.ERROR)
    runs = {}
    for method in args.only:
        config = shared_backbone_config(method, epochs=args.epochs, width=args.width)
        workdir = os.path.join(args.workdir, method)

        def run(config=config, workdir=workdir):
            start = time.perf_counter()
            train.train(config, workdir)
            trained = time.perf_counter()
            found = evaluate(workdir, baselines=False, per_layer=True)["per_layer"]["layers"]
            return {"layers": found, "train_s": trained - start,
                    "eval_s": time.perf_counter() - trained}
        runs[method] = measured(pathlib.Path(workdir) / "layerwise.json", run)
        print(f"{method}: pretraining {runs[method]['train_s']:.0f} s, linear per stage "
              + " ".join(f"{100 * row['linear']:.1f}" for row in runs[method]["layers"]),
              flush=True)

    def control():
        start = time.perf_counter()
        found = random_init_layers(config)
        return {"layers": found, "train_s": 0.0, "eval_s": time.perf_counter() - start}
    runs[CONTROL] = measured(pathlib.Path(args.workdir) / "random_init.json", control)
    report = table(runs)
    total = sum(run["train_s"] + run["eval_s"] for run in runs.values())
    title = (f"Fashion-MNIST, ResNet-18 (CIFAR stem, width {args.width}), "
             f"{args.epochs:g} epoch(s) each")
    figure(runs, pathlib.Path(args.workdir) / "layerwise.png", title)
    print("\n" + report + f"\n\ntotal {total / 60:.1f} min")
    record = pathlib.Path(args.workdir) / "layerwise_run.md"
    record.write_text(
        f"# python experiments/layerwise_pretext_vs_pirl.py {' '.join(sys.argv[1:])}\n\n"
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\n"
        f"- commit: {demo.commit()}\n- machine: {demo.machine()}\n"
        f"- {title}; top-1 (%) on the 10,000 test images; total {total / 60:.1f} min\n\n"
        f"{report}\n")
    print(f"(recorded in {record} and {args.workdir}/layerwise.png)")


if __name__ == "__main__":
    main()
