"""The Déjà vu memorisation test on Fashion-MNIST scenes: build, train, attack, record.

    python experiments/dejavu_fashion_mnist.py [--out runs/dejavu] [--epochs 300]

1. Scenes (``jax_ssl.analysis.dejavu.scenes``): disjoint draws of Fashion-MNIST training
   objects, each pasted at a random place of a 48×48 background of its own, with its
   box: A and B (``--images`` each, the target's and the reference's training sets) and
   X (``--public``, the labelled public set), written as OUT/{A,B,X}.npz.
2. Three SimCLR runs of ``configs/simclr_dejavu_fashion_mnist.py``, alike but for their
   data: the target on A, the reference on B, and the control on A again with another
   seed (a reference that has seen the attacked images).
3. ``jax-ssl-analyze dejavu`` (the job) three times: A attacked with target and
   reference, B attacked with their roles swapped (the paper averages both
   directions), and A attacked with target and control, which must score near 0.

The table (the shares of attacked images memorised, forgotten and correlated, each
model's kNN accuracy from the background alone, and on its 20% most confident), the
curves' PNG and the command, date, commit and machine go to OUT/dejavu_run.md.
"""
from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import shutil
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import demo  # noqa: E402  (experiments/ is this script's directory)
import numpy as np  # noqa: E402
from absl import logging  # noqa: E402

from jax_ssl import train  # noqa: E402
from jax_ssl.analysis import dejavu  # noqa: E402
from jax_ssl.analysis import job as analysis  # noqa: E402
from jax_ssl.config import from_file  # noqa: E402
from jax_ssl.data import fashion_mnist  # noqa: E402

CONFIG = demo.CONFIGS / "simclr_dejavu_fashion_mnist.py"
SIZE = 48


def build(out: pathlib.Path, images_per_set: int, public: int, seed: int = 0):
    """Writes OUT/{A,B,X}.npz: scenes, labels, boxes, class names."""
    images, labels = fashion_mnist.load()["train"]
    order = np.random.default_rng(seed).permutation(len(images))
    start = 0
    for split, count in (("A", images_per_set), ("B", images_per_set), ("X", public)):
        rows = order[start:start + count]
        scenes, boxes = dejavu.scenes(images[rows], size=SIZE, seed=seed, first_index=start)
        np.savez(out / f"{split}.npz", images=scenes, labels=labels[rows], boxes=boxes,
                 class_names=np.array(fashion_mnist.CLASS_NAMES))
        start += count


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/dejavu")
    parser.add_argument("--images", type=int, default=500, help="in each of A and B")
    parser.add_argument("--public", type=int, default=5000)
    parser.add_argument("--epochs", type=float, default=300.0)
    args = parser.parse_args()
    logging.set_verbosity(logging.ERROR)
    out = pathlib.Path(args.out)
    if out.exists():
        raise SystemExit(f"{out} exists: give another --out or remove it.")
    out.mkdir(parents=True)
    start = time.perf_counter()
    build(out, args.images, args.public)
    built = time.perf_counter()
    runs = {"target": ("A", 0), "reference": ("B", 0), "control": ("A", 1)}
    for name, (split, seed) in runs.items():
        config = from_file(CONFIG)
        config.data.source = f"npz:{out}/{{split}}.npz"
        config.data.split = split
        config.seed = seed
        config.epochs = args.epochs
        print(f"\n{name}: SimCLR on {split} (seed {seed}), {args.epochs:g} epochs", flush=True)
        train.train(config, str(out / name))
    trained = time.perf_counter()
    attacks = {"A: target vs reference": ("target", "reference", "A"),
               "B: roles swapped": ("reference", "target", "B"),
               "A: target vs control (seen A)": ("target", "control", "A")}
    rows = ["| attack | attacked | memorised | forgotten | correlated | target kNN | "
            "reference kNN | target top-20% | reference top-20% |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    pictures = []
    top20 = dejavu.FRACTIONS.index(0.2)
    for label, (target, reference, split) in attacks.items():
        result = analysis.run("dejavu", str(out / target), memorisation=dict(
            reference_workdir=str(out / reference), attack_set=f"npz:{out}/{split}.npz",
            public_set=f"npz:{out}/X.npz"))
        s, curves = result["scores"], result["curves"]
        rows.append(f"| {label} | {len(result['attacked'])} | {s['memorised']:.1%} | "
                    f"{s['forgotten']:.1%} | {s['correlated']:.1%} | "
                    f"{s['target_accuracy']:.1%} | {s['reference_accuracy']:.1%} | "
                    f"{curves['target'][top20]:.1%} | {curves['reference'][top20]:.1%} |")
        picture = out / f"curves_{split}_{target}_vs_{reference}.png"
        shutil.copy(result["pictures"][0], picture)
        pictures.append(picture.name)
    done = time.perf_counter()
    report = "\n".join([
        f"{args.images} images in each of A and B, {args.public} in the public set X "
        f"({SIZE}×{SIZE} scenes); SimCLR ({CONFIG.name}) {args.epochs:g} epochs each; "
        f"k = {dejavu.NEIGHBOURS}, background crops longer than {SIZE // 4} px on their "
        "shorter side", "", *rows, "", f"pictures: {', '.join(pictures)}",
        f"\nscenes {built - start:.0f} s, training {trained - built:.0f} s, attacks "
        f"{done - trained:.0f} s, total {done - start:.0f} s"])
    print("\n" + report)
    record = out / "dejavu_run.md"
    record.write_text(
        f"# experiments/dejavu_fashion_mnist.py --out {args.out} --images {args.images} "
        f"--public {args.public} --epochs {args.epochs:g}\n\n"
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\n"
        f"- commit: {demo.commit()}\n- machine: {demo.machine()}\n\n{report}\n")
    print(f"(recorded in {record})")


if __name__ == "__main__":
    main()
