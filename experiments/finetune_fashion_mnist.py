"""Fine-tuned vs linear vs kNN on the Fashion-MNIST demo checkpoint, with all, 10% and 1%
of the labels: the evaluation job's ``--protocol finetune`` at a CPU-sized length.

    python experiments/finetune_fashion_mnist.py --workdir runs/demo \
        [--epochs 100%:8,10%:40,1%:200] [--out experiments/demo_runs/DATE_finetune.md]

``--workdir`` is a training run (``make demo`` writes one). For each label fraction the
job fine-tunes the whole backbone with MAE's recipe (``jax_ssl.evaluate.finetune``;
every hyper-parameter the official one but the epochs, given per fraction so that each
run is a few minutes on 2 cores) and reports, from the same call, the kNN and L-BFGS
linear probes on that fraction of the labels. The table and the command, date, commit
and machine go to ``--out``.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import demo  # noqa: E402  (experiments/ is this script's directory)
from absl import logging  # noqa: E402

from jax_ssl.evaluate import job  # noqa: E402

FRACTIONS = {"100%": 1.0, "10%": 0.1, "1%": 0.01}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--epochs", default="100%:8,10%:40,1%:200",
                        help="fine-tuning epochs per label fraction")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    logging.set_verbosity(logging.ERROR)
    epochs = {k: int(v) for k, v in (item.split(":") for item in args.epochs.split(","))}
    rows = ["| labels | fine-tuned | linear (L-BFGS) | kNN | fine-tuning epochs | steps | "
            "time |", "|---|---:|---:|---:|---:|---:|---:|"]
    step = None
    for regime, fraction in FRACTIONS.items():
        start = time.perf_counter()
        out = job.evaluate(args.workdir, baselines=False, batch_size=args.batch_size,
                           protocol="finetune", protocol_kwargs={"epochs": epochs[regime]},
                           label_fraction=fraction, write=False)
        tuned, probes = out["finetune"], out["results"]["pretrained"]
        step = out["step"]
        rows.append(f"| {regime} ({tuned['train_examples']:,} images) | "
                    f"{tuned['top1']:.1%} | {probes[f'linear {regime}']:.1%} | "
                    f"{probes[f'kNN {regime}']:.1%} | {tuned['epochs']} | {tuned['steps']} | "
                    f"{time.perf_counter() - start:.0f} s |")
        print(rows[-1], flush=True)
    report = "\n".join(rows)
    print(report)
    if args.out:
        demo.write_record(args.out, f"experiments/finetune_fashion_mnist.py --workdir "
                          f"{args.workdir} --epochs {args.epochs} --batch_size "
                          f"{args.batch_size}", report,
                          f"- checkpoint: step {step} of {args.workdir}\n")

if __name__ == "__main__":
    main()
