"""DINOv2-style curation on Fashion-MNIST with planted duplicates, from a trained checkpoint.

    python experiments/curate_fashion_mnist.py [--workdir runs/demo] [--out runs/curate]

Builds an uncurated pool, OUT/pool/<class>/*.png: the first 6,000 training images, plus
200 exact copies and 200 near copies (shifted by one pixel, 10% darker, Gaussian noise of
σ 4 grey levels) of 400 other distinct ones; and a seed set, OUT/seed/<class>/*.png: 100
test images of two classes (Sandal, Bag). Then runs ``jax-ssl-analyze curate`` (the
job) on WORKDIR's checkpoint with sample- and cluster-based retrieval, and measures:

- de-duplication, for a sweep of similarity thresholds on the same features: the share
  of planted exact and near copies grouped with their original, and how many images
  were removed in all (the pool has duplicates of its own, and images of one class look
  alike to a semantic backbone: DINOv2 de-duplicates with a copy-detection network);
- retrieval: the share of retrieved images of the seed set's two classes (against 20%
  in the pool), and the images drawn per cluster.

The tables, with the date, the commit and the machine, go to OUT/curate_run.md.
"""
from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import demo  # noqa: E402  (experiments/ is this script's directory)
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from jax_ssl import parallel  # noqa: E402
from jax_ssl.analysis import curate  # noqa: E402
from jax_ssl.analysis import job as analysis  # noqa: E402
from jax_ssl.data import fashion_mnist  # noqa: E402
from jax_ssl.evaluate import features  # noqa: E402
from jax_ssl.evaluate import job as eval_job  # noqa: E402

POOL, EXACT, NEAR, SEED_PER_CLASS = 6000, 200, 200, 50
SEED_CLASSES = ("Sandal", "Bag")
THRESHOLDS = (0.6, 0.9, 0.95, 0.98, 0.99, 0.995)


def folder_name(class_name: str) -> str:
    return class_name.replace("/", "-")


def write_folder(root: pathlib.Path, images, labels, names, class_names) -> None:
    for image, label, name in zip(images, labels, names, strict=True):
        directory = root / folder_name(class_names[label])
        directory.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(directory / f"{name}.png")


def build(out: pathlib.Path, seed: int = 0) -> dict:
    """Writes the pool and the seed set; returns {copy file name: original file name}."""
    data = fashion_mnist.load()
    class_names = fashion_mnist.CLASS_NAMES
    images, labels = data["train"]
    rng = np.random.default_rng(seed)
    originals = rng.choice(np.arange(POOL), EXACT + NEAR, replace=False)
    near = np.roll(images[originals[EXACT:]], 1, axis=2)
    near = np.clip(near * 0.9 + rng.normal(0, 4, near.shape), 0, 255).astype(np.uint8)
    copies = np.concatenate([images[originals[:EXACT]], near])
    names = [f"{i:05d}" for i in range(POOL)]
    copy_names = ([f"exact_{i:05d}" for i in originals[:EXACT]]
                  + [f"near_{i:05d}" for i in originals[EXACT:]])
    write_folder(out / "pool", np.concatenate([images[:POOL], copies]),
                 np.concatenate([labels[:POOL], labels[originals]]), names + copy_names,
                 class_names)
    test_images, test_labels = data["test"]
    seed_rows = np.concatenate([np.flatnonzero(test_labels == class_names.index(c))[
        :SEED_PER_CLASS] for c in SEED_CLASSES])
    write_folder(out / "seed", test_images[seed_rows], test_labels[seed_rows],
                 [f"test_{i:05d}" for i in seed_rows], class_names)
    return dict(zip(copy_names, (f"{i:05d}" for i in originals), strict=True))


def stem(path: str) -> str:
    return pathlib.Path(path).stem


def dedup_sweep(workdir: str, pool: str, planted: dict) -> list[str]:
    """The de-duplication table over THRESHOLDS, on the job's own features."""
    config, _, backbone, variables = eval_job.restore_backbone(workdir)
    source, recipe = analysis.eval_source(config, pool, "train")
    mesh = parallel.data_mesh()
    pool_features, _ = features.extract(
        lambda x: analysis.representation(backbone, variables, x), source, recipe, mesh)
    pool_features = curate.unit_rows(pool_features)
    names = [stem(p) for p in source.paths]
    rows = ["| similarity > | exact copies found | near copies found | groups | images "
            "removed |", "|---:|---:|---:|---:|---:|"]
    for threshold in THRESHOLDS:
        groups = curate.duplicate_groups(pool_features, mesh, threshold=threshold)
        group_of = {names[i]: g for g, members in enumerate(groups) for i in members}
        found = {kind: np.mean([copy in group_of and group_of[copy] == group_of.get(original)
                                for copy, original in planted.items()
                                if copy.startswith(kind)]) for kind in ("exact", "near")}
        removed = sum(len(g) - 1 for g in groups)
        rows.append(f"| {threshold} | {found['exact']:.1%} | {found['near']:.1%} | "
                    f"{len(groups)} | {removed} |")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/demo")
    parser.add_argument("--out", default="runs/curate")
    parser.add_argument("--threshold", type=float, default=0.995,
                        help="the job's duplicate similarity (see the sweep)")
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    if (out / "pool").exists():
        raise SystemExit(f"{out}/pool exists: give another --out or remove it.")
    start = time.perf_counter()
    planted = build(out)
    pool, seed_set = f"folder:{out / 'pool'}", f"folder:{out / 'seed'}"
    sweep = dedup_sweep(args.workdir, pool, planted)
    retrieval = ["| retrieval | images | of the seed set's 2 classes | clusters drawn from |",
                 "|---|---:|---:|---:|"]
    for mode in ("sample", "cluster"):
        result = analysis.run("curate", args.workdir, curation=dict(
            pool=pool, seed_set=seed_set, mode=mode, threshold=args.threshold, k=4,
            num_clusters=50, per_cluster=100))
        paths = [line.split("\t")[1] for line in
                 pathlib.Path(result["curated_list"]).read_text().splitlines()]
        in_classes = np.mean([pathlib.Path(p).parent.name in SEED_CLASSES for p in paths])
        clusters = result.get("clusters", {})
        drawn = ", ".join(str(len(c["drawn"])) for c in clusters.values())
        retrieval.append(f"| {mode}-based | {len(paths)} | {in_classes:.1%} | "
                         f"{len(clusters) or '—'}{f' ({drawn} images)' if clusters else ''} |")
    report = "\n".join([
        f"pool: {POOL} Fashion-MNIST training images + {EXACT} exact and {NEAR} near copies "
        f"(6,400 images); seed set: {SEED_PER_CLASS} test images each of "
        f"{' and '.join(SEED_CLASSES)}; backbone: {args.workdir}'s checkpoint",
        "\nde-duplication (64 neighbours; a copy is found when it shares a group with its "
        "original):", *sweep,
        f"\nretrieval after de-duplication at similarity > {args.threshold} (sample: the 4 "
        "nearest of each seed image; cluster: 50 k-means clusters, 100 images drawn from "
        "each cluster a seed image falls in):", *retrieval,
        f"\n{time.perf_counter() - start:.0f} s in all"])
    print("\n" + report)
    record = out / "curate_run.md"
    record.write_text(
        f"# experiments/curate_fashion_mnist.py --workdir {args.workdir} --out {args.out}\n\n"
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\n"
        f"- commit: {demo.commit()}\n- machine: {demo.machine()}\n\n{report}\n")
    print(f"(recorded in {record})")


if __name__ == "__main__":
    main()
