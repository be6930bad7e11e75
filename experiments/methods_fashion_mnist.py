"""Every method's CPU config on Fashion-MNIST: pretrain, evaluate, record the table.

    python experiments/methods_fashion_mnist.py [--workdir runs/methods] [--only dino mae]

Trains `configs/<method>_fashion_mnist.py` into WORKDIR/<method> (resuming or, when
finished, only re-evaluating) and evaluates each backbone (DINO's: the teacher) with the
evaluation job's defaults, beside a randomly initialised copy of it and raw pixels. The
table, with the date, the machine and the commit, goes to WORKDIR/methods_run.md: the
record the README's per-method table is copied from (experiments/demo_runs/ keeps it).
"""
from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import demo  # noqa: E402  (experiments/ is this script's directory)
from absl import logging  # noqa: E402

from jax_ssl import train  # noqa: E402
from jax_ssl.config import from_file  # noqa: E402
from jax_ssl.evaluate.job import evaluate  # noqa: E402

METHODS = ("simclr", "moco_v3", "mae", "vicreg", "barlow_twins", "dino", "byol", "swav")
COLUMNS = ("kNN 100%", "linear 100%", "kNN 1%", "linear 1%")


def table(rows: list[tuple[str, dict, dict, float]], raw_pixels: dict) -> str:
    """Markdown: a row per method (pretrained, then its random init), raw pixels last."""
    def cells(results):
        return " | ".join(f"{100 * results[c]:.1f}" for c in COLUMNS)
    lines = ["| method | " + " | ".join(COLUMNS) + " | random init kNN 100% / 1% "
             "| pretraining |", "|---|" + "---:|" * (len(COLUMNS) + 2)]
    for method, pretrained, random_init, seconds in rows:
        lines.append(f"| {method} | {cells(pretrained)} | "
                     f"{100 * random_init['kNN 100%']:.1f} / "
                     f"{100 * random_init['kNN 1%']:.1f} | {seconds / 60:.1f} min |")
    lines.append(f"| raw pixels | {cells(raw_pixels)} | — | — |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/methods")
    parser.add_argument("--only", nargs="+", choices=METHODS, default=METHODS)
    args = parser.parse_args()
    logging.set_verbosity(logging.ERROR)
    rows, raw_pixels = [], None
    for method in args.only:
        config = from_file(demo.CONFIGS / f"{method}_fashion_mnist.py")
        workdir = os.path.join(args.workdir, method)
        start = time.perf_counter()
        train.train(config, workdir)
        seconds = time.perf_counter() - start
        results = evaluate(workdir)["results"]
        raw_pixels = results["raw pixels"]
        rows.append((method, results["pretrained"], results["random init"], seconds))
        print(f"{method}: pretraining {seconds:.0f} s (0 when it was already trained); "
              f"kNN {100 * results['pretrained']['kNN 100%']:.1f}%", flush=True)
    report = table(rows, raw_pixels)
    print("\n" + report)
    record = pathlib.Path(args.workdir) / "methods_run.md"
    record.write_text(
        f"# experiments/methods_fashion_mnist.py --workdir {args.workdir}"
        + (f" --only {' '.join(args.only)}" if tuple(args.only) != METHODS else "")
        + f"\n\n- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\n"
        f"- commit: {demo.commit()}\n- machine: {demo.machine()}\n"
        "- top-1 (%) on the 10,000 test images; pretraining: wall time of train.train\n\n"
        f"{report}\n")
    print(f"(recorded in {record})")


if __name__ == "__main__":
    main()
